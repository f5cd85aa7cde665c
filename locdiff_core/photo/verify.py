"""Checking a written photo before it replaces the original.

A write is accepted only when independent readers agree on the result:

* our reader (:func:`~locdiff_core.photo.gps.read_exif_tags`, which hands the located EXIF
  block to exifread) finds exactly the new position, or none after a removal;
* every EXIF block and XMP packet of the file, read one by one, holds the new position or none,
  so no reader that prefers a second ``APP1`` or the XMP is left with an older one;
* exifread reading a JPEG or TIFF on its own (when it could read the original) finds the same
  non-GPS tags as before, and the new position;
* exiftool (when installed and able to read the original) finds the same non-GPS tags as
  before in every group and copy, and the new position in every GPS group, XMP and Composite
  tag, or none after a removal.

Positions must agree to :data:`TOLERANCE_DEG` degrees (about 1 cm); altitudes to 1 mm. What
differs is returned as a list of sentences, empty when the write verified.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import exifread

from locdiff_core.photo import exiftool as et
from locdiff_core.photo import xmp
from locdiff_core.photo.containers import Container, metadata_blocks, sniff
from locdiff_core.photo.gps import InvalidGpsError, gps_from_exif_tags, read_exif_tags
from locdiff_core.photo.tiff_gps import TiffError

Position = tuple[float, float, float | None]

TOLERANCE_DEG = 1e-7
TOLERANCE_ALT_M = 1e-3
_SHOWN = 4  # tag names quoted in a message

# exifread keys that are pointers or positions of structures a writer may move.
_EXIFREAD_MOVABLE = re.compile(r"(Offset|GPSInfo|JPEGInterchangeFormat|ByteCount)", re.I)
# exiftool groups that describe the file, not its metadata, or are derived from other tags.
_EXIFTOOL_SKIPPED_GROUPS = frozenset(
    {"File", "System", "ExifTool", "Composite", "GPS", "SourceFile"}
)
_EXIFTOOL_MOVABLE = re.compile(
    r"(Offset|ByteCount|Start$|^MediaDataSize$|^XMPToolkit$|^GPS|JPEGInterchangeFormat)", re.I
)
# The IFD0/ExifIFD tags exiftool adds to any EXIF block it creates (EXIF's mandatory tags, at
# their defaults) and drops with the block when a removal leaves nothing else in it.
_EXIFTOOL_MANDATORY = frozenset(
    {
        "IFD0:XResolution",
        "IFD0:YResolution",
        "IFD0:ResolutionUnit",
        "IFD0:YCbCrPositioning",
        "ExifIFD:ExifVersion",
        "ExifIFD:FlashpixVersion",
        "ExifIFD:ColorSpace",
        "ExifIFD:ComponentsConfiguration",
    }
)
_EXIFREAD_MANDATORY = frozenset(
    {
        "Image XResolution",
        "Image YResolution",
        "Image ResolutionUnit",
        "Image YCbCrPositioning",
        "EXIF ExifVersion",
        "EXIF FlashPixVersion",
        "EXIF ColorSpace",
        "EXIF ComponentsConfiguration",
    }
)
_COPY = re.compile(r":Copy\d+:")


@dataclass(frozen=True)
class Snapshot:
    """What the independent readers see in the original: exifread's non-GPS tags (``None``
    when exifread alone cannot read the file) and exiftool's (``None`` without exiftool or
    when it reports an error for the original)."""

    exifread_tags: dict[str, str] | None
    exiftool_tags: frozenset[tuple[str, str]] | None


def _exifread_native(path: Path) -> dict:
    with open(path, "rb") as f:
        return exifread.process_file(f, details=False, extract_thumbnail=False)


def _non_gps_exifread(tags: dict) -> dict[str, str]:
    return {
        key: str(value)
        for key, value in tags.items()
        if not key.startswith("GPS ") and not _EXIFREAD_MOVABLE.search(key)
    }


def _exiftool_json(tool: et.Exiftool, path: Path) -> dict:
    """exiftool's tags of ``path``: every copy (``-a``), named ``Group:CopyN:Tag``, as numbers."""
    out = tool.execute("-j", "-a", "-G1:4", "-n", str(path))
    try:
        docs = json.loads(out)
    except json.JSONDecodeError as exc:
        raise et.ExiftoolError(f"unreadable exiftool output ({exc})") from exc
    if not isinstance(docs, list) or not docs or not isinstance(docs[0], dict):
        raise et.ExiftoolError("exiftool returned no tags")
    return docs[0]


def _group(key: str) -> str:
    return key.split(":", 1)[0]


def _tag(key: str) -> str:
    return key.rsplit(":", 1)[-1]


