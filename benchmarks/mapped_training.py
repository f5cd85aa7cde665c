"""Memory of ``locdiff train`` on a data set larger than memory: each process's peak resident
memory and its time to the first step, under ``torchrun``.

    python benchmarks/mapped_training.py [--rows 5000000] [--dim 768] [--procs 2]
        [--shard-size 4096] [--steps 40] [--folder /tmp/locdiff-mapped-bench]

A float16 data set of ``--rows`` generated embeddings (ids like ``locdiff embed`` writes) is
written once into ``--folder`` as ``--shard-size``-row shards (7.7 GB for 5 M x 768; it is
reused by later runs), then ``torchrun --standalone --nproc-per-node P -m trainer train``
trains a small CS-UNet on it for ``--steps`` steps of batch 512 on the CPU. Every worker's
``/proc/PID/status`` is read ten times a second: the table gives each rank's peak of its
private memory (RssAnon: what the kernel cannot reclaim, and what an out-of-memory kill
counts), of the mapped file pages it touched (RssFile: page cache shared with the other ranks
and given back under pressure) and of both (VmHWM), and the seconds from the launch to the
first step's metrics line (interpreter, imports, process group, opening the data set, first
step).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tables import print_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_dataset(folder: Path, rows: int, dim: int, shard_size: int) -> Path:
    """The generated data set (written once; a folder holding the same settings is reused)."""
    import numpy as np

    from trainer.data import save_embeddings

    settings = {"rows": rows, "dim": dim, "shard_size": shard_size, "format": 1}
    marker = folder / "settings.json"
    data = folder / "data"
    if marker.exists() and json.loads(marker.read_text()) == settings:
        return data
    data.mkdir(parents=True, exist_ok=True)
    for old in data.glob("*.npz"):
        old.unlink()
    gen = np.random.default_rng(0)
    start = time.perf_counter()
    for k, first in enumerate(range(0, rows, shard_size)):
        n = min(shard_size, rows - first)
        emb = gen.standard_normal((n, dim), dtype=np.float32).astype(np.float16)
        lat = np.degrees(np.arcsin(gen.uniform(-1, 1, n)))
        lon = gen.uniform(-180, 180, n)
        ids = [f"mp16/{(first + i) % 1000:03d}/{first + i:08d}.jpg" for i in range(n)]
        save_embeddings(
            data / f"shard-{k:05d}.npz",
            emb,
            lat,
            lon,
            ids=ids,
            encoder={"name": "generated", "dim": dim},
        )
    marker.write_text(json.dumps(settings))
    print(f"# wrote {rows:,} rows in {time.perf_counter() - start:.0f} s", flush=True)
    return data


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def measure(data: Path, procs: int, steps: int, batch: int) -> list[dict]:
    """Peaks per worker (by start order = rank order) and the time to the first step."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(procs),
            "-m",
            "trainer",
            "train",
            "--data",
            str(data),
            "--out",
            str(run),
            "--degree",
            "8",
            "--widths",
            "64,32",
            "--bottleneck",
            "16",
            "--anchors",
            "128",
            "--batch-size",
            str(batch),
            "--epochs",
            "1",
            "--max-steps",
            str(steps),
            "--log-every",
            "1",
            "--checkpoint-every",
            "100000",
            "--dropout",
            "0",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        launched = time.time()
        proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        peaks: dict[int, dict[str, int]] = {}
        while proc.poll() is None:
            for pid in _children(proc.pid):
                now = _status(pid)
                seen = peaks.setdefault(pid, {})
                for key, value in now.items():
                    seen[key] = max(seen.get(key, 0), value)
            time.sleep(0.1)
        output = proc.stdout.read()
        if proc.returncode != 0:
            raise RuntimeError(f"training failed ({proc.returncode}):\n{output[-3000:]}")
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        first = min(x["time"] for x in lines if "loss" in x)
        rates = [x["samples_per_s"] for x in lines if "loss" in x][1:]
    rows = []
    workers = sorted(pid for pid, seen in peaks.items() if "RssAnon" in seen)
    for rank, pid in enumerate(workers):
        rows.append(
            {
                **peaks[pid],
                "rank": rank,
                "first_step_s": first - launched,
                "samples_per_s": sorted(rates)[len(rates) // 2] if rates else 0.0,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/locdiff-mapped-bench"))
    args = parser.parse_args()
    data = make_dataset(args.folder, args.rows, args.dim, args.shard_size)
    size = sum(f.stat().st_size for f in data.glob("*.npz"))
    print(
        f"# {platform.machine()}, {os.cpu_count()} CPUs; {args.rows:,} x {args.dim} float16 "
        f"in {len(list(data.glob('*.npz'))):,} shards, {size / 1e9:.2f} GB on disk; "
        f"{args.procs} processes, {args.steps} steps of batch {args.batch_size}"
    )
    mb = 1 << 20
    print_table(
        None,
        [
            "rank",
            "peak RssAnon (MB)",
            "peak RssFile (MB)",
            "peak VmHWM (MB)",
            "launch to first step (s)",
            "samples/s",
        ],
        (
            [
                r["rank"],
                f"{r['RssAnon'] / mb:,.0f}",
                f"{r['RssFile'] / mb:,.0f}",
                f"{r['VmHWM'] / mb:,.0f}",
                f"{r['first_step_s']:.1f}",
                f"{r['samples_per_s']:,.0f}",
            ]
            for r in measure(data, args.procs, args.steps, args.batch_size)
        ),
        right_from=1,
    )


if __name__ == "__main__":
    main()
