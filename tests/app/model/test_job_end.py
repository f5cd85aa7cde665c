"""A job's end in words, from the trainer's own output lines and a real run folder layout: a
stop says where and what Resume continues from, a kill names the last checkpoint (or that there
is none), a finished run says finished, a failure shows its own last lines."""

from __future__ import annotations

import json

from safetensors.numpy import save_file

from app.model.job_end import JobProgress, job_end
from locdiff_core.run_layout import CHECKPOINT_FILE, CONFIG_KEY, STATE_FILE, checkpoint_step

START = "training from step 0 to step 440"


def _progress(*lines: str) -> JobProgress:
    progress = JobProgress()
    for line in lines:
        progress.feed(line)
    return progress


def _save(run, step: int) -> None:
    """A checkpoint and a training state as a save at ``step`` leaves them (header only)."""
    import numpy as np

    run.mkdir(parents=True, exist_ok=True)
    config = json.dumps({"format": "locdiff-checkpoint", "training": {"step": step}})
    save_file({"w": np.zeros(2, np.float32)}, run / CHECKPOINT_FILE, metadata={CONFIG_KEY: config})
    (run / STATE_FILE).write_bytes(b"state")


def test_the_output_lines_give_the_steps():
    progress = _progress(START, "[#.....] step 40/440 epoch 0 loss 1.2 30 samples/s")
    assert (progress.step, progress.total, progress.stopped_at) == (40, 440, None)
    progress.feed("stopped after step 45 on request (STOP file); checkpoint saved; continue ...")
    assert (progress.step, progress.stopped_at, progress.where()) == (45, 45, "at step 45 of 440")
    assert JobProgress().where() == "before its first step"
    assert _progress(START).where(exact=False) == "before any step was reported"


def test_a_stop_says_where_and_that_resume_continues(tmp_path):
    run = tmp_path / "run"
    _save(run, 45)
    progress = _progress(START, "stopped after step 45 on request (STOP file); checkpoint saved")
    end = job_end("train", 0, progress, run, stop_asked=True)
    assert end.word == "stopped"
    assert end.text == (
        "train: stopped at step 45 of 440 (checkpoint saved at step 45). "
        "Resume continues from step 45."
    )


def test_a_kill_names_the_last_checkpoint_or_its_absence(tmp_path):
    run = tmp_path / "run"
    progress = _progress("training from step 40 to step 440", "[#] step 46/440 epoch 0 loss 1")
    end = job_end("resume", -1, progress, run, kill_asked=True)
    assert end.text == (
        "resume: killed after step 46 of 440; no checkpoint was saved yet, so Train starts over."
    )
    _save(run, 40)
    end = job_end("resume", -1, progress, run, kill_asked=True)
    assert (end.word, end.text) == (
        "killed",
        "resume: killed after step 46 of 440 (last checkpoint: step 40). Resume continues from "
        "step 40.",
    )


def test_a_finished_run_says_finished(tmp_path):
    run = tmp_path / "run"
    _save(run, 440)
    end = job_end("train", 0, _progress(START, "[#] step 440/440 epoch 9 loss 0.3"), run)
    assert end.word == "finished"
    assert end.text == f"train: finished at step 440 of 440; checkpoint {run / CHECKPOINT_FILE}"
    # a stop asked as the last step ended is still a finished run
    done = _progress(START, "[#] step 440/440 epoch 9", "stopped after step 440 on request (x)")
    assert job_end("train", 0, done, run, stop_asked=True).word == "finished"


def test_a_failure_shows_its_own_last_lines_not_torchruns_report():
    lines = [
        "config: TrainConfig(...)",
        "locdiff train: error: d.npz: 10 training photos, fewer than one global batch",
        "E1203 13:41:24.458000 1 torch/distributed/elastic/multiprocessing/api.py:1002] "
        "failed (exitcode: 2) local_rank: 0 (pid: 2) of binary: python",
        "Traceback (most recent call last):",
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:",
    ]
    end = job_end("train", 1, _progress(*lines), None)
    assert end.word == "failed (1)"
    assert end.text == f"train: failed (1):\n{lines[0]}\n{lines[1]}"
    assert job_end("train", -1, JobProgress(), None).text == "train: failed (crashed)"


def test_a_stopped_dataset_build_continues_on_the_next_build():
    assert job_end("embed", -1, JobProgress(), None, stop_asked=True).text == (
        "embed: stopped; Build dataset again continues where it stopped"
    )
    assert job_end("embed", 0, JobProgress(), None).text == "embed: finished"


def test_checkpoint_step_reads_the_header_only(tmp_path):
    _save(tmp_path, 1234)
    assert checkpoint_step(tmp_path / CHECKPOINT_FILE) == 1234
    assert checkpoint_step(tmp_path / "absent") is None
    (tmp_path / "junk").write_bytes(b"\xff" * 20)
    assert checkpoint_step(tmp_path / "junk") is None
