"""Photos placed by time: each UTC capture time matched to the fixes of GPS tracks.

The rules (:class:`MatchConfig`): a photo between two fixes of one segment that are at most
``interpolate_s`` apart is placed between them, along the great circle, elevation linear in
time; otherwise it takes the nearest fix of any segment when that is at most ``max_gap_s``
away; otherwise it is left alone and :class:`Match` says why. Segments are matched one at a
time with ``searchsorted`` over the photos (no loop over photos), so 10,000 photos against
a track of 100,000 fixes take milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from locdiff_core.photo.tracks import Segment, Track


@dataclass(frozen=True)
class MatchConfig:
    """``max_gap_s``: how far in time the nearest fix may be; ``interpolate_s``: how far apart
    two fixes may be for a photo between them to be placed on the line joining them."""

    max_gap_s: float = 60.0
    interpolate_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("max_gap_s", "interpolate_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number of seconds >= 0; got {value!r}")


@dataclass(frozen=True)
class Match:
    """Where the track puts a photo: ``lat``/``lon`` (``None``: not placed), ``ele`` (``None``:
    the track has none there), ``gap_s`` (seconds to the nearest fix used), ``track`` (its
    label) and ``why`` (a sentence for the user either way)."""

    lat: float | None
    lon: float | None
    ele: float | None
    gap_s: float | None
    track: str | None
    why: str

    @property
    def placed(self) -> bool:
        return self.lat is not None


def _unit(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def slerp(
    lat0: np.ndarray, lon0: np.ndarray, lat1: np.ndarray, lon1: np.ndarray, f: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Points a fraction ``f`` of the way along the great circle from the first points to the
    second (the shorter way; equal points stay put)."""
    a, b = _unit(lat0, lon0), _unit(lat1, lon1)
    dot = np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)
    omega = np.arccos(dot)
    sin_o = np.sin(omega)
    small = sin_o < 1e-12
    safe = np.where(small, 1.0, sin_o)
    wa = np.where(small, 1.0 - f, np.sin((1.0 - f) * omega) / safe)
    wb = np.where(small, f, np.sin(f * omega) / safe)
    p = wa[..., None] * a + wb[..., None] * b
    p /= np.linalg.norm(p, axis=-1, keepdims=True)
    lat = np.degrees(np.arcsin(np.clip(p[..., 2], -1.0, 1.0)))
    lon = np.degrees(np.arctan2(p[..., 1], p[..., 0]))
    return lat, lon


@dataclass
class _Best:
    """The best placement found so far for every photo (vectors over the photos)."""

    n: int

    def __post_init__(self) -> None:
        self.gap = np.full(self.n, np.inf)  # seconds to the nearest fix used
        self.lat = np.full(self.n, np.nan)
        self.lon = np.full(self.n, np.nan)
        self.ele = np.full(self.n, np.nan)
        self.track = np.full(self.n, -1)
        self.interpolated = np.zeros(self.n, dtype=bool)
        self.nearest_any = np.full(self.n, np.inf)  # to any fix, placed or not (for the reason)
        self.inside = np.zeros(self.n, dtype=bool)  # within some segment's time range

    def take(self, mask, gap, lat, lon, ele, track, interpolated) -> None:
        better = mask & (gap < self.gap)
        self.gap[better] = gap[better]
        self.lat[better], self.lon[better], self.ele[better] = lat[better], lon[better], ele[better]
        self.track[better] = track
        self.interpolated[better] = interpolated


def _match_segment(
    seg: Segment, times: np.ndarray, config: MatchConfig, best: _Best, track: int
) -> None:
    t = seg.times
    i = np.searchsorted(t, times, side="left")  # first fix at or after each photo
    has_after, has_before = i < len(t), i > 0
    after = np.minimum(i, len(t) - 1)
    before = np.maximum(i - 1, 0)
    d_after = np.where(has_after, t[after] - times, np.inf)
    d_before = np.where(has_before, times - t[before], np.inf)
    exact = has_after & (d_after == 0)
    nearest = np.minimum(d_after, d_before)
    best.nearest_any = np.minimum(best.nearest_any, nearest)
    best.inside |= (has_after & has_before) | exact

    # between two fixes close enough in time: on the great circle joining them
    span = np.where(has_after & has_before, t[after] - t[before], np.inf)
    between = has_after & has_before & ~exact & (span <= config.interpolate_s)
    f = np.divide(d_before, span, out=np.zeros_like(span), where=between & (span > 0))
    lat, lon = slerp(seg.lat[before], seg.lon[before], seg.lat[after], seg.lon[after], f)
    ele = seg.ele[before] + f * (seg.ele[after] - seg.ele[before])
    best.take(between, nearest, lat, lon, ele, track, True)

    # otherwise the nearest fix, when close enough
    use_after = d_after <= d_before
    idx = np.where(use_after, after, before)
    near = ~between & (nearest <= config.max_gap_s)
    best.take(near, nearest, seg.lat[idx], seg.lon[idx], seg.ele[idx], track, False)


def _seconds(value: float) -> str:
    if value < 1:
        return "at a fix" if value == 0 else f"{value:.1f} s from a fix"
    if value < 120:
        return f"{value:.0f} s from a fix"
    if value < 7200:
        return f"{value / 60:.0f} min from a fix"
    if value < 172800:
        return f"{value / 3600:.1f} h from a fix"
    return f"{value / 86400:.0f} days from a fix"


def match_times(
    times: Sequence[float] | np.ndarray,
    tracks: Sequence[Track],
    config: MatchConfig = MatchConfig(),
) -> list[Match]:
    """A :class:`Match` for every UTC time in ``times`` (NaN: the photo has no time)."""
    stamps = np.asarray(times, dtype=np.float64)
    best = _Best(len(stamps))
    valid = np.isfinite(stamps)
    query = np.where(valid, stamps, 0.0)
    for k, track in enumerate(tracks):
        for seg in track.segments:
            if len(seg):
                _match_segment(seg, query, config, best, k)
    out = []
    for j in range(len(stamps)):
        if not valid[j]:
            out.append(Match(None, None, None, None, None, "no capture time"))
        elif best.track[j] < 0:
            why = _why_not(best.nearest_any[j], bool(best.inside[j]), config)
            out.append(Match(None, None, None, None, None, why))
        else:
            label = tracks[best.track[j]].label
            gap = float(best.gap[j])
            how = "between two fixes, " if best.interpolated[j] and gap > 0 else ""
            ele = float(best.ele[j]) if np.isfinite(best.ele[j]) else None
            out.append(
                Match(
                    float(best.lat[j]),
                    float(best.lon[j]),
                    ele,
                    gap,
                    label,
                    f"track: {label}, {how}{_seconds(gap)}",
                )
            )
    return out


def _why_not(nearest: float, inside: bool, config: MatchConfig) -> str:
    if not np.isfinite(nearest):
        return "no track to match"
    away = _seconds(nearest).removesuffix(" from a fix")
    if not inside:
        return f"outside every track's time: the nearest fix is {away} away"
    return (
        f"in a gap of the track: the nearest fix is {away} away (more than "
        f"{config.max_gap_s:g} s) and the fixes around it are more than "
        f"{config.interpolate_s:g} s apart"
    )
