"""Training throughput of ``locdiff train`` in one process and under torchrun.

    python benchmarks/train_speed.py [--device cpu|cuda] [--procs 1,2] [--degrees 23,47]
        [--batch-size 512] [--steps N] [--paper-epoch]

Each measurement launches the real trainer (``python -m trainer train``, or ``torchrun
--standalone --nproc-per-node P -m trainer train``) with the paper-sized CS-UNet (widths
1024/512/256, bottleneck 128, 768-wide condition, SHDD-KL with 2048 uniform anchors plus 256
local anchors per example) on generated embeddings, and reads the samples per second that the
run itself writes to ``metrics.jsonl``; the first window (start-up, first-step warm-up) is
dropped and the median of the rest reported. ``--paper-epoch`` adds the paper's reference:
an L = 31 epoch of 1500 iterations of batch 512, 388 s on one RTX 5500 (target: under 60 s on
one H100), estimated from the measured rate at L = 31.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPER_EPOCH = {"degree": 31, "iterations": 1500, "batch": 512, "seconds": 388.0}


@dataclass(frozen=True)
class SpeedRow:
    device: str
    procs: int
    degree: int
    batch_size: int
    samples_per_s: float


def make_data(folder: Path, rows: int, dim: int = 768) -> Path:
    """A generated embedding dataset of ``rows`` rows (``dim`` wide)."""
    sys.path.insert(0, str(ROOT))
    from trainer.data import save_embeddings
    from trainer.synthetic import SyntheticTask

    path = folder / f"bench_{rows}_{dim}.npz"
    if not path.exists():
        save_embeddings(path, *SyntheticTask(dim_cond=dim).sample(rows, seed=1))
    return path


def measure(
    data: Path,
    degree: int,
    procs: int = 1,
    device: str = "cpu",
    batch_size: int = 512,
    steps: int = 8,
    log_every: int = 2,
) -> float:
    """Median samples/s of a training run of ``steps`` steps (first window dropped)."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        args = ["-m", "trainer", "train", "--data", str(data), "--out", str(run)]
        args += ["--degree", str(degree), "--batch-size", str(batch_size), "--epochs", "1000"]
        args += ["--max-steps", str(steps), "--log-every", str(log_every), "--device", device]
        args += ["--checkpoint-every", str(10 * steps)]
        if procs == 1:
            cmd = [sys.executable, *args]
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
            cmd += ["--nproc-per-node", str(procs), *args]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if device == "cpu":  # the cores shared among the processes, unless set already
            env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // procs)))
        done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"training failed ({done.returncode}):\n{done.stderr[-3000:]}")
        lines = (run / "metrics.jsonl").read_text().splitlines()
        rates = [json.loads(x)["samples_per_s"] for x in lines if '"loss"' in x]
    if len(rates) < 2:
        raise ValueError(f"--steps {steps} with --log-every {log_every} gives too few windows")
    return statistics.median(rates[1:])


def print_table(rows: list[SpeedRow]) -> None:
    print(f"{'device':<8}{'procs':>6}{'L':>5}{'batch':>7}{'samples/s':>12}{'s / 1500 it':>13}")
    for r in rows:
        epoch = PAPER_EPOCH["iterations"] * r.batch_size / r.samples_per_s
        print(
            f"{r.device:<8}{r.procs:>6}{r.degree:>5}{r.batch_size:>7}"
            f"{r.samples_per_s:>12.0f}{epoch:>13.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--procs", default="1,2", help="process counts, comma-separated")
    parser.add_argument("--degrees", default="23,47")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, help="steps per run (default: cpu 8, cuda 200)")
    parser.add_argument("--paper-epoch", action="store_true", help="also L = 31 (paper epoch)")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    steps = args.steps or (200 if cuda else 8)
    log_every = max(1, steps // 5)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    degrees = [int(d) for d in args.degrees.split(",")]
    if args.paper_epoch and PAPER_EPOCH["degree"] not in degrees:
        degrees.append(PAPER_EPOCH["degree"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp), rows=max(4 * args.batch_size, args.batch_size * 8))
        for procs in (int(p) for p in args.procs.split(",")):
            for degree in degrees:
                rate = measure(data, degree, procs, args.device, args.batch_size, steps, log_every)
                rows.append(SpeedRow(args.device, procs, degree, args.batch_size, rate))
    print_table(rows)
    if args.paper_epoch:
        for r in rows:
            if r.degree == PAPER_EPOCH["degree"] and r.batch_size == PAPER_EPOCH["batch"]:
                seconds = PAPER_EPOCH["iterations"] * r.batch_size / r.samples_per_s
                print(
                    f"paper epoch (L=31, 1500 x 512) with {r.procs} process(es) on {r.device}: "
                    f"{seconds:.0f} s (paper: {PAPER_EPOCH['seconds']:.0f} s on one RTX 5500; "
                    "target: under 60 s on one H100)"
                )


if __name__ == "__main__":
    main()
