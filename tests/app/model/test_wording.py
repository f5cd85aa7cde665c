"""Status messages read as sentences; a file's name at the start is left alone."""

import pytest

from app.model.wording import sentence


@pytest.mark.parametrize(
    ("text", "worded"),
    [
        ("added 9 photos", "Added 9 photos"),
        ("left out 1 photo that has GPS in the file", "Left out 1 photo that has GPS in the file"),
        ("wrote 3 photos", "Wrote 3 photos"),
        ("cancelled: 3 of 9 photos predicted", "Cancelled: 3 of 9 photos predicted"),
        ("search", "Search"),
        ("9 of 9 photos predicted", "9 of 9 photos predicted"),
        ("notes.jpg: not an image Pillow can read", "notes.jpg: not an image Pillow can read"),
        ("IMG_0042.jpg: the file is cut short", "IMG_0042.jpg: the file is cut short"),
        ("img_0042.jpg: the file is cut short", "img_0042.jpg: the file is cut short"),
        ("Basemap: alps.mbtiles", "Basemap: alps.mbtiles"),
        ("", ""),
    ],
)
def test_messages_start_as_sentences(text, worded):
    assert sentence(text) == worded
