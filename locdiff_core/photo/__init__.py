"""Photos in and out, without Qt: reading any photo, GPS in EXIF/XMP, lossless GPS writing,
exports and offline place names. Shared by the trainer (EXIF GPS labels) and the app.

Modules, each one idea:

* :mod:`.reading`: open JPEG/PNG/TIFF/WebP/HEIC upright as RGB, thumbnails, size cap.
* :mod:`.gps`: read the position (EXIF, embedded XMP, ``.xmp`` sidecar).
* :mod:`.writing`: write or remove it losslessly, atomically, with backups and undo
  (backends :mod:`.exiftool` and the built-in :mod:`.tiff_gps` + :mod:`.containers`).
* :mod:`.export`: CSV, GeoJSON and GPX of photo locations; :mod:`.geocode`: offline place names.

Per-file failures are :class:`~.errors.PhotoError` with a :class:`~.errors.PhotoErrorKind`;
batch functions return one :class:`~.errors.FileResult` per file and never stop on a bad one.
"""

from locdiff_core.photo.errors import FileResult, PhotoError, PhotoErrorKind
from locdiff_core.photo.gps import GpsFix, GpsSource, read_gps, read_gps_batch
from locdiff_core.photo.reading import ReadConfig, open_image, thumbnail, thumbnails
from locdiff_core.photo.undo import undo_last_batch
from locdiff_core.photo.writing import (
    BackupMode,
    WriteConfig,
    WriteMethod,
    WriterBackend,
    remove_gps,
    write_gps,
    write_gps_each,
)

__all__ = [
    "BackupMode",
    "FileResult",
    "GpsFix",
    "GpsSource",
    "PhotoError",
    "PhotoErrorKind",
    "ReadConfig",
    "WriteConfig",
    "WriteMethod",
    "WriterBackend",
    "open_image",
    "read_gps",
    "read_gps_batch",
    "remove_gps",
    "thumbnail",
    "thumbnails",
    "undo_last_batch",
    "write_gps",
    "write_gps_each",
]
