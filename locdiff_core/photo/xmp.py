"""GPS in XMP: embedded packets and ``.xmp`` sidecars (read, write, remove).

XMP stores GPS in the EXIF namespace as text: ``exif:GPSLatitude="43,28.0153N"`` (degrees,
decimal minutes and a reference letter; ``DDD,MM,SSk`` also occurs), ``exif:GPSAltitude="1234/10"``
and ``exif:GPSAltitudeRef="1"`` below sea level. Properties may be attributes of an
``rdf:Description`` or child elements. Sidecars are found as ``photo.xmp`` (Adobe, exiftool) or
``photo.jpg.xmp`` (darktable); new ones are written as ``photo.jpg.xmp``.

Parsing uses the standard library's expat, which refuses entity-expansion bombs (expat >= 2.4.1
ships with Python 3.11); packets larger than :data:`MAX_PACKET_BYTES` are not parsed.
"""

from __future__ import annotations

import io
import mmap
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from locdiff_core.photo.safe_io import check_regular

EXIF_NS = "http://ns.adobe.com/exif/1.0/"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
X_NS = "adobe:ns:meta/"
MAX_PACKET_BYTES = 16 * 1024 * 1024
_GPS_PROPS = ("GPSLatitude", "GPSLongitude", "GPSAltitude", "GPSAltitudeRef")
_COORD = re.compile(r"^\s*(\d+(?:\.\d+)?)(?:,(\d+(?:\.\d+)?))?(?:,(\d+(?:\.\d+)?))?\s*([NSEW])\s*$")


class XmpGpsError(ValueError):
    """An XMP GPS value that is present but cannot be a position."""


def sidecar_candidates(photo: Path) -> tuple[Path, Path]:
    """Where a sidecar of ``photo.jpg`` may be: ``photo.jpg.xmp`` (unambiguous when a raw and
    a JPEG share a name; new sidecars go here), then ``photo.xmp``."""
    return photo.with_name(photo.name + ".xmp"), photo.with_suffix(".xmp")


def find_sidecar(photo: Path) -> Path | None:
    """The existing sidecar of ``photo``, if any."""
    for candidate in sidecar_candidates(photo):
        if candidate != photo and candidate.is_file():
            return candidate
    return None


def read_sidecar(sidecar: Path) -> bytes:
    """The bytes of a sidecar file; a FIFO, socket or device raises
    :class:`~locdiff_core.photo.errors.PhotoError` without being opened."""
    check_regular(sidecar, what="an XMP sidecar", doing="reading the sidecar")
    with open(sidecar, "rb") as f:
        return f.read(MAX_PACKET_BYTES + 1)


def embedded_packet(path: Path) -> bytes | None:
    """The first XMP packet inside any file (JPEG APP1, PNG iTXt, TIFF tag 700, WebP ``XMP ``
    chunk and HEIF items all store it as plain text), or ``None``."""
    with open(path, "rb") as f:
        try:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            return None
        with data:
            for start_tag, end_tag in (
                (b"<x:xmpmeta", b"</x:xmpmeta>"),
                (b"<rdf:RDF", b"</rdf:RDF>"),
            ):
                start = data.find(start_tag)
                if start < 0:
                    continue
                end = data.find(end_tag, start, start + MAX_PACKET_BYTES)
                if end > 0:
                    return data[start : end + len(end_tag)]
    return None


def parse_coordinate(text: str, axis: str) -> float:
    """Signed degrees of an XMP GPS coordinate (``axis`` is ``"lat"`` or ``"lon"``).

    Accepts ``DDD,MM.mmk``, ``DDD,MM,SSk`` and ``DDD.dddk``; raises :class:`XmpGpsError`.
    """
    m = _COORD.match(text)
    if m is None:
        raise XmpGpsError(f"XMP {axis} {text!r} is not in the form DDD,MM.mmN")
    deg, minutes, seconds, ref = m.groups()
    value = float(deg) + float(minutes or 0) / 60.0 + float(seconds or 0) / 3600.0
    valid_refs, limit = ("NS", 90.0) if axis == "lat" else ("EW", 180.0)
    if ref not in valid_refs:
        raise XmpGpsError(f"XMP {axis} {text!r} has reference {ref!r}; expected {valid_refs}")
    if float(minutes or 0) >= 60 or float(seconds or 0) > 60 or value > limit:
        raise XmpGpsError(f"XMP {axis} {text!r} is out of range")
    return -value if ref in "SW" else value


def format_coordinate(value: float, axis: str) -> str:
    """``DDD,MM.mmmmmmmmk`` for signed degrees (1e-8 minutes, about 0.02 mm)."""
    ref = ("N" if value >= 0 else "S") if axis == "lat" else ("E" if value >= 0 else "W")
    a = abs(value)
    deg = int(a)
    minutes = round((a - deg) * 60.0, 8)
    if minutes >= 60.0:
        deg, minutes = deg + 1, 0.0
    return f"{deg},{minutes:.8f}{ref}"


