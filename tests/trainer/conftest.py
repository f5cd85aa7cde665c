import numpy as np
import pytest


@pytest.fixture
def arrays():
    """A valid small dataset as a dict of arrays (5 rows, D = 4), to be spoiled by a test."""
    gen = np.random.default_rng(7)
    return {
        "embedding": gen.standard_normal((5, 4)).astype(np.float32),
        "lat": np.array([48.85, -33.87, 0.0, 90.0, -90.0]),
        "lon": np.array([2.35, 151.21, 0.0, 10.0, -170.0]),
        "id": np.array(["paris", "sydney", "null island", "north", "south"]),
    }
