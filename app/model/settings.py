"""The app's settings: one frozen dataclass, stored as JSON in the per-user config folder.

Qt-free, so tests and the command line read and write settings without a display. The folders
come from ``platformdirs`` (``user_config_dir("LocDiff Studio")`` for ``settings.json``,
``user_data_dir`` for downloaded models, the app's undo journal and its session,
``user_cache_dir`` for map tiles); the environment variables ``LOCDIFF_CONFIG_DIR``,
``LOCDIFF_DATA_DIR`` and ``LOCDIFF_CACHE_DIR`` override them (tests point them at temporary
folders). Saving is atomic. A damaged or hand-edited file never stops the app: loading keeps the
valid fields, falls back to the defaults for the rest and says which, and where.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from app.model.model_info import ENGINE_CHOICES
from locdiff_core.atomic_file import atomic_write
from locdiff_core.engines import SamplerKind
from locdiff_core.photo.writing import WriterBackend

APP_NAME = "LocDiff Studio"
FILE_NAME = "settings.json"
FORMAT_VERSION = 1
CONFIG_ENV = "LOCDIFF_CONFIG_DIR"
DATA_ENV = "LOCDIFF_DATA_DIR"
CACHE_ENV = "LOCDIFF_CACHE_DIR"
SESSION_FILE = "session.sqlite"

DEVICES = ("auto", "cpu", "cuda")
SAMPLERS = (SamplerKind.DDIM.value, SamplerKind.DDPM.value)  # the default first
# locdiff_core.predictor.BestGuess's values (that module loads torch), the default first
BEST_GUESSES = ("mode", "cluster")
WRITE_METHODS = tuple(backend.value for backend in WriterBackend)
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


def config_dir() -> Path:
    """Where ``settings.json`` lives (``LOCDIFF_CONFIG_DIR`` overrides)."""
    override = os.environ.get(CONFIG_ENV)
    return Path(override) if override else Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    """Where downloaded models, the app's write journal and its session live
    (``LOCDIFF_DATA_DIR`` overrides)."""
    override = os.environ.get(DATA_ENV)
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def default_session_path() -> Path:
    """The session the window opens with: ``session.sqlite`` in :func:`data_dir`."""
    return data_dir() / SESSION_FILE


def cache_dir() -> Path:
    """Where the map keeps the tiles it has shown (``LOCDIFF_CACHE_DIR`` overrides): anything
    here may be deleted at any time."""
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else Path(platformdirs.user_cache_dir(APP_NAME))


def _choice(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _int_range(name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}; got {value!r}")


def _non_negative(name: str, value, *, zero_means: str) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a number of km >= 0 (0: {zero_means}); got {value!r}")


def _url(name: str, value: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text; got {value!r}")
    if value and not value.startswith(("http://", "https://", "file://")):
        raise ValueError(f"{name} must start with http:// or https:// (or be empty); got {value!r}")


def check_tile_url(url: str | None) -> str:
    """The tile URL template, validated; "" for none (offline basemap only). The one rule for
    the settings and the map: http(s), a host, and the {z}, {x} and {y} placeholders."""
    if url is not None and not isinstance(url, str):
        raise ValueError(f"tile_url must be text; got {url!r}")
    url = (url or "").strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"tile_url {url!r} must start with http:// or https:// and name a host")
    missing = [p for p in ("{z}", "{x}", "{y}") if p not in url]
    if missing:
        raise ValueError(
            f"tile_url {url!r} lacks {', '.join(missing)}: use a template such as {OSM_TILES}"
        )
    return url


MAP_PACK_FILTER = "Map packs (*.pmtiles *.mbtiles);;All files (*)"  # the open dialog's


@dataclass(frozen=True)
class Settings:
    """Everything the user sets in the Settings dialog; every field is checked on creation."""

    checkpoint: str = ""  # run folder or checkpoint.safetensors; "" = GeoCLIP alone
    encoder_weights: str = ""  # image encoder weights file; "" = the encoder's own cache
    device: str = "auto"  # auto (CUDA when present), cpu or cuda
    num_samples: int = 16  # K samples per photo (paper: 16)
    sampler: str = "ddim"
    num_steps: int = 0  # 0 = the sampler's default (DDIM 20, DDPM all T)
    decode_radius_km: float = 0.0  # 0 = the decoder's default for the model's degree
    cluster_radius_km: float = 250.0  # samples (or gallery places) this close form a candidate
    best_guess: str = "mode"  # LocDiffusion: the posterior's mode or the densest cluster
    engine: str = "auto"  # auto (the best the model offers), geoclip, locdiff or hybrid
    hybrid_radius_km: float = 200.0  # LocDiff-H: GeoCLIP's places this close to a sample count
    density_map: bool = True  # compute each photo's probability map (costs extra time per photo)
    tile_url: str = OSM_TILES  # "" = the offline basemap only
    map_pack: str = ""  # an offline map pack (.pmtiles, .mbtiles) shown as the basemap
    write_backup: bool = True  # keep photo.jpg_original next to each written photo
    undo_removes_backups: bool = True  # after an undo, a backup identical to the photo goes
    write_method: str = "auto"
    model_url: str = ""  # where "Download model" fetches a checkpoint.safetensors

    def __post_init__(self) -> None:
        for name in ("checkpoint", "encoder_weights", "map_pack"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a path as text; got {getattr(self, name)!r}")
        _choice("device", self.device, DEVICES)
        _int_range("num_samples", self.num_samples, 1, 1024)
        _choice("sampler", self.sampler, SAMPLERS)
        _int_range("num_steps", self.num_steps, 0, 10_000)
        _non_negative("decode_radius_km", self.decode_radius_km, zero_means="the default")
        _non_negative("cluster_radius_km", self.cluster_radius_km, zero_means="not allowed")
        if self.cluster_radius_km == 0:
            raise ValueError("cluster_radius_km must be more than 0 km")
        _choice("best_guess", self.best_guess, BEST_GUESSES)
        _choice("engine", self.engine, ENGINE_CHOICES)
        _non_negative("hybrid_radius_km", self.hybrid_radius_km, zero_means="not allowed")
        if self.hybrid_radius_km == 0:
            raise ValueError("hybrid_radius_km must be more than 0 km")
        check_tile_url(self.tile_url)
        for name in ("density_map", "write_backup", "undo_removes_backups"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false; got {getattr(self, name)!r}")
        _choice("write_method", self.write_method, WRITE_METHODS)
        _url("model_url", self.model_url)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_DEFAULTS = Settings()


def settings_path(folder: Path | None = None) -> Path:
    return (folder or config_dir()) / FILE_NAME


def _field_problem(name: str, value) -> str | None:
    """Why ``value`` cannot be used for the field ``name`` (None: it can)."""
    default = getattr(_DEFAULTS, name)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    try:
        dataclasses.replace(_DEFAULTS, **{name: value})
    except ValueError as exc:
        return str(exc)
    return None


def load_settings(folder: Path | None = None) -> tuple[Settings, str | None]:
    """The saved settings and a message for the user when some could not be used (else None).

    A missing file gives the defaults silently; a file that is not valid JSON gives the defaults;
    a field with a bad value gets its default; unknown fields are ignored. The message names the
    file and every problem; saving from the Settings dialog rewrites the file.
    """
    path = settings_path(folder)
    if not path.exists():
        return _DEFAULTS, None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _DEFAULTS, (
            f"{path} could not be read ({exc}); using the default settings. "
            "Saving the settings replaces the file."
        )
    values = raw.get("settings") if isinstance(raw, dict) else None
    if not isinstance(values, dict):
        return _DEFAULTS, (
            f"{path} is not a {APP_NAME} settings file (no 'settings' object); using the "
            "default settings. Saving the settings replaces the file."
        )
    good, problems = {}, []
    for field in dataclasses.fields(Settings):
        if field.name not in values:
            continue
        problem = _field_problem(field.name, values[field.name])
        if problem is None:
            value = values[field.name]
            good[field.name] = float(value) if isinstance(field.default, float) else value
        else:
            problems.append(problem)
    settings = dataclasses.replace(_DEFAULTS, **good)
    if not problems:
        return settings, None
    return settings, (
        f"{path}: some settings were invalid and the defaults are used for them: "
        + "; ".join(problems)
    )


def save_settings(settings: Settings, folder: Path | None = None) -> Path:
    """Write ``settings`` atomically; returns the file written."""
    path = settings_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format_version": FORMAT_VERSION, "settings": settings.to_dict()}, indent=2)
    with atomic_write(path, text=True) as fh:
        fh.write(text + "\n")
    return path