def _properties(root: ET.Element) -> dict[str, str]:
    found: dict[str, str] = {}
    for el in root.iter():
        for key, value in el.attrib.items():
            if key.startswith("{" + EXIF_NS + "}"):
                found.setdefault(key[len(EXIF_NS) + 2 :], value)
        if el.tag.startswith("{" + EXIF_NS + "}") and el.text and el.text.strip():
            found.setdefault(el.tag[len(EXIF_NS) + 2 :], el.text.strip())
    return found


def gps_from_packet(packet: bytes) -> tuple[float, float, float | None] | None:
    """``(lat, lon, alt)`` from an XMP packet, ``None`` when it holds no position.

    Raises :class:`XmpGpsError` for a malformed packet or a present but invalid position.
    """
    if len(packet) > MAX_PACKET_BYTES:
        raise XmpGpsError(f"XMP packet of {len(packet):,} bytes is too large to parse")
    try:
        root = ET.fromstring(packet)
    except ET.ParseError as exc:
        raise XmpGpsError(f"XMP is not well-formed XML ({exc})") from exc
    props = _properties(root)
    if "GPSLatitude" not in props and "GPSLongitude" not in props:
        return None
    if "GPSLatitude" not in props or "GPSLongitude" not in props:
        raise XmpGpsError("XMP holds only one of GPSLatitude and GPSLongitude")
    lat = parse_coordinate(props["GPSLatitude"], "lat")
    lon = parse_coordinate(props["GPSLongitude"], "lon")
    return lat, lon, _altitude(props)


def _altitude(props: dict[str, str]) -> float | None:
    text = props.get("GPSAltitude")
    if text is None:
        return None
    num, _, den = text.partition("/")
    try:
        alt = float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return None  # a broken altitude does not void the position
    return -alt if props.get("GPSAltitudeRef", "0").strip() == "1" else alt


_NEW_SIDECAR = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    f'<x:xmpmeta xmlns:x="{X_NS}">\n'
    f' <rdf:RDF xmlns:rdf="{RDF_NS}">\n'
    f'  <rdf:Description rdf:about="" xmlns:exif="{EXIF_NS}"/>\n'
    " </rdf:RDF>\n"
    "</x:xmpmeta>\n"
    '<?xpacket end="w"?>\n'
)


def _load_tree(text: bytes) -> ET.Element:
    # Keep the file's own prefixes (ElementTree would otherwise write ns0:, ns1:, ...).
    for _event, (prefix, uri) in ET.iterparse(io.BytesIO(text), events=("start-ns",)):
        if prefix and not prefix.startswith("ns"):
            ET.register_namespace(prefix, uri)
    ET.register_namespace("exif", EXIF_NS)
    return ET.fromstring(text)


def updated_sidecar(existing: bytes | None, gps: tuple[float, float, float | None] | None) -> bytes:
    """Sidecar bytes with the GPS position set to ``gps`` (or every ``exif:GPS*`` property
    removed when ``gps`` is ``None``), everything else in ``existing`` kept."""
    root = _load_tree(existing if existing is not None else _NEW_SIDECAR.encode())
    descriptions = list(root.iter(f"{{{RDF_NS}}}Description"))
    if not descriptions:
        raise XmpGpsError("the sidecar has no rdf:Description to hold GPS")
    for desc in descriptions:
        for key in [k for k in desc.attrib if k.startswith(f"{{{EXIF_NS}}}GPS")]:
            del desc.attrib[key]
        for child in [c for c in desc if c.tag.startswith(f"{{{EXIF_NS}}}GPS")]:
            desc.remove(child)
    if gps is not None:
        lat, lon, alt = gps
        attrs = descriptions[0].attrib
        attrs[f"{{{EXIF_NS}}}GPSVersionID"] = "2.3.0.0"
        attrs[f"{{{EXIF_NS}}}GPSLatitude"] = format_coordinate(lat, "lat")
        attrs[f"{{{EXIF_NS}}}GPSLongitude"] = format_coordinate(lon, "lon")
        if alt is not None:
            attrs[f"{{{EXIF_NS}}}GPSAltitude"] = f"{round(abs(alt) * 1000)}/1000"
            attrs[f"{{{EXIF_NS}}}GPSAltitudeRef"] = "1" if alt < 0 else "0"
    body = ET.tostring(root, encoding="unicode")
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        + body
        + '\n<?xpacket end="w"?>\n'
    ).encode()


def has_gps_properties(packet: bytes) -> bool:
    """Whether a packet names any ``exif:GPS*`` property (cheap text test, no parsing)."""
    return re.search(rb"exif:GPS(Latitude|Longitude)", packet) is not None
