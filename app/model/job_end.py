"""How a Trainer-tab job ended, in words the user can act on: where a stopped or killed training
run got to, which checkpoint Resume continues from (or that there is none), and a failed job's
last lines.

What is known comes from three places: the job's output lines (the trainer prints ``training
from step S to step E`` when it starts, ``[...] step N/E ...`` every ``--log-every`` steps and
``stopped after step N on request`` when a Stop is honoured), the run folder (the checkpoint's
step from its header, :func:`locdiff_core.run_layout.checkpoint_step`, and whether the training
state that ``--resume`` needs is there), and what the user asked (Stop, Kill).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from locdiff_core.run_layout import CHECKPOINT_FILE, STATE_FILE, checkpoint_step, model_file

LAST_LINES = 3  # of a failed job's own output, in its status
_RANGE = re.compile(r"\btraining from step (\d+) to step (\d+)\b")
_PROGRESS = re.compile(r"\bstep (\d+)/(\d+)\b")
_STOPPED = re.compile(r"\bstopped after step (\d+) on request\b")
_ALREADY = re.compile(r"\balready at step (\d+) of (\d+); nothing to train\b")
# torchrun's report of a failed worker begins so; what follows is its own traceback
_LAUNCHER_REPORT = re.compile(r"torch/distributed/elastic/.*failed \(exitcode: -?\d+\)")


@dataclass
class JobProgress:
    """What a job's output has said so far; :meth:`feed` it every line."""

    step: int | None = None  # the last step reported done
    total: int | None = None  # the step the run trains to
    stopped_at: int | None = None  # the step after which a requested stop was honoured
    own_lines: deque[str] = field(default_factory=lambda: deque(maxlen=LAST_LINES))
    launcher_report: bool = False  # torchrun has begun its failure report

    def feed(self, line: str) -> None:
        if _LAUNCHER_REPORT.search(line):
            self.launcher_report = True
        if not self.launcher_report and line.strip():
            self.own_lines.append(line.strip())
        if match := _RANGE.search(line) or _PROGRESS.search(line) or _ALREADY.search(line):
            self.step, self.total = int(match[1]), int(match[2])
        elif match := _STOPPED.search(line):
            self.step = self.stopped_at = int(match[1])

    @property
    def reached_end(self) -> bool:
        return self.step is not None and self.total is not None and self.step >= self.total

    def where(self, *, exact: bool = True) -> str:
        """``at step N of E`` (``exact``: N is where it ended), else ``after step N of E``
        (N is the last step reported, perhaps a few before the end)."""
        if not self.step:
            return "before its first step" if exact else "before any step was reported"
        of = f" of {self.total}" if self.total is not None else ""
        return f"{'at' if exact else 'after'} step {self.step}{of}"


@dataclass(frozen=True)
class JobEnd:
    """``word`` for the log (finished, stopped, killed, failed (N)) and ``text`` for the status."""

    word: str
    text: str


def job_end(
    kind: str,
    code: int,
    progress: JobProgress,
    run_dir: Path | None,
    *,
    stop_asked: bool = False,
    kill_asked: bool = False,
) -> JobEnd:
    """The end of the ``kind`` job ("embed", "train", "resume") that exited with ``code`` (-1:
    crashed or killed by a signal); ``run_dir`` is a training job's run folder."""
    if kind == "embed":
        return _embed_end(code, progress, stop_asked or kill_asked)
    resume = _resume_from(run_dir, progress)
    if code == 0 and not progress.reached_end:
        if progress.stopped_at is not None:
            return JobEnd("stopped", f"{kind}: stopped {progress.where()}{resume}")
        if stop_asked:
            return JobEnd("stopped", f"{kind}: stopped {progress.where(exact=False)}{resume}")
        if progress.total is not None:  # short of its end without a stop: --max-seconds
            return JobEnd("finished", f"{kind}: ended {progress.where(exact=False)}{resume}")
    if code == 0:
        checkpoint = model_file(run_dir) if run_dir is not None else None
        saved = f"; checkpoint {checkpoint}" if checkpoint and checkpoint.is_file() else ""
        return JobEnd("finished", f"{kind}: finished {progress.where()}{saved}")
    if kill_asked:
        return JobEnd("killed", f"{kind}: killed {progress.where(exact=False)}{resume}")
    return _failed(kind, code, progress)


def _resume_from(run_dir: Path | None, progress: JobProgress) -> str:
    """Where Resume would continue: the checkpoint's step, when the state that --resume reads
    is beside it."""
    step = checkpoint_step(run_dir / CHECKPOINT_FILE) if run_dir is not None else None
    if step is None or not (run_dir / STATE_FILE).is_file():
        return "; no checkpoint was saved yet, so Train starts over."
    if step == progress.stopped_at:
        return f" (checkpoint saved at step {step}). Resume continues from step {step}."
    return f" (last checkpoint: step {step}). Resume continues from step {step}."


def _embed_end(code: int, progress: JobProgress, interrupted: bool) -> JobEnd:
    if code == 0:
        return JobEnd("finished", "embed: finished")
    if interrupted:
        text = "embed: stopped; Build dataset again continues where it stopped"
        return JobEnd("stopped", text)
    return _failed("embed", code, progress)


def _failed(kind: str, code: int, progress: JobProgress) -> JobEnd:
    word = "failed (crashed)" if code == -1 else f"failed ({code})"
    lines = "\n".join(progress.own_lines)
    return JobEnd(word, f"{kind}: {word}" + (f":\n{lines}" if lines else ""))
