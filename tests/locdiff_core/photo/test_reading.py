import numpy as np
import pytest
from PIL import Image

from locdiff_core.photo.errors import PhotoErrorKind
from locdiff_core.photo.reading import (
    ReadConfig,
    find_photos,
    heif_available,
    is_photo_path,
    iter_photos,
    open_image,
    thumbnail,
    thumbnails,
    to_rgb,
)


def test_every_sample_goes_through_without_an_exception(samples):
    paths = find_photos([samples])
    assert len(paths) >= 60
    results = thumbnails(paths, 128)
    assert [r.path for r in results] == paths
    for r in results:
        if r.ok:
            assert r.value.mode == "RGB" and max(r.value.size) <= 128
        else:
            assert isinstance(r.error.kind, PhotoErrorKind) and str(r.path) in str(r.error)


def test_orientation_is_applied(samples):
    folder = samples / "jpg" / "orientation"
    for shape in ("landscape", "portrait"):
        ref = np.asarray(open_image(folder / f"{shape}_1.jpg"), dtype=np.float32)
        for k in range(2, 9):
            img = np.asarray(open_image(folder / f"{shape}_{k}.jpg"), dtype=np.float32)
            assert img.shape == ref.shape, (shape, k)
            # The files were re-encoded separately, so compare against the wrong answers.
            right = np.abs(img - ref).mean()
            mirrored = np.abs(img - ref[:, ::-1]).mean()
            flipped = np.abs(img - ref[::-1]).mean()
            assert right < 0.5 * min(mirrored, flipped), (shape, k, right, mirrored, flipped)


def test_thumbnail_uses_draft_size_and_keeps_aspect(samples):
    img = thumbnail(samples / "jpg" / "gps" / "DSCN0010.jpg", 160)
    assert img.size == (160, 120)


def test_size_cap_is_a_clear_error(samples):
    path = samples / "jpg" / "gps" / "DSCN0010.jpg"
    with pytest.raises(Exception) as info:
        open_image(path, ReadConfig(max_pixels=1000))
    assert info.value.kind is PhotoErrorKind.TOO_LARGE
    assert "max_pixels" in info.value.message


def test_pillows_bomb_guard_becomes_a_photo_error(tmp_path, monkeypatch):
    path = tmp_path / "wide.png"
    Image.new("L", (400, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses above 2x this
    result = thumbnails([path])[0]
    assert result.error.kind is PhotoErrorKind.TOO_LARGE


def test_broken_files_become_typed_results(tmp_path, samples):
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    truncated = tmp_path / "half.jpg"
    data = (samples / "jpg" / "gps" / "DSCN0010.jpg").read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    results = thumbnails([text, tmp_path / "missing.jpg", truncated, empty, tmp_path])
    kinds = [r.error.kind for r in results]
    assert kinds == [
        PhotoErrorKind.NOT_AN_IMAGE,
        PhotoErrorKind.NOT_FOUND,
        PhotoErrorKind.CORRUPT,
        PhotoErrorKind.NOT_AN_IMAGE,
        PhotoErrorKind.NOT_AN_IMAGE,
    ]


@pytest.mark.skipif(not heif_available(), reason="pillow-heif is not installed")
def test_heic_opens_as_rgb(tmp_path):
    path = tmp_path / "blue.heic"
    Image.new("RGB", (64, 48), (0, 0, 255)).save(path)
    img = open_image(path)
    assert img.mode == "RGB" and img.size == (64, 48)
    assert np.asarray(img)[..., 2].mean() > 200


def test_png_webp_tiff_open(tmp_path):
    for name in ("a.png", "a.webp", "a.tiff"):
        Image.new("RGB", (30, 20), (10, 200, 30)).save(tmp_path / name)
        assert open_image(tmp_path / name).getpixel((5, 5))[1] > 150


def test_to_rgb_handles_every_mode():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparent on white
    deep = Image.new("I;16", (4, 4), 65535)
    assert to_rgb(deep).getpixel((0, 0)) == (255, 255, 255)
    pal = Image.new("P", (4, 4), 3)
    assert to_rgb(pal).mode == "RGB"
    assert to_rgb(Image.new("CMYK", (4, 4))).mode == "RGB"


def test_config_validates():
    with pytest.raises(ValueError, match="max_pixels"):
        ReadConfig(max_pixels=0)


def test_iter_photos_walks_in_sorted_path_order_as_it_finds(tmp_path, samples):
    tree = tmp_path / "tree"
    names = [
        "b.jpg",
        "b/c.jpg",
        "b/z/deep.JPG",
        "b_x.jpg",
        "b-x.jpg",
        "B.png",
        "a.heic",
        "notes.txt",
        "a.jpg.xmp",
        ".hidden.jpg",
        ".cache/seen.jpg",
        "é/ü.jpeg",
        "b0/c.jpg",
    ]
    for name in names:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(b"x")
    (tree / "b" / "loop").symlink_to(tree, target_is_directory=True)  # not followed
    single = tmp_path / "single.dat"  # a file given by name is kept whatever its suffix
    single.write_bytes(b"x")
    expected = sorted(
        p
        for p in tree.rglob("*")
        if p.is_file() and not p.name.startswith(".") and is_photo_path(p) and "loop" not in p.parts
    )
    assert [p.relative_to(tree).as_posix() for p in expected] == [
        ".cache/seen.jpg",
        "B.png",
        "a.heic",
        "b/c.jpg",  # paths sort by parts: the folder "b" before "b-x.jpg"
        "b/z/deep.JPG",
        "b-x.jpg",
        "b.jpg",
        "b0/c.jpg",
        "b_x.jpg",
        "é/ü.jpeg",
    ]
    walk = iter_photos([single, tree])
    assert next(walk) == single  # yielded before the tree is walked
    assert list(walk) == expected
    assert find_photos([single, tree, samples]) == [single, *expected, *find_photos([samples])]
