"""How the window words its messages. Qt-free."""

from __future__ import annotations

import re

# A plain first word: lower-case letters up to a space, a comma, a colon or the end (not a
# file's name such as "notes.jpg:", not a command such as "locdiff train" quoted in code).
_PLAIN_START = re.compile(r"[a-z]+(?=[ ,:;]|$)")


def sentence(text: str) -> str:
    """``text`` as a sentence for the status bar: its first word capitalised when it is a plain
    word ("added 9 photos" reads "Added 9 photos"); a file's name first is left as it is."""
    if _PLAIN_START.match(text):
        return text[0].upper() + text[1:]
    return text
