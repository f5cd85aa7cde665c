"""Building a session as the window does, for the tests of :mod:`app.model`."""

import numpy as np

from app.model.photo import PhotoPrediction
from app.model.session import Session, identify
from locdiff_core.photo.reading import iter_photos


def prediction(best=(43.47, 11.88), centre=(43.0, 11.0), **engine) -> PhotoPrediction:
    return PhotoPrediction(
        **engine,
        best=best,
        centre=centre,
        candidates=((best[0], best[1], 0.75), (-33.45, -70.67, 0.25)),
        radius50_km=12.5,
        radius90_km=8000.0,
        samples=np.array([best, best, best, (-33.45, -70.67)], dtype=np.float64),
        density=np.ones((9, 18), dtype=np.float32),
    )


def add(session: Session, paths) -> list:
    """Add photos as the window does: :class:`app.workers.loaders.PhotoFinder`'s walk
    (``iter_photos``, each path identified) handed to ``Session.add_found``."""
    return session.add_found(identify(path) for path in iter_photos(paths))
