"""Reading the GPS position of a photo: EXIF (via exifread), embedded XMP and ``.xmp`` sidecars.

Sources are tried in this order and the first valid position wins:

1. a sidecar next to the photo (a deliberate edit, and where positions of files that cannot be
   written in place are kept),
2. the EXIF GPS IFD,
3. XMP embedded in the file.

EXIF rationals come in many shapes (``43/1, 28/1, 1407/500`` or ``645599999/100000000``, one
decimal-degrees value, or degrees and decimal minutes); each is read exactly. A zero denominator,
a minute or second outside ``[0, 60]``, a latitude beyond 90°, a longitude beyond 180°, an unknown
reference letter, or exactly ``0, 0`` (what receivers store without a satellite fix) makes the
position *invalid*: it is reported as such, never silently turned into ``(0, 0)``.
"""

from __future__ import annotations

import enum
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import exifread

from locdiff_core.photo import xmp
from locdiff_core.photo.containers import read_jpeg_exif, read_webp_exif, sniff
from locdiff_core.photo.errors import (
    CancelledFn,
    FileResult,
    PhotoError,
    PhotoErrorKind,
    ProgressFn,
    run_batch,
)
from locdiff_core.photo.read_errors import exif_damaged, explain, unidentified
from locdiff_core.photo.reading import heif_available
from locdiff_core.photo.safe_io import check_regular

logging.getLogger("exifread").setLevel(logging.ERROR)  # it logs every odd tag as a warning


class GpsSource(enum.Enum):
    EXIF = "exif"
    XMP = "xmp"
    SIDECAR = "sidecar"


@dataclass(frozen=True)
class GpsFix:
    """A photo's position: ``lat``, ``lon`` in degrees, ``alt`` in metres above sea level."""

    lat: float
    lon: float
    alt: float | None = None
    source: GpsSource = GpsSource.EXIF


class InvalidGpsError(ValueError):
    """GPS tags that are present but cannot be a position."""


def _number(value) -> float:
    den = getattr(value, "denominator", 1)
    if den == 0:
        raise InvalidGpsError(
            f"rational {getattr(value, 'numerator', value)}/0 has a zero denominator"
        )
    return float(value)


def dms_to_degrees(values, ref: str, axis: str) -> float:
    """Signed degrees from EXIF ``(deg, min, sec)`` values (1 to 3 of them) and a reference
    letter; ``axis`` is ``"lat"`` or ``"lon"``. Raises :class:`InvalidGpsError`."""
    parts = [_number(v) for v in values]
    if not 1 <= len(parts) <= 3:
        raise InvalidGpsError(f"{axis} has {len(parts)} values; expected degrees, minutes, seconds")
    parts += [0.0] * (3 - len(parts))
    deg, minutes, seconds = parts
    if min(parts) < 0 or minutes > 60 or seconds > 60:
        raise InvalidGpsError(f"{axis} {deg:g}° {minutes:g}' {seconds:g}\" is out of range")
    value = deg + minutes / 60.0 + seconds / 3600.0
    limit, refs = (90.0, "NS") if axis == "lat" else (180.0, "EW")
    if value > limit:
        raise InvalidGpsError(f"{axis} {value:.6f}° is beyond {limit:g}°")
    ref = ref.strip().upper()[:1]
    if ref and ref not in refs:
        raise InvalidGpsError(f"{axis} reference {ref!r} is not one of {', '.join(refs)}")
    return -value if ref in ("S", "W") else value


def _tag_text(tags: dict, name: str) -> str:
    tag = tags.get(name)
    return "" if tag is None else str(tag.values if isinstance(tag.values, str) else tag)


def gps_from_exif_tags(tags: dict) -> GpsFix | None:
    """The position in exifread's tag dictionary, ``None`` without latitude and longitude."""
    lat_tag, lon_tag = tags.get("GPS GPSLatitude"), tags.get("GPS GPSLongitude")
    if lat_tag is None and lon_tag is None:
        return None
    if lat_tag is None or lon_tag is None:
        raise InvalidGpsError("only one of GPSLatitude and GPSLongitude is present")
    if isinstance(lat_tag.values, str) or isinstance(lon_tag.values, str):
        raise InvalidGpsError("GPSLatitude/GPSLongitude are text, not numbers")
    lat = dms_to_degrees(lat_tag.values, _tag_text(tags, "GPS GPSLatitudeRef"), "lat")
    lon = dms_to_degrees(lon_tag.values, _tag_text(tags, "GPS GPSLongitudeRef"), "lon")
    if lat == 0.0 and lon == 0.0:
        raise InvalidGpsError("0° N 0° E is what receivers store without a satellite fix")
    return GpsFix(lat, lon, _exif_altitude(tags), GpsSource.EXIF)


def _exif_altitude(tags: dict) -> float | None:
    tag = tags.get("GPS GPSAltitude")
    if tag is None or isinstance(tag.values, str) or len(tag.values) != 1:
        return None
    try:
        alt = _number(tag.values[0])
    except InvalidGpsError:
        return None  # a broken altitude does not void the position
    ref = tags.get("GPS GPSAltitudeRef")
    below = ref is not None and not isinstance(ref.values, str) and list(ref.values)[:1] == [1]
    return -alt if below else alt


