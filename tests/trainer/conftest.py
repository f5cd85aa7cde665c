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


@pytest.fixture
def train_val(tmp_path):
    """A folder with a small generated ``train.npz`` (400 rows, D = 16) and ``val.npz`` (40)."""
    from trainer.data import save_embeddings
    from trainer.synthetic import SyntheticTask

    task = SyntheticTask(dim_cond=16)
    save_embeddings(tmp_path / "train.npz", *task.sample(400, seed=1))
    save_embeddings(tmp_path / "val.npz", *task.sample(40, seed=2))
    return tmp_path
