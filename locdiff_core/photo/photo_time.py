"""When a photo was taken: its capture time as the camera wrote it, and that time in UTC.

The camera's clock is read from EXIF ``DateTimeOriginal`` (else ``DateTimeDigitized``) with
``SubSecTimeOriginal`` and ``OffsetTimeOriginal`` (EXIF 2.31) when present, else from the
XMP ``exif:DateTimeOriginal``/``xmp:CreateDate`` of a sidecar or embedded packet. A time that
carries its own UTC offset is exact; one without is a wall-clock time in the camera's zone,
which :class:`TimeSettings` supplies (an IANA name, so daylight saving follows the zone's own
rules), plus the clock's error: the ``offset`` added to the camera's time gives the true time
(a camera 90 s fast has offset -90 s).
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from locdiff_core.photo import xmp
from locdiff_core.photo.gps import read_exif_tags
from locdiff_core.photo.read_errors import exif_damaged, explain
from locdiff_core.photo.safe_io import check_regular

_EXIF_TIME = re.compile(r"^\s*(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?")
_OFFSET = re.compile(r"^\s*([+-])(\d{2}):?(\d{2})\s*$")


@dataclass(frozen=True)
class CaptureTime:
    """The camera's record: ``local`` (naive, to the microsecond) and ``utc_offset`` when the
    file states one (``OffsetTimeOriginal`` or an XMP time with a zone); ``tag`` names where
    it came from."""

    local: dt.datetime
    utc_offset: dt.timedelta | None = None
    tag: str = "DateTimeOriginal"

    def describe(self) -> str:
        text = self.local.isoformat(sep=" ")
        if self.utc_offset is not None:
            text += _format_offset(self.utc_offset)
        return text


def parse_offset(text: str) -> dt.timedelta:
    """``+hh:mm:ss``, ``-mm:ss``, ``hh:mm`` or seconds (``-90``) as a signed duration;
    ``ValueError`` saying what is expected."""
    raw = text.strip()
    sign = -1 if raw.startswith("-") else 1
    body = raw[1:] if raw[:1] in ("+", "-") else raw
    parts: list[float] = []
    if re.fullmatch(r"[0-9.:]+", body):
        try:
            if ":" not in body:
                return dt.timedelta(seconds=sign * float(body))
            parts = [float(p) for p in body.split(":")]
        except ValueError:
            parts = []
    if not 2 <= len(parts) <= 3 or any(p < 0 for p in parts) or any(p >= 60 for p in parts[1:]):
        raise ValueError(
            f"clock offset {text!r}: use [+-]hh:mm:ss, [+-]mm:ss or seconds (e.g. -00:01:30)"
        )
    if len(parts) == 2:
        parts.insert(0, 0.0)
    hours, minutes, seconds = parts
    return sign * dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def format_offset(offset: dt.timedelta) -> str:
    """``+00:01:30`` / ``-01:00:00`` (fractions of a second kept as ``.5``)."""
    total = offset.total_seconds()
    sign = "-" if total < 0 else "+"
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    secs = f"{int(seconds):02d}" if seconds == int(seconds) else f"{seconds:06.3f}".rstrip("0")
    return f"{sign}{int(hours):02d}:{int(minutes):02d}:{secs}"


def _format_offset(offset: dt.timedelta) -> str:
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``Europe/Rome``, ``UTC``); ``ValueError`` for an unknown one."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        close = sorted(z for z in available_timezones() if name.strip().lower() in z.lower())[:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else " (e.g. Europe/Rome, UTC)"
        raise ValueError(f"unknown time zone {name!r}{hint}") from exc


def guess_zone(lat: float, lon: float) -> str | None:
    """The IANA zone at a position (offline, :mod:`tzfpy`), ``None`` where it has none."""
    import tzfpy

    name = tzfpy.get_tz(float(lon), float(lat))
    return name or None


@dataclass(frozen=True)
class TimeSettings:
    """How a camera's wall-clock times become UTC: its zone (an IANA name) and its clock's
    error (added to the camera's time)."""

    zone: str = "UTC"
    offset: dt.timedelta = dt.timedelta(0)

    def __post_init__(self) -> None:
        zone(self.zone)  # an unknown zone fails here, before any photo is matched


@dataclass(frozen=True)
class UtcTime:
    """A capture time in UTC seconds, with how it was reached (for the user)."""

    seconds: float
    how: str  # "offset in the file" or "zone Europe/Rome"
    note: str = ""  # an ambiguous or skipped wall-clock time (daylight saving)


def to_utc(capture: CaptureTime, settings: TimeSettings) -> UtcTime:
    """The UTC time of ``capture``: its own offset when the file has one, else the settings'
    zone; then the clock offset. A wall-clock time that the zone's daylight-saving change
    repeats is read as the first of the two, and one it skips as after the change; ``note``
    says so."""
    note = ""
    if capture.utc_offset is not None:
        aware = capture.local.replace(tzinfo=dt.timezone(capture.utc_offset))
        how = f"offset {_format_offset(capture.utc_offset)} in the file"
    else:
        tz = zone(settings.zone)
        first = capture.local.replace(tzinfo=tz, fold=0)
        second = capture.local.replace(tzinfo=tz, fold=1)
        if first.utcoffset() != second.utcoffset():
            back = first.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None)
            when = f"{capture.local:%Y-%m-%d %H:%M}"
            if back == capture.local:
                note = f"{when} happens twice in {settings.zone}; the first is used"
            else:
                note = f"{when} does not exist in {settings.zone} (the clocks went forward)"
        aware = first
        how = f"zone {settings.zone}"
    utc = aware.astimezone(dt.UTC) + settings.offset
    if settings.offset:
        how += f", clock {format_offset(settings.offset)}"
    return UtcTime(utc.timestamp(), how, note)


