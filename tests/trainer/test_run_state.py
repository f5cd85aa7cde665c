"""A saved training state is the one read back: a bit flipped in its tensors is refused as
damage (sha256), NaN values in it are named as damage rather than blamed on the learning rate,
and a state saved without a sha256 is still read, with a note that it was not checked."""

import io
import struct
import zipfile

import pytest
import torch

from locdiff_core.checkpoint import content_sha256
from locdiff_core.run_layout import STATE_FILE
from trainer import run_state
from trainer.cli import main
from trainer.data import save_embeddings
from trainer.synthetic import SyntheticTask

TINY = "--degree 3 --widths 16 --bottleneck 8 --anchors 32 --batch-size 20 --epochs 10 "
TINY += "--dropout 0 --log-every 1 --checkpoint-every 1 --seed 3"


@pytest.fixture
def run(tmp_path):
    """A run folder after two training steps (checkpoint and training state saved)."""
    data, out = tmp_path / "train.npz", tmp_path / "run"
    save_embeddings(data, *SyntheticTask(dim_cond=8).sample(60, seed=1))
    args = ["train", "--data", str(data), "--out", str(out), *TINY.split(), "--max-steps", "2"]
    assert main(args) == 0
    return out


def _state(run):
    path = run / STATE_FILE
    return path, run_state.parse_training_state(path.read_bytes(), str(path))


def _resume(run, capsys) -> tuple[int, str]:
    code = main(["train", "--resume", str(run), "--max-steps", "3"])
    return code, capsys.readouterr().err


def _rewrite(path, change, *, record_sha256: bool = True) -> None:
    """Load the state, apply ``change`` to it and save it again (a consistent sha256 unless
    ``record_sha256`` is false, as an older locdiff wrote it)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    del blob["sha256"]
    change(blob)
    if record_sha256:
        blob["sha256"] = content_sha256(blob)
    buf = io.BytesIO()
    torch.save(blob, buf)
    path.write_bytes(buf.getvalue())


def _flip_tensor_bit(path) -> str:
    """Flip the lowest bit of a tensor's first byte inside the zip archive torch writes
    (stored uncompressed); returns the archive entry changed."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("/data/0"))
    assert info.compress_type == zipfile.ZIP_STORED
    name_len, extra_len = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    data[info.header_offset + 30 + name_len + extra_len] ^= 0x01
    path.write_bytes(bytes(data))
    return info.filename


def test_a_saved_state_reads_back_checked(run):
    path, state = _state(run)
    assert state.checked and state.step == 2
    assert set(state.model) == set(torch.load(path, weights_only=True)["model"])


def test_a_bit_flip_in_the_state_tensors_is_refused_as_damage(run, capsys):
    path = run / STATE_FILE
    intact = path.read_bytes()
    _flip_tensor_bit(path)
    torch.load(path, weights_only=True)  # torch itself reads the flipped file without a word
    with pytest.raises(ValueError) as refused:
        run_state.parse_training_state(path.read_bytes(), str(path))
    assert str(refused.value) == (
        f"{path} is damaged: its sha256 does not match the one recorded at save time; "
        "re-copy it or retrain"
    )
    code, err = _resume(run, capsys)
    assert code == 2 and f"{path} is damaged" in err and "Traceback" not in err
    path.write_bytes(intact)
    assert _state(run)[1].checked
    assert _resume(run, capsys)[0] == 0


def test_nan_in_the_saved_weights_is_named_as_damage_not_divergence(run, capsys):
    path = run / STATE_FILE

    def poison(blob):
        blob["model"]["out.bias"][0] = float("nan")

    _rewrite(path, poison)  # the sha256 matches: only the NaN is wrong
    code, err = _resume(run, capsys)
    assert code == 2
    assert (
        f"{path} holds NaN values in model tensor 'out.bias': the file is damaged (or was "
        "saved after training diverged)"
    ) in err
    assert "--lr" not in err and "diverged:" not in err


def test_inf_in_the_optimizer_moments_is_named(run):
    path = run / STATE_FILE

    def poison(blob):
        blob["optimizer"]["state"][0]["exp_avg_sq"].view(-1)[0] = float("inf")

    _rewrite(path, poison)
    with pytest.raises(ValueError, match=r"holds infinite values in optimizer state 'exp_avg_sq'"):
        _state(run)


def test_a_state_without_a_sha256_is_read_unchecked_with_a_note(run, capsys):
    path = run / STATE_FILE
    _rewrite(path, lambda blob: None, record_sha256=False)
    assert not _state(run)[1].checked
    code, err = _resume(run, capsys)
    assert code == 0 and "records no sha256" in err and "read unchecked" in err
    assert _state(run)[1].checked  # the resumed run's save recorded one


def test_divergence_during_training_is_told_apart_from_damage(run, capsys):
    data = run.parent / "train.npz"
    other = run.parent / "diverges"
    args = ["train", "--data", str(data), "--out", str(other), *TINY.split(), "--lr", "1e30"]
    assert main([*args, "--max-steps", "4"]) == 1
    err = capsys.readouterr().err
    assert "training diverged: non-finite" in err and "arising during training" in err
    assert "--lr" in err and "damaged" not in err