def _non_gps_exiftool(doc: dict) -> frozenset[tuple[str, str]]:
    pairs = set()
    for key, value in doc.items():
        if _group(key) in _EXIFTOOL_SKIPPED_GROUPS or _EXIFTOOL_MOVABLE.search(_tag(key)):
            continue
        pairs.add((_COPY.sub(":", key), json.dumps(value, sort_keys=True)))
    return frozenset(pairs)


def snapshot(path: Path, tool: et.Exiftool | None) -> Snapshot:
    """The readers' view of the original at ``path``."""
    exifread_tags = None
    try:
        with open(path, "rb") as f:
            container = sniff(f.read(16))
        if container in (Container.JPEG, Container.TIFF):  # exifread's own parsers that hold
            native = _exifread_native(path)
            exifread_tags = _non_gps_exifread(native) if native else None
    except Exception:  # exifread alone cannot read it: not compared
        exifread_tags = None
    exiftool_tags = None
    if tool is not None:
        try:
            doc = _exiftool_json(tool, path)
            if "ExifTool:Error" not in doc:
                exiftool_tags = _non_gps_exiftool(doc)
        except et.ExiftoolError:
            exiftool_tags = None
    return Snapshot(exifread_tags, exiftool_tags)


def _describe(position: Position | None) -> str:
    if position is None:
        return "no position"
    lat, lon, alt = position
    text = f"{lat:.7f}, {lon:.7f}"
    return text if alt is None else f"{text}, {alt:.3f} m"


def _same(found: Position, expected: Position) -> bool:
    if abs(found[0] - expected[0]) > TOLERANCE_DEG:
        return False
    if abs(found[1] - expected[1]) > TOLERANCE_DEG:
        return False
    if expected[2] is None or found[2] is None:
        return expected[2] is None and found[2] is None
    return abs(found[2] - expected[2]) <= TOLERANCE_ALT_M


def _position_problem(who: str, found: Position | None, expected: Position | None) -> str | None:
    if expected is None:
        return None if found is None else f"{who} still finds a position ({_describe(found)})"
    if found is None:
        return f"{who} finds no position"
    if not _same(found, expected):
        return f"{who} finds {_describe(found)} instead of {_describe(expected)}"
    return None


def _exif_position(tags: dict) -> Position | None:
    fix = gps_from_exif_tags(tags)
    return None if fix is None else (fix.lat, fix.lon, fix.alt)


def _check_ours(path: Path, expected: Position | None) -> list[str]:
    try:
        tags = read_exif_tags(path)
        found = _exif_position(tags)
    except InvalidGpsError as exc:
        return [f"our reader finds an invalid position ({exc})"]
    except Exception as exc:  # any failure to read the result fails the write
        return [f"our reader cannot read the result ({type(exc).__name__}: {exc})"]
    problem = _position_problem("our reader", found, expected)
    if expected is None and problem is None and any(k.startswith("GPS GPS") for k in tags):
        problem = "our reader still finds GPS tags"
    return [problem] if problem else []


def _check_blocks(path: Path, data: bytes, container: Container | None, expected) -> list[str]:
    problems = []
    exif_blocks: list[bytes] = []
    packets: list[bytes] = []
    if container is not None and container is not Container.TIFF:
        try:
            blocks = metadata_blocks(data, container)
        except TiffError as exc:
            return [f"the written {container.value} structure is malformed ({exc})"]
        exif_blocks, packets = blocks.exif, blocks.xmp
    else:
        packet = xmp.embedded_packet(path)
        packets = [packet] if packet is not None else []
    for number, block in enumerate(exif_blocks[1:], start=2):
        try:
            found = _exif_position(
                exifread.process_file(io.BytesIO(block), details=False, extract_thumbnail=False)
            )
        except Exception:  # an unreadable second block shows no reader a position
            found = None
        if found is not None and (expected is None or not _same(found, expected)):
            problems.append(f"EXIF block {number} still holds {_describe(found)}")
    for number, packet in enumerate(packets, start=1):
        try:
            found = xmp.gps_from_packet(packet)
        except xmp.XmpGpsError:
            found = None if not xmp.has_gps_properties(packet) else (math.nan, math.nan, None)
        if found is not None and (expected is None or not _same(found, expected)):
            problems.append(f"XMP packet {number} still holds {_describe(found)}")
    return problems


def _check_exifread(path: Path, before: Snapshot, expected: Position | None) -> list[str]:
    if before.exifread_tags is None:
        return []
    try:
        tags = _exifread_native(path)
        found = _exif_position(tags)
    except Exception as exc:  # exifread on a file it cannot parse
        return [f"exifread cannot read the result ({type(exc).__name__}: {exc})"]
    problems = []
    after = _non_gps_exifread(tags)
    lost = sorted(k for k, v in before.exifread_tags.items() if after.get(k) != v)
    if expected is None and not any(k.startswith(("Image ", "EXIF ")) for k in after):
        lost = [k for k in lost if k not in _EXIFREAD_MANDATORY]  # the empty block went
    if lost:
        problems.append(_lost("exifread", lost))
    if tags and (expected is None or found is not None):
        problem = _position_problem("exifread", found, expected)
        if problem:
            problems.append(problem)
    return problems


