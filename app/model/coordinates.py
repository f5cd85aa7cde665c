"""Typed coordinates: reading what people paste, and writing coordinates for people to read.

Accepted (latitude first unless hemisphere letters say otherwise):

* decimal degrees: ``48.8582, 2.2945`` or ``-33.8568 151.2153`` or ``48.8582N 2.2945E``;
* degrees, minutes and seconds: ``48°51'29.6"N 2°17'40.2"E`` (also with ′ ″, spaces, or the
  letters in front: ``N 48° 51' 29.6" E 2° 17' 40.2"``);
* degrees and decimal minutes: ``N 48 51.493, E 2 17.670``.

Qt-free; the coordinate dialog and the tests use it.
"""

from __future__ import annotations

import re

LatLon = tuple[float, float]  # degrees, latitude first (locdiff_core.geo)

# degree, minute and second marks, with their typographic look-alikes (prime, quotes, ordinal)
_MARKS = {"°": 0, "\u00ba": 0, "'": 1, "\u2032": 1, "\u2019": 1, '"': 2, "\u2033": 2, "\u201d": 2}
_MINUS = "\u2212"  # the typographic minus sign
_TOKEN = re.compile(r"\s*([NSEW]|[-+\u2212]?\d+(?:\.\d*)?|[" + "".join(_MARKS) + r"]|[,;])")
_HINT = "type e.g. 48.8582, 2.2945 or 48°51'29.6\"N 2°17'40.2\"E"


class _Part:
    """One coordinate as typed: an optional hemisphere letter and up to three numbers."""

    def __init__(self) -> None:
        self.letter: str | None = None
        self.numbers: list[tuple[str, int | None]] = []  # (text, unit 0/1/2 or None)

    def value(self, text: str) -> float:
        units: list[float | None] = [None, None, None]
        for i, (number, mark) in enumerate(self.numbers):
            unit = i if mark is None else mark
            if unit > 2 or units[unit] is not None:
                raise ValueError(f"cannot read {text!r}: too many numbers for one coordinate")
            units[unit] = float(number.replace(_MINUS, "-"))
        if units[0] is None:
            raise ValueError(f"cannot read {text!r}: a coordinate has no degrees; {_HINT}")
        deg, minutes, seconds = units[0], units[1] or 0.0, units[2] or 0.0
        for name, v in (("minutes", minutes), ("seconds", seconds)):
            if not 0.0 <= v < 60.0:
                raise ValueError(f"cannot read {text!r}: {name} must be from 0 to 60, got {v:g}")
        if (units[1] is not None or units[2] is not None) and deg != int(deg):
            raise ValueError(f"cannot read {text!r}: degrees with minutes must be whole numbers")
        sign = -1.0 if deg < 0 or self.numbers[0][0].startswith(("-", _MINUS)) else 1.0
        if self.letter in ("S", "W"):
            if sign < 0:
                raise ValueError(f"cannot read {text!r}: use a minus sign or S/W, not both")
            sign = -1.0
        return sign * (abs(deg) + minutes / 60.0 + seconds / 3600.0)


def _tokens(text: str) -> list[str]:
    upper = text.strip().upper()
    tokens, pos = [], 0
    while pos < len(upper):
        m = _TOKEN.match(upper, pos)
        if m is None:
            if upper[pos:].strip() == "":
                break
            raise ValueError(f"cannot read {text!r} (at {upper[pos : pos + 10]!r}); {_HINT}")
        tokens.append(m.group(1))
        pos = m.end()
    return tokens


def _split(tokens: list[str], text: str) -> list[_Part]:
    has_commas = any(t in ",;" for t in tokens)
    letters = [t for t in tokens if t in "NSEW"]
    prefix_letters = bool(letters) and tokens[0] in "NSEW"
    unmarked = not any(t in _MARKS for t in tokens)
    count = sum(t not in _MARKS and t not in "NSEW,;" for t in tokens)
    per_part = count // 2 if unmarked and not has_commas and not letters and count % 2 == 0 else 0
    parts = [_Part()]
    for i, tok in enumerate(tokens):
        part = parts[-1]
        if tok in ",;":
            parts.append(_Part())
        elif tok in "NSEW":
            if prefix_letters and part.numbers and not has_commas:
                part = _Part()
                parts.append(part)
            if part.letter is not None:
                raise ValueError(f"cannot read {text!r}: two hemisphere letters in a row")
            part.letter = tok
            if not prefix_letters and not has_commas:
                parts.append(_Part())
        elif tok in _MARKS:
            if not part.numbers or part.numbers[-1][1] is not None:
                raise ValueError(f"cannot read {text!r}: {tok} must follow a number")
            part.numbers[-1] = (part.numbers[-1][0], _MARKS[tok])
        else:
            degree_next = i + 1 < len(tokens) and _MARKS.get(tokens[i + 1]) == 0
            starts_new = (not has_commas and not letters and degree_next and part.numbers) or (
                per_part and len(part.numbers) == per_part
            )
            if starts_new:
                part = _Part()
                parts.append(part)
            part.numbers.append((tok, None))
    parts = [p for p in parts if p.numbers or p.letter]
    if len(parts) != 2 or any(not p.numbers for p in parts):
        raise ValueError(f"cannot read {text!r}: need a latitude and a longitude; {_HINT}")
    return parts


def parse_coordinates(text: str) -> LatLon:
    """``(lat, lon)`` in degrees from typed text; ``ValueError`` saying what to fix."""
    if not text.strip():
        raise ValueError(f"no coordinates given; {_HINT}")
    first, second = _split(_tokens(text), text)
    axes = [
        None if p.letter is None else ("lat" if p.letter in "NS" else "lon")
        for p in (first, second)
    ]
    if axes[0] is not None and axes[0] == axes[1]:
        raise ValueError(f"cannot read {text!r}: both coordinates are {axes[0]}itudes")
    if axes[0] == "lon" or axes[1] == "lat":
        first, second = second, first
    lat, lon = first.value(text), second.value(text)
    if not -90.0 <= lat <= 90.0:
        raise ValueError(
            f"latitude {lat:g} is outside -90..90 (did you swap latitude and longitude?)"
        )
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude {lon:g} is outside -180..180")
    return lat, lon


def format_latlon(lat: float, lon: float, digits: int = 5) -> str:
    """``48.85822° N, 2.29450° E``."""
    ns = "N" if lat >= 0 else "S"
    ew = "E" if lon >= 0 else "W"
    return f"{abs(lat):.{digits}f}° {ns}, {abs(lon):.{digits}f}° {ew}"


def format_decimal(lat: float, lon: float) -> str:
    """``48.858222, 2.294500``: what the coordinate dialog starts from (parses back exactly)."""
    return f"{lat:.6f}, {lon:.6f}"


def format_km(km: float) -> str:
    """``850 m``, ``12.3 km``, ``1,234 km``."""
    if km < 1.0:
        return f"{km * 1000:.0f} m"
    if km < 100.0:
        return f"{km:.1f} km"
    return f"{km:,.0f} km"
