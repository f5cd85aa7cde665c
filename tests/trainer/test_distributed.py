"""``locdiff train`` under torchrun (gloo, CPU): two processes and two nodes reproduce the
single-process run, a killed run resumes to the same parameters, STOP and SIGTERM end a run
cleanly with exit code 0, a diverged run exits 1 and keeps its last good checkpoint, and a
resume refuses settings that would change what it computes.

Every launch costs seconds of interpreter start-up, so each test shares launches between its
assertions. The reference is one in-process run of ``STEPS`` steps.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from safetensors.torch import load_file

from locdiff_core.checkpoint import load_checkpoint
from locdiff_core.run_layout import STATE_FILE
from trainer import run_state, train
from trainer.cli import main
from trainer.data import save_embeddings
from trainer.synthetic import SyntheticTask

ROOT = Path(__file__).resolve().parents[2]
STEPS = 30
TINY = "--degree 4 --widths 32,16 --bottleneck 8 --anchors 64 --batch-size 32 --epochs 100 "
TINY += "--dropout 0 --lr 1e-3 --log-every 5 --checkpoint-every 5 --seed 3"
TINY = TINY.split()
TIMEOUT = 240.0


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["OMP_NUM_THREADS"] = "1"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--monitor-interval", "0.2", *args]


def _trainer(data: Path, out: Path, *extra: str) -> list[str]:
    return ["-m", "trainer", "train", "--data", str(data), "--out", str(out), *TINY, *extra]


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    fh = open(log, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=fh, stderr=subprocess.STDOUT)
    proc.log = log
    fh.close()
    return proc


def _finish(proc: subprocess.Popen) -> int:
    try:
        return proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"timed out; output:\n{proc.log.read_text()[-3000:]}")


def _wait_for(path: Path, proc: subprocess.Popen, what=lambda p: True) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not (path.exists() and what(path)):
        if proc.poll() is not None:
            tail = proc.log.read_text()[-3000:]
            pytest.fail(f"the run ended before {path.name}; output:\n{tail}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {path.name} after {TIMEOUT} s")
        time.sleep(0.02)


def _params(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _step_of(run: Path) -> int:
    return run_state.parse_training_state((run / STATE_FILE).read_bytes(), "t").step


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "train.npz"
    save_embeddings(path, *SyntheticTask(dim_cond=16).sample(400, seed=1))
    return path


@pytest.fixture
def one_thread():
    """In-process runs use one thread, like the subprocesses, so results match bit for bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Reference(NamedTuple):
    raw: dict[str, torch.Tensor]  # the network's parameters
    saved: dict[str, torch.Tensor]  # the checkpoint's: the average of the weights (the default)


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Reference:
    """The parameters after ``STEPS`` steps of one uninterrupted single-process run."""
    run = tmp_path_factory.mktemp("reference") / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(_trainer(data, run, "--max-steps", str(STEPS), "--dump-rank-params")[2:]) == 0
    finally:
        torch.set_num_threads(before)
    assert _step_of(run) == STEPS
    raw, saved = _params(run / "params.rank0.safetensors"), _params(run / "checkpoint.safetensors")
    assert _max_diff(raw, saved) > 1e-4  # the checkpoint holds the average, not the last weights
    return Reference(raw, saved)