def read_exif_tags(path: Path) -> dict:
    """exifread's tags of ``path`` (no maker notes, no thumbnail); ``{}`` without EXIF.

    For JPEG, WebP and HEIF the EXIF block is located here and handed to exifread as a TIFF
    structure: exifread gives up on a JPEG whose XMP segment comes before its EXIF segment,
    expects an ``Exif\\0\\0`` prefix in WebP, and asserts on some HEIF Exif items.
    Raises :class:`PhotoError` for a FIFO, socket or device (never opened).
    """
    check_regular(path, doing="reading its EXIF")
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:3] == b"\xff\xd8\xff":
            block = read_jpeg_exif(f)
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            block = read_webp_exif(f)
        elif head[4:8] == b"ftyp" and heif_available():
            block = _heif_exif(path)
        else:
            f.seek(0)
            return exifread.process_file(f, details=False, extract_thumbnail=False)
    if block is None:
        return {}
    return exifread.process_file(io.BytesIO(block), details=False, extract_thumbnail=False)


def _heif_exif(path: Path) -> bytes | None:
    """The TIFF block of a HEIF file's Exif item, located by libheif (exifread's own HEIF
    parser asserts on Exif items written without the ``Exif\\0\\0`` prefix)."""
    import pillow_heif

    exif = pillow_heif.open_heif(path, convert_hdr_to_8bit=False).info.get("exif")
    if not exif:
        return None
    return exif[6:] if exif.startswith(b"Exif\0\0") else exif


def _invalid(path: Path, where: str, exc: Exception) -> PhotoError:
    return PhotoError(
        PhotoErrorKind.INVALID_GPS,
        path,
        f"the {where} GPS position is invalid: {exc}; fix it with `locdiff gps write`",
    )


def _has_metadata(path: Path) -> bool:
    """Whether a file none of our container parsers knows (a camera raw format, a TIFF with a
    damaged header that exiftool wrote) still holds EXIF that exifread reads, or XMP."""
    try:
        if read_exif_tags(path):
            return True
    except Exception:  # exifread on a file that is no image at all
        pass
    return xmp.embedded_packet(path) is not None


def read_gps(path: Path | str) -> GpsFix | None:
    """The position of the photo at ``path``, or ``None`` when it has none.

    Raises :class:`PhotoError` when the file cannot be read or its only GPS data is invalid.
    """
    path = Path(path)
    check_regular(path, doing="reading its GPS")  # a FIFO or a device would block open()
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise explain(path, exc, "reading its GPS") from exc
    if sniff(head) is None and head[4:8] != b"ftyp" and not _has_metadata(path):
        raise unidentified(path)
    problems: list[PhotoError] = []
    sidecar = xmp.find_sidecar(path)
    if sidecar is not None:
        try:
            found = xmp.gps_from_packet(xmp.read_sidecar(sidecar))
            if found is not None:
                return GpsFix(*found, source=GpsSource.SIDECAR)
        except xmp.XmpGpsError as exc:
            problems.append(_invalid(path, f"sidecar {sidecar.name}", exc))
        except PhotoError as exc:
            problems.append(exc)
        except OSError as exc:
            problems.append(explain(sidecar, exc, "reading the sidecar"))
    try:
        fix = gps_from_exif_tags(read_exif_tags(path))
        if fix is not None:
            return fix
    except InvalidGpsError as exc:
        problems.append(_invalid(path, "EXIF", exc))
    except OSError as exc:
        if exc.errno is not None:
            raise explain(path, exc, "reading its EXIF") from exc
        problems.append(exif_damaged(path, exc, "its GPS position"))
    except Exception as exc:  # exifread (or libheif) on a damaged file
        problems.append(exif_damaged(path, exc, "its GPS position"))
    try:
        packet = xmp.embedded_packet(path)
        found = xmp.gps_from_packet(packet) if packet is not None else None
        if found is not None:
            return GpsFix(*found, source=GpsSource.XMP)
    except xmp.XmpGpsError as exc:
        problems.append(_invalid(path, "embedded XMP", exc))
    except OSError as exc:
        raise explain(path, exc, "reading its XMP") from exc
    if problems:
        raise problems[0]
    return None


def read_gps_batch(
    paths: Iterable[Path | str],
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> list[FileResult[GpsFix | None]]:
    """:func:`read_gps` for every path; a bad file becomes an error result, never an exception."""
    return run_batch(paths, read_gps, progress=progress, cancelled=cancelled)


def describe(fix: GpsFix | None) -> str:
    """``43.467448 N, 11.885127 E, 120.0 m (exif)`` or ``no GPS``."""
    if fix is None:
        return "no GPS"
    ns = "N" if fix.lat >= 0 else "S"
    ew = "E" if fix.lon >= 0 else "W"
    alt = "" if fix.alt is None else f", {fix.alt:.1f} m"
    return f"{abs(fix.lat):.7f} {ns}, {abs(fix.lon):.7f} {ew}{alt} ({fix.source.value})"
