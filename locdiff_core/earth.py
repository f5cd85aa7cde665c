"""The Earth as the code base models it, without torch: a sphere of the mean radius, and the
great-circle distance between two locations given as Python floats.

The conventions are :mod:`locdiff_core.geo`'s (``(lat, lon)`` in degrees, latitude first); this
module holds what the torch-free parts need of them (the app's session, photo exports), so they
never import torch. :func:`locdiff_core.geo.great_circle_km` is the batched tensor form of
:func:`great_circle_distance_km`, by the same formula.
"""

from __future__ import annotations

import math

EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius


def _unit_vector(lat_deg: float, lon_deg: float) -> tuple[float, float, float]:
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    c = math.cos(lat)
    return c * math.cos(lon), c * math.sin(lon), math.sin(lat)


def great_circle_distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two locations in degrees: the angle between their
    unit vectors as ``atan2(|u x v|, u . v)``, exact near 0 and near antipodes."""
    ux, uy, uz = _unit_vector(lat1, lon1)
    vx, vy, vz = _unit_vector(lat2, lon2)
    cross = math.hypot(uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx)
    dot = ux * vx + uy * vy + uz * vz
    return math.atan2(cross, dot) * EARTH_RADIUS_KM