@pytest.mark.slow
def test_two_nodes_match_one_process(data, reference, tmp_path):
    """Two torchrun agents (--nnodes 2, c10d rendezvous on 127.0.0.1), one process each."""
    run = tmp_path / "run"
    port = _free_port()
    launch = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d"]
    launch += ["--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "test-two-nodes"]
    args = _trainer(data, run, "--max-steps", str(STEPS), "--dump-rank-params")
    nodes = [_start(_torchrun(*launch, *args), tmp_path / f"node{i}.log") for i in range(2)]
    codes = [_finish(p) for p in nodes]
    assert codes == [0, 0], (tmp_path / "node0.log").read_text()[-3000:]
    ranks = [_params(run / f"params.rank{r}.safetensors") for r in range(2)]
    assert _max_diff(ranks[0], ranks[1]) == 0.0  # DDP keeps the replicas identical
    assert _max_diff(ranks[0], reference.raw) < 1e-5  # same global batch, same randomness
    # Rank 0 alone keeps the average of the weights; it equals the one process's.
    assert _max_diff(_params(run / "checkpoint.safetensors"), reference.saved) < 1e-5
    log = (run / "train.log").read_text()
    assert "2 process(es) (gloo)" in log and "global batch 32 = 2 x 1 x 16" in log


@pytest.mark.slow
def test_stop_file_under_torchrun_then_resume_in_one_process(data, reference, tmp_path, one_thread):
    """torchrun --nproc-per-node 2 with --accum-steps 2; rank 0 sees RUN/STOP, both ranks stop
    after the same step, save and exit 0; one process then finishes the run."""
    run = tmp_path / "run"
    args = _trainer(data, run, "--max-steps", "100000", "--accum-steps", "2", "--dump-rank-params")
    proc = _start(_torchrun("--standalone", "--nproc-per-node", "2", *args), tmp_path / "t.log")
    _wait_for(run / "metrics.jsonl", proc)
    (run / "STOP").touch()
    assert _finish(proc) == 0, proc.log.read_text()[-3000:]
    stopped = _step_of(run)
    assert 5 <= stopped < STEPS, "the run should stop well before the reference's end"
    assert not (run / "STOP").exists()
    log = (run / "train.log").read_text()
    assert f"stopped after step {stopped} on request (STOP file)" in log
    ranks = [_params(run / f"params.rank{r}.safetensors") for r in range(2)]
    assert _max_diff(ranks[0], ranks[1]) == 0.0
    # Resume with another world size (1) and no accumulation: the same global batches.
    assert main(["train", "--resume", str(run), "--max-steps", str(STEPS)]) == 0
    assert _step_of(run) == STEPS
    assert _max_diff(_params(run / "checkpoint.safetensors"), reference.saved) < 1e-5
    assert f"resuming from step {stopped}" in (run / "train.log").read_text()


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_parameters(data, reference, tmp_path, one_thread):
    run = tmp_path / "run"
    proc = _start([sys.executable, *_trainer(data, run, "--max-steps", "100000")], tmp_path / "k")
    _wait_for(run / "metrics.jsonl", proc, lambda p: len(p.read_text().splitlines()) >= 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(TIMEOUT)
    killed_at = _step_of(run)
    assert 5 <= killed_at < STEPS
    assert main(["train", "--resume", str(run), "--max-steps", str(STEPS)]) == 0
    assert _max_diff(_params(run / "checkpoint.safetensors"), reference.saved) == 0.0
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS  # lines past the save dropped


def test_sigterm_finishes_the_step_saves_and_exits_0(data, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    original = train.RunWriter.metrics

    def metrics_then_sigterm(self, record):
        original(self, record)
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` or the app's Stop button

    monkeypatch.setattr(train.RunWriter, "metrics", metrics_then_sigterm)
    assert main(_trainer(data, run, "--max-steps", "100")[2:]) == 0
    # The signal came after step 5's vote: step 6 is finished, then the run stops.
    assert _step_of(run) == 6
    assert "stopped after step 6 on request (SIGTERM)" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone


def test_a_diverged_run_exits_1_and_keeps_the_last_good_checkpoint(data, tmp_path, capsys):
    run = tmp_path / "run"
    args = _trainer(data, run, "--max-steps", "10", "--checkpoint-every", "1", "--lr", "1e30")
    assert main(args[2:]) == 1
    err = capsys.readouterr().err
    assert "non-finite network output" in err and "in step 2" in err and "--lr" in err
    assert "from step 1" in err
    _, config = load_checkpoint(run)  # loads: every weight finite
    assert config.training["step"] == 1 and _step_of(run) == 1


def test_a_resume_refuses_settings_that_change_the_run(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_trainer(data, run, "--max-steps", "5")[2:]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--degree", "5", "--batch-size", "64"]) == 2
    err = capsys.readouterr().err
    assert "degree: 4 -> 5" in err and "batch_size: 32 -> 64" in err
    other = tmp_path / "other.npz"
    save_embeddings(other, *SyntheticTask(dim_cond=16).sample(400, seed=2))
    assert main(["train", "--resume", str(run), "--data", str(other)]) == 2
    assert "training photos differ" in capsys.readouterr().err
    assert main(_trainer(data, run)[2:]) == 2
    assert "--resume" in capsys.readouterr().err  # a new run into an old folder
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "no training_state.pt" in capsys.readouterr().err


@pytest.mark.gpu
def test_cuda_trains_under_bf16_autocast(data, tmp_path):
    run = tmp_path / "run"
    assert main(_trainer(data, run, "--max-steps", "10", "--device", "cuda")[2:]) == 0
    assert "bf16 autocast" in (run / "train.log").read_text()
    _, config = load_checkpoint(run)
    assert config.training["step"] == 10


@pytest.mark.gpu
def test_torchrun_on_gpus_uses_nccl(data, tmp_path):
    procs = min(2, torch.cuda.device_count())
    run = tmp_path / "run"
    args = _trainer(data, run, "--max-steps", "10", "--device", "cuda", "--dump-rank-params")
    proc = _start(_torchrun("--standalone", "--nproc-per-node", str(procs), *args), tmp_path / "t")
    assert _finish(proc) == 0, proc.log.read_text()[-3000:]
    assert f"{procs} process(es) (nccl)" in (run / "train.log").read_text()
    ranks = [_params(run / f"params.rank{r}.safetensors") for r in range(procs)]
    assert all(_max_diff(ranks[0], r) == 0.0 for r in ranks)