def _lost(who: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN]) + (
        f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    )
    return f"{who} finds tags lost or changed: {shown}"


def _exiftool_positions(doc: dict) -> list[tuple[str, Position]]:
    """Every position exiftool shows, named by its group (and copy): GPS-group values are
    unsigned (their references are checked apart), XMP and Composite ones signed."""
    found = []
    for key, value in doc.items():
        tag = _tag(key)
        if tag != "GPSLatitude":
            continue
        prefix = key[: -len(tag)]
        alt = doc.get(prefix + "GPSAltitude")
        position = (
            _number(value),
            _number(doc.get(prefix + "GPSLongitude")),
            None if alt is None else _number(alt),
        )
        below = str(doc.get(prefix + "GPSAltitudeRef", 0)).strip() == "1"
        if _group(key) == "XMP-exif" and position[2] is not None and below:
            position = (position[0], position[1], -position[2])
        found.append((prefix.rstrip(":"), position))
    return found


def exiftool_positions(tool: et.Exiftool, path: Path) -> list[tuple[str, Position]]:
    """Every position exiftool shows in ``path`` (see :func:`_exiftool_positions`)."""
    return _exiftool_positions(_exiftool_json(tool, path))


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _refs(doc: dict, tag: str) -> set[str]:
    """The values of every GPS-group ``tag`` (e.g. ``GPSLatitudeRef``), in every copy."""
    return {
        str(value).strip().upper()
        for key, value in doc.items()
        if _group(key) == "GPS" and _tag(key) == tag
    }


def _expected_in(group: str, expected: Position) -> Position:
    lat, lon, alt = expected
    if group == "GPS":  # unsigned values; the references carry the signs
        return abs(lat), abs(lon), None if alt is None else abs(alt)
    if group == "Composite":  # its altitude comes from whichever group exiftool prefers
        return lat, lon, alt
    return expected


def _check_exiftool(path: Path, before: Snapshot, tool, expected: Position | None) -> list[str]:
    if tool is None or before.exiftool_tags is None:
        return []
    try:
        doc = _exiftool_json(tool, path)
    except et.ExiftoolError as exc:
        return [f"exiftool cannot read the result ({exc})"]
    if "ExifTool:Error" in doc:
        return [f"exiftool cannot read the result ({doc['ExifTool:Error']})"]
    problems = []
    after = _non_gps_exiftool(doc)
    lost = sorted({k for k, _v in before.exiftool_tags - after})
    if expected is None and not any(_group(k) in ("IFD0", "ExifIFD") for k, _v in after):
        lost = [k for k in lost if k not in _EXIFTOOL_MANDATORY]  # the empty block went
    if lost:
        problems.append(_lost("exiftool", lost))
    positions = _exiftool_positions(doc)
    if expected is None:
        problems += [
            f"exiftool still finds a position in {name} ({_describe(position)})"
            for name, position in positions
        ]
        return problems
    if not positions:
        problems.append("exiftool finds no position")
    for name, position in positions:
        want = _expected_in(_group(name), expected)
        if _group(name) == "Composite" and position[2] is not None and want[2] is not None:
            position = (position[0], position[1], want[2])
        if not _same(position, want):
            problems.append(
                f"exiftool finds {_describe(position)} in {name}, not {_describe(want)}"
            )
    lat, lon, alt = expected
    wanted_refs = {
        "GPSLatitudeRef": {"N" if lat >= 0 else "S"},
        "GPSLongitudeRef": {"E" if lon >= 0 else "W"},
        "GPSAltitudeRef": set() if alt is None else {"1" if alt < 0 else "0"},
    }
    for tag, wanted in wanted_refs.items():
        refs = _refs(doc, tag)
        if refs and refs != wanted:
            problems.append(
                f"exiftool finds {tag} {', '.join(sorted(refs))}, not {', '.join(wanted) or 'none'}"
            )
    return problems


def check_written(
    path: Path, before: Snapshot, expected: Position | None, tool: et.Exiftool | None
) -> list[str]:
    """What is wrong with the written file at ``path`` (a temporary copy) whose original gave
    ``before``: ``expected`` is the position it must hold, ``None`` after a removal. Empty when
    every reader agrees."""
    data = path.read_bytes()
    container = sniff(data[:16])
    problems = _check_ours(path, expected)
    problems += _check_blocks(path, data, container, expected)
    problems += _check_exifread(path, before, expected)
    problems += _check_exiftool(path, before, tool, expected)
    return problems