def _exif_time(tags: dict, base: str, sub: str, offset: str) -> CaptureTime | None:
    tag = tags.get(f"EXIF {base}") or (tags.get("Image DateTime") if base == "DateTime" else None)
    if tag is None:
        return None
    text = str(tag.values if isinstance(tag.values, str) else tag).strip("\0 ")
    local = parse_exif_datetime(text)
    if local is None:
        return None
    subsec = tags.get(f"EXIF {sub}")
    if subsec is not None:
        digits = re.sub(r"\D", "", str(subsec))[:6]
        if digits:
            local = local.replace(microsecond=int(digits.ljust(6, "0")))
    utc_offset = None
    off = tags.get(f"EXIF {offset}")
    if off is not None:
        m = _OFFSET.match(str(off).strip("\0 "))
        if m:
            sign = -1 if m.group(1) == "-" else 1
            utc_offset = sign * dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
    return CaptureTime(local, utc_offset, base)


def parse_exif_datetime(text: str) -> dt.datetime | None:
    """``2024:06:01 10:00:00`` (EXIF) as a naive datetime; ``None`` for a blank or zero time
    (cameras write ``0000:00:00 00:00:00`` when their clock was never set)."""
    m = _EXIF_TIME.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    if y == 0:
        return None
    try:
        stamp = dt.datetime(y, mo, d, h, mi, s)
    except ValueError:
        return None
    frac = m.group(7)
    if frac:
        stamp = stamp.replace(microsecond=int(frac[1:7].ljust(6, "0")))
    return stamp


def _xmp_time(packet: bytes) -> CaptureTime | None:
    try:
        root = ET.fromstring(packet)
    except ET.ParseError:
        return None
    wanted = {"DateTimeOriginal": "DateTimeOriginal", "CreateDate": "CreateDate"}
    found: dict[str, str] = {}
    for el in root.iter():
        for key, value in [*el.attrib.items(), (el.tag, el.text or "")]:
            local = key.rsplit("}", 1)[-1]
            if local in wanted and value.strip():
                found.setdefault(local, value.strip())
    for name in ("DateTimeOriginal", "CreateDate"):
        if name in found:
            try:
                stamp = dt.datetime.fromisoformat(found[name])
            except ValueError:
                continue
            offset = stamp.utcoffset()
            return CaptureTime(stamp.replace(tzinfo=None), offset, f"XMP {name}")
    return None


def read_capture_time(path: Path | str) -> CaptureTime | None:
    """When the photo at ``path`` was taken, as its camera recorded it; ``None`` when it says
    nothing usable. Raises :class:`PhotoError` for a file that cannot be read."""
    path = Path(path)
    check_regular(path, doing="reading its capture time")
    try:
        tags = read_exif_tags(path)
    except Exception as exc:  # exifread (or libheif) on a damaged file, or the disk
        raise exif_damaged(path, exc, "its capture time") from exc
    for base, sub, offset in (
        ("DateTimeOriginal", "SubSecTimeOriginal", "OffsetTimeOriginal"),
        ("DateTimeDigitized", "SubSecTimeDigitized", "OffsetTimeDigitized"),
        ("DateTime", "SubSecTime", "OffsetTime"),
    ):
        found = _exif_time(tags, base, sub, offset)
        if found is not None:
            return found
    try:
        sidecar = xmp.find_sidecar(path)
        packet = xmp.read_sidecar(sidecar) if sidecar is not None else xmp.embedded_packet(path)
    except OSError as exc:
        raise explain(path, exc, "reading its XMP") from exc
    return _xmp_time(packet) if packet else None
