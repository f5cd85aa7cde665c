"""The Trainer tab runs real child processes: ``locdiff embed`` on generated geotagged JPEGs with
the tiny encoder, and a tiny CPU training under torchrun whose curves fill from metrics.jsonl;
Stop ends it with exit code 0 and a checkpoint, Resume continues it, Kill ends it at once. The
status says how each job ended: where a stopped or killed run got to and which step Resume
continues from, that a finished run finished, a failed run's own last lines. "More options" is
checked as it is typed."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.model.training_job import TrainingSpec, process_tree
from locdiff_core.photo.writing import BackupMode, WriteConfig, write_gps
from locdiff_core.run_layout import checkpoint_step
from trainer.data import save_embeddings
from trainer.synthetic import SyntheticTask

pytestmark = pytest.mark.display
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 120_000
TINY = "--widths 32,16 --bottleneck 8 --anchors 64 --dropout 0 --lr 1e-3 --log-every 2 "
TINY += "--checkpoint-every 1000 --val-items 8"


@pytest.fixture
def tab(qtbot, monkeypatch):
    pytest.importorskip("PySide6.QtWidgets", reason="Qt cannot load on this machine")
    from app.widgets.trainer_tab import TrainerTab

    # the child processes run this checkout, one thread each (2 shared cores)
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    widget = TrainerTab()
    widget.gpu_count = 0  # no probe unless a test asks for one
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    widget.shutdown()


def _spec(tmp_path, **changes):
    return TrainingSpec(**{"output": str(tmp_path / "job"), "model": "ViT-B-32", **changes})


def _log(tab) -> str:
    return tab.log.toPlainText()


def test_a_bad_spec_is_explained_and_nothing_starts(tab, tmp_path):
    tab.set_spec(_spec(tmp_path, photos=str(tmp_path / "missing"), epochs=0, num_nodes=2,
                       endpoint="nowhere"))  # fmt: skip
    tab.buttons["Build dataset"].click()
    assert f"photo folder {tmp_path / 'missing'} does not exist" in tab.problems.text()
    tab.buttons["Train"].click()
    text = tab.problems.text()
    assert "epochs 0: train at least 1 epoch" in text
    assert "rendezvous endpoint 'nowhere': write HOST:PORT" in text
    assert "build it first" in text
    tab.extra.setText("--lr 'open")
    tab.buttons["Train"].click()
    assert "close the quote" in tab.problems.text()
    assert not tab.is_running() and tab.process is None


def test_an_output_folder_that_cannot_be_made_is_explained(tab, tmp_path, monkeypatch):
    data = tmp_path / "train.npz"
    save_embeddings(data, *SyntheticTask(dim_cond=16).sample(40, seed=1))
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    tab.set_spec(_spec(tmp_path, output=str(blocker), dataset=str(data), degree=4))
    tab.buttons["Train"].click()  # the checks see it first
    assert f"output folder {blocker} is a file" in tab.problems.text()

    def denied(self, *args, **kwargs):  # as a read-only disk would (root may write anywhere)
        raise PermissionError(13, "Permission denied", str(self))

    tab.set_spec(_spec(tmp_path, output=str(tmp_path / "ro"), dataset=str(data), degree=4))
    monkeypatch.setattr(Path, "mkdir", denied)
    tab.buttons["Train"].click()
    assert not tab.is_running() and tab.process is None
    assert f"{tmp_path / 'ro'}: cannot prepare it (Permission denied)" in tab.problems.text()


def test_copy_command_and_use_this_model(tab, tmp_path, qtbot):
    from PySide6.QtGui import QGuiApplication

    data = tmp_path / "data.npz"
    data.write_bytes(b"x")
    tab.set_spec(_spec(tmp_path, dataset=str(data), num_nodes=2, endpoint="10.1.2.3:29400"))
    tab.buttons["Copy command"].click()
    copied = QGuiApplication.clipboard().text()
    assert "--rdzv-endpoint 10.1.2.3:29400" in copied and "--node-rank 1" in copied
    tab.buttons["Use this model"].click()
    assert "no checkpoint yet" in tab.problems.text()
    run = tmp_path / "job" / "run"
    run.mkdir(parents=True)
    (run / "checkpoint.safetensors").write_bytes(b"x")
    with qtbot.waitSignal(tab.checkpoint_chosen) as chosen:
        tab.buttons["Use this model"].click()
    assert chosen.args == [str(run)]


def test_use_this_model_loads_the_run_in_the_main_window(make_window, tiny_checkpoint, qtbot):
    window = make_window()
    qtbot.waitUntil(lambda: window.model_state == "missing", timeout=20_000)
    window.trainer_tab._run_dir = tiny_checkpoint  # as after a training run into it
    window.trainer_tab.buttons["Use this model"].click()
    assert window.settings.checkpoint == str(tiny_checkpoint)
    qtbot.waitUntil(lambda: window.model_state == "ready", timeout=30_000)


def test_the_gpu_count_comes_from_a_child_process(tab, qtbot):
    tab.detect_gpus()
    qtbot.waitUntil(lambda: tab.gpu_count is not None, timeout=60_000)
    assert ("GPUs:" in tab.gpu_label.text()) == (tab.gpu_count > 0)
    assert tab.device.currentText() == ("cuda" if tab.gpu_count else "cpu")


@pytest.mark.slow
def test_train_stop_resume_kill(tab, tmp_path, qtbot):
    data = tmp_path / "train.npz"
    save_embeddings(data, *SyntheticTask(dim_cond=16).sample(400, seed=1))
    tab.set_spec(_spec(tmp_path, dataset=str(data), degree=4, epochs=500, batch_size=32,
                       val_fraction=0.1, extra_args=tuple(TINY.split())))  # fmt: skip
    tab.buttons["Train"].click()
    assert tab.is_running(), tab.problems.text()
    loss = tab.curves.series["loss"]
    qtbot.waitUntil(lambda: len(loss[0]) >= 3, timeout=TIMEOUT_MS)
    assert all(np.isfinite(loss[1])) and loss[0] == sorted(loss[0])
    with qtbot.waitSignal(tab.job_finished, timeout=TIMEOUT_MS) as finished:
        tab.buttons["Stop"].click()
    assert finished.args == ["train", 0], _log(tab)[-3000:]
    run = tmp_path / "job" / "run"
    assert (run / "checkpoint.safetensors").is_file() and (run / "training_state.pt").is_file()
    assert "stopped after step" in _log(tab) and "[train stopped]" in _log(tab)
    stop = re.fullmatch(
        r"train: stopped at step (\d+) of (\d+) \(checkpoint saved at step \1\)\. "
        r"Resume continues from step \1\.",
        tab.status.text(),
    )
    assert stop and int(stop[1]) < int(stop[2]), tab.status.text()
    saved = int(stop[1])
    assert checkpoint_step(run / "checkpoint.safetensors") == saved
    assert "samples/s" in _log(tab)  # the trainer's own progress lines reach the pane
    assert not (run / "STOP").exists()
    assert len(tab.curves.series["samples_per_s"][0]) == len(loss[0])
    stopped_at = loss[0][-1]

    tab.buttons["Resume"].click()
    assert tab.is_running(), tab.problems.text()
    loss = tab.curves.series["loss"]  # redrawn from the run's whole metrics.jsonl
    qtbot.waitUntil(lambda: bool(loss[0]) and loss[0][-1] > stopped_at + 2, timeout=TIMEOUT_MS)
    assert loss[0][0] < stopped_at  # the history before the stop is there too
    assert "--resume" in _log(tab)
    if not tab.curves.series["acc_750km"][0]:  # an epoch is 10 steps: validation comes soon
        qtbot.waitUntil(lambda: bool(tab.curves.series["acc_750km"][0]), timeout=TIMEOUT_MS)
    pids = process_tree(tab.process.processId())
    assert len(pids) >= 2  # torchrun and its worker
    with qtbot.waitSignal(tab.job_finished, timeout=30_000) as finished:
        tab.buttons["Kill"].click()
    assert finished.args[1] != 0 and "[resume killed]" in _log(tab)
    kill = re.fullmatch(
        rf"resume: killed after step (\d+) of \d+ \(last checkpoint: step {saved}\)\. "
        rf"Resume continues from step {saved}\.",
        tab.status.text(),
    )
    assert kill and int(kill[1]) > saved, tab.status.text()
    for pid in pids:  # nothing of the job is left running
        qtbot.waitUntil(lambda pid=pid: not _alive(pid), timeout=10_000)


def test_more_options_are_checked_as_typed_and_before_launch(tab, tmp_path):
    data = tmp_path / "train.npz"
    data.write_bytes(b"x")
    tab.set_spec(_spec(tmp_path, dataset=str(data)))
    assert tab.extra_problem.isHidden()
    for typed, said in [
        ("--lr-wamup 1e-3", "More options: unknown option --lr-wamup (did you mean --warmup-"),
        ("--max-steps ten", "More options: --max-steps: invalid int value: 'ten'"),
        ("--epochs 3", "More options: --epochs comes from the form: set Epochs"),
        ("--lr '1e-3", "More options: a quote is open: close the quote"),
    ]:  # fmt: skip
        tab.extra.setText(typed)
        assert not tab.extra_problem.isHidden() and tab.extra_problem.text().startswith(said)
        tab.buttons["Train"].click()
        assert said in tab.problems.text() and tab.process is None
    tab.extra.setText("--val v.npz")  # a validation set of its own and a validation share
    assert "set Validation share to 0" in tab.extra_problem.text()
    tab.val_fraction.setValue(0)
    assert tab.extra_problem.isHidden()
    tab.extra.setText(TINY)
    assert tab.extra_problem.isHidden() and tab.extra_problem.text() == ""


@pytest.mark.slow
def test_a_run_that_ends_says_finished_and_one_that_fails_says_why(tab, tmp_path, qtbot):
    data = tmp_path / "train.npz"
    save_embeddings(data, *SyntheticTask(dim_cond=16).sample(40, seed=1))
    tab.set_spec(_spec(tmp_path, dataset=str(data), degree=4, epochs=3, batch_size=32,
                       val_fraction=0, extra_args=tuple(TINY.split())))  # fmt: skip
    with qtbot.waitSignal(tab.job_finished, timeout=TIMEOUT_MS) as finished:
        tab.buttons["Train"].click()
    assert finished.args == ["train", 0], _log(tab)[-3000:]
    checkpoint = tmp_path / "job" / "run" / "checkpoint.safetensors"
    assert tab.status.text() == f"train: finished at step 3 of 3; checkpoint {checkpoint}"
    assert "[train finished]" in _log(tab)

    tab.set_spec(_spec(tmp_path, output=str(tmp_path / "other"), dataset=str(data), degree=4,
                       batch_size=64, val_fraction=0))  # fmt: skip
    with qtbot.waitSignal(tab.job_finished, timeout=TIMEOUT_MS) as finished:
        tab.buttons["Train"].click()
    assert finished.args[1] not in (0, -1)
    status = tab.status.text()
    assert status.startswith(f"train: failed ({finished.args[1]}):\n"), status
    assert status.endswith("fewer than one global batch (--batch-size 64); lower --batch-size")
    assert "ChildFailedError" in _log(tab) and "ChildFailedError" not in status


@pytest.mark.slow
def test_a_run_killed_before_its_first_checkpoint_starts_over(tab, tmp_path, qtbot):
    data = tmp_path / "train.npz"
    save_embeddings(data, *SyntheticTask(dim_cond=16).sample(200, seed=1))
    tab.set_spec(_spec(tmp_path, dataset=str(data), degree=4, epochs=500, batch_size=32,
                       val_fraction=0, extra_args=tuple(TINY.split())))  # fmt: skip
    tab.buttons["Train"].click()
    qtbot.waitUntil(lambda: len(tab.curves.series["loss"][0]) >= 2, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(tab.job_finished, timeout=30_000):
        tab.buttons["Kill"].click()
    assert re.fullmatch(
        r"train: killed after step \d+ of 3000; no checkpoint was saved yet, so Train starts "
        r"over\.",
        tab.status.text(),
    ), tab.status.text()


@pytest.mark.slow
def test_two_nodes_from_the_tab_and_the_copied_line(tab, tmp_path, qtbot):
    """The tab launches node 0 of a two-node run; the second "machine" runs the node-1 line
    that *Copy command* gives. Both join one rendezvous and the run ends with a checkpoint."""
    from app.model.training_job import copy_commands

    data = tmp_path / "train.npz"
    save_embeddings(data, *SyntheticTask(dim_cond=16).sample(200, seed=1))
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = _spec(tmp_path, dataset=str(data), degree=4, epochs=2, batch_size=32,
                 num_nodes=2, endpoint=f"127.0.0.1:{port}",
                 extra_args=tuple(TINY.split()))  # fmt: skip
    tab.set_spec(spec)
    tab.buttons["Train"].click()
    assert tab.is_running(), tab.problems.text()
    lines = copy_commands(spec).splitlines()
    node1 = shlex.split(lines[lines.index("# node 1 of 2") + 1])
    assert node1[0] == "torchrun" and node1[node1.index("--node-rank") + 1] == "1"
    other = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", *node1[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with qtbot.waitSignal(tab.job_finished, timeout=TIMEOUT_MS) as finished:
            pass
        out, _ = other.communicate(timeout=60)
    finally:
        other.kill()
    assert finished.args == ["train", 0], _log(tab)[-3000:]
    assert other.returncode == 0, out[-3000:]
    assert "2 process(es)" in _log(tab)  # one world of two processes, one per node
    assert (tmp_path / "job" / "run" / "checkpoint.safetensors").is_file()
    assert tab.curves.series["loss"][0]  # node 0's metrics reached the curves


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waits for its parent to reap it: it runs no more
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_build_dataset_runs_locdiff_embed(tab, tmp_path, qtbot, tiny_encoder):
    photos = tmp_path / "photos"
    photos.mkdir()
    config = WriteConfig(backup=BackupMode.NONE, journal_dir=tmp_path / "journal")
    rng = np.random.default_rng(0)
    for i, (lat, lon) in enumerate([(48.85, 2.35), (-33.86, 151.21), (35.68, 139.69)]):
        pixels = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(photos / f"p{i}.jpg", quality=90)
        assert write_gps([photos / f"p{i}.jpg"], lat, lon, config=config)[0].ok
    tab.set_spec(_spec(tmp_path, photos=str(photos), model=str(tiny_encoder.model),
                       pretrained="", weights=str(tiny_encoder.weights)))  # fmt: skip
    with qtbot.waitSignal(tab.job_finished, timeout=TIMEOUT_MS) as finished:
        tab.buttons["Build dataset"].click()
    log = _log(tab)
    assert finished.args == ["embed", 0], log[-3000:]
    dataset = tmp_path / "job" / "dataset"
    assert f"{dataset}: 3 embedded" in log and "manifest:" in log
    assert "[embed finished]" in log
