"""What the Trainer tab launches, without Qt: the job spec, its validation, the command lines of
``locdiff embed`` and of ``torchrun ... -m trainer train``, the "copy command" text, and a reader
of the run's ``metrics.jsonl`` that picks up only what was appended since the last read.

The app never imports :mod:`trainer`; it starts it as a child process,
``sys.executable -m trainer embed ...`` and
``sys.executable -m torch.distributed.run --nproc-per-node N -m trainer train ...``
(the commands of :mod:`trainer.train`'s docstring). Stopping follows the trainer's contract: a
``STOP`` file in the run folder makes every process finish its step, save and exit 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from app.model.extra_options import option_problems

# The run folder's files, re-exported for the Trainer tab (the "X as X" form marks them so).
from locdiff_core.run_layout import CHECKPOINT_FILE as CHECKPOINT_FILE
from locdiff_core.run_layout import METRICS_FILE as METRICS_FILE
from locdiff_core.run_layout import STATE_FILE as STATE_FILE
from locdiff_core.run_layout import STOP_FILE as STOP_FILE

DEFAULT_PORT = 29500
# A child process answers how many CUDA devices there are, so torch stays out of the GUI.
GPU_PROBE = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")
_RDZV_ID = re.compile(r"[^A-Za-z0-9_.\-]+")


@dataclass(frozen=True)
class TrainingSpec:
    """Everything the user chose in the Trainer tab. Paths are strings ("" = not chosen)."""

    photos: str = ""  # a folder of geotagged photos ...
    csv: str = ""  # ... or a CSV of IMG_ID,LAT,LON rows
    images: str = ""  # the CSV's image folder
    model: str = "ViT-L-14"  # open_clip model name or a model-config .json
    pretrained: str = "openai"  # open_clip pretrained tag ("" = none)
    weights: str = ""  # a local weights file ("" = download or cache)
    output: str = ""  # the job's folder: dataset/ and run/ inside it
    dataset: str = ""  # an existing embedding dataset; "" = OUTPUT/dataset
    degree: int = 47
    epochs: int = 10
    batch_size: int = 512
    num_procs: int = 1  # processes per node: one per GPU, or CPU workers
    device: str = "cpu"  # "cpu" or "cuda"
    num_nodes: int = 1
    endpoint: str = ""  # HOST0:PORT of the first machine when num_nodes > 1
    val_fraction: float = 0.05
    extra_args: tuple[str, ...] = field(default_factory=tuple)  # "More options" (extra_options)

    @property
    def out_dir(self) -> Path:
        return Path(self.output).expanduser()

    @property
    def dataset_dir(self) -> Path:
        return Path(self.dataset).expanduser() if self.dataset else self.out_dir / "dataset"

    @property
    def run_dir(self) -> Path:
        return self.out_dir / "run"


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); ValueError with the fix for anything else."""
    match = _HOST_PORT.match(endpoint.strip())
    port = int(match["port"]) if match else 0
    if not match or not 0 < port < 65536:
        raise ValueError(
            f"rendezvous endpoint {endpoint!r}: write HOST:PORT, the first machine's address and "
            f"a free port, e.g. 10.0.0.5:{DEFAULT_PORT}"
        )
    return match["host"], port


def embed_problems(spec: TrainingSpec) -> list[str]:
    """What stops "Build dataset" (empty: nothing)."""
    problems = []
    if spec.photos and spec.csv:
        problems.append("choose either a photo folder or a CSV, not both")
    elif spec.photos:
        if not Path(spec.photos).expanduser().is_dir():
            problems.append(f"photo folder {spec.photos} does not exist: choose another folder")
    elif spec.csv:
        if not Path(spec.csv).expanduser().is_file():
            problems.append(f"CSV file {spec.csv} does not exist: choose the location CSV")
        if not spec.images:
            problems.append("a CSV needs its image folder: choose the image root")
        elif not Path(spec.images).expanduser().is_dir():
            problems.append(f"image folder {spec.images} does not exist: choose another folder")
    else:
        problems.append("no photos chosen: choose a photo folder, or a CSV and its image folder")
    if not spec.model.strip():
        problems.append("no image encoder: enter an open_clip model name or a model .json file")
    elif spec.model.endswith(".json") and not Path(spec.model).expanduser().is_file():
        problems.append(f"encoder config {spec.model} does not exist: choose the .json file")
    if spec.weights and not Path(spec.weights).expanduser().is_file():
        problems.append(f"encoder weights {spec.weights} do not exist: choose the weights file")
    problems += _output_problems(spec)
    return problems


def train_problems(
    spec: TrainingSpec, *, resume: bool = False, gpus: int | None = None
) -> list[str]:
    """What stops "Train" (or, with ``resume``, "Resume"); empty: nothing. ``gpus``: how many
    this machine has, once counted."""
    problems = _output_problems(spec)
    if resume:
        if spec.output and not (spec.run_dir / STATE_FILE).is_file():
            problems.append(f"nothing to resume: {spec.run_dir} holds no {STATE_FILE}")
    elif spec.output or spec.dataset:
        data = spec.dataset_dir
        if not data.exists():
            problems.append(
                f"dataset {data} does not exist: build it first (Build dataset) or choose one"
            )
    if not 1 <= spec.degree <= 200:
        problems.append(f"degree L {spec.degree}: choose 1 to 200 (the paper uses 15 to 47)")
    if spec.epochs < 1:
        problems.append(f"epochs {spec.epochs}: train at least 1 epoch")
    if spec.num_procs < 1:
        problems.append(f"processes per node {spec.num_procs}: use at least 1")
    if spec.num_nodes < 1:
        problems.append(f"nodes {spec.num_nodes}: use at least 1")
    world = max(spec.num_procs, 1) * max(spec.num_nodes, 1)
    if spec.batch_size < 1:
        problems.append(f"batch size {spec.batch_size}: use at least 1")
    elif spec.batch_size % world:
        problems.append(
            f"batch size {spec.batch_size} does not split over {world} processes: use a "
            f"multiple of {world}"
        )
    if spec.device not in ("cpu", "cuda"):
        problems.append(f"device {spec.device!r}: choose cpu or cuda")
    elif spec.device == "cuda" and gpus is not None and spec.num_procs > gpus:
        problems.append(
            f"{spec.num_procs} processes on cuda but this machine has {gpus} GPU(s): use at most "
            f"{gpus} processes, or the cpu device"
        )
    if not 0.0 <= spec.val_fraction < 1.0:
        problems.append(f"validation share {spec.val_fraction}: choose 0 (none) to below 1")
    if spec.num_nodes > 1:
        try:
            parse_endpoint(spec.endpoint)
        except ValueError as exc:
            problems.append(str(exc))
    return problems + option_problems(spec.extra_args, val_fraction=spec.val_fraction)


def _output_problems(spec: TrainingSpec) -> list[str]:
    if not spec.output:
        return ["no output folder: choose where the dataset and the run go"]
    parent = spec.out_dir.parent
    if not spec.out_dir.is_dir() and not parent.is_dir():
        return [f"output folder {spec.output}: its parent {parent} does not exist"]
    if spec.out_dir.exists() and not spec.out_dir.is_dir():
        return [f"output folder {spec.output} is a file: choose a folder"]
    return []


def embed_args(spec: TrainingSpec) -> list[str]:
    """Arguments of ``python -m trainer embed``."""
    args = ["embed"]
    if spec.photos:
        args += ["--photos", spec.photos]
    else:
        args += ["--csv", spec.csv, "--images", spec.images]
    args += ["--out", str(spec.dataset_dir), "--model", spec.model]
    if spec.pretrained:
        args += ["--pretrained", spec.pretrained]
    if spec.weights:
        args += ["--weights", spec.weights]
    return args


def train_args(spec: TrainingSpec, *, resume: bool = False) -> list[str]:
    """Arguments of ``-m trainer train`` (after torchrun's own)."""
    if resume:  # the run keeps its settings; these only say how it proceeds
        return ["train", "--resume", str(spec.run_dir), "--device", spec.device,
                "--epochs", str(spec.epochs), *spec.extra_args]  # fmt: skip
    args = ["train", "--data", str(spec.dataset_dir), "--out", str(spec.run_dir)]
    args += ["--degree", str(spec.degree), "--epochs", str(spec.epochs)]
    args += ["--batch-size", str(spec.batch_size), "--device", spec.device]
    if spec.val_fraction > 0:
        args += ["--val-fraction", f"{spec.val_fraction:g}"]
    return [*args, *spec.extra_args]


def rendezvous_id(spec: TrainingSpec) -> str:
    return _RDZV_ID.sub("-", spec.out_dir.name or "locdiff") or "locdiff"


def launch_args(spec: TrainingSpec, node_rank: int | None = 0) -> list[str]:
    """torchrun's own options. One node: ``--standalone``. Several: ``node_rank`` None gives
    the c10d rendezvous line (the same on every machine); a number, the fixed-rank line."""
    procs = ["--nproc-per-node", str(spec.num_procs)]
    if spec.num_nodes <= 1:
        return ["--standalone", *procs]
    host, port = parse_endpoint(spec.endpoint)
    nodes = ["--nnodes", str(spec.num_nodes), *procs]
    if node_rank is None:
        return [*nodes, "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{host}:{port}",
                "--rdzv-id", rendezvous_id(spec)]  # fmt: skip
    return [*nodes, "--node-rank", str(node_rank), "--master-addr", host.strip("[]"),
            "--master-port", str(port)]  # fmt: skip


def embed_command(spec: TrainingSpec, python: str = sys.executable) -> list[str]:
    return [python, "-m", "trainer", *embed_args(spec)]


def train_command(
    spec: TrainingSpec, *, resume: bool = False, python: str = sys.executable
) -> list[str]:
    """The local launch: this machine is node 0 (it writes the run folder)."""
    return [python, "-m", "torch.distributed.run", *launch_args(spec, 0), "-m", "trainer",
            *train_args(spec, resume=resume)]  # fmt: skip


def copy_text(spec: TrainingSpec, *, resume: bool = False, node_rank: int | None = None) -> str:
    """The shell line to run the training elsewhere: ``torchrun ...`` for one node; for several,
    the c10d line for every machine (``node_rank`` None) or the line of node ``node_rank``."""
    argv = ["torchrun", *launch_args(spec, node_rank), "-m", "trainer"]
    return shlex.join([*argv, *train_args(spec, resume=resume)])


def copy_commands(spec: TrainingSpec, *, resume: bool = False) -> str:
    """The "Copy command" text: one line for one node; for several, the c10d line for every
    machine and, as an alternative, the fixed-rank line of each node (node 0 writes the run)."""
    if spec.num_nodes <= 1:
        return copy_text(spec, resume=resume)
    lines = [f"# on each of the {spec.num_nodes} machines (c10d rendezvous at {spec.endpoint}):"]
    lines.append(copy_text(spec, resume=resume))
    lines.append("# or with fixed node ranks (node 0, which writes the run folder, on HOST0):")
    for rank in range(spec.num_nodes):
        lines.append(f"# node {rank} of {spec.num_nodes}")
        lines.append(copy_text(spec, resume=resume, node_rank=rank))
    return "\n".join(lines)


def copy_embed_text(spec: TrainingSpec) -> str:
    return shlex.join(["locdiff", *embed_args(spec)])


def parse_gpu_count(output: str) -> int:
    """The GPU probe's answer; 0 when it printed nothing usable (no torch, no CUDA)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    try:
        return max(int(lines[-1]), 0)
    except (IndexError, ValueError):
        return 0


class MetricsTail:
    """Reads a growing ``metrics.jsonl``: each :meth:`read` returns the records appended since the
    last one. A partial last line waits for its end; a line that is not JSON is skipped; a file
    that shrank or was replaced is read again from the start."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._offset = 0
        self._pending = b""
        self._ident: tuple[int, int] | None = None
        self.skipped = 0  # lines that were not JSON objects

    def read(self) -> list[dict]:
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                if (st.st_dev, st.st_ino) != self._ident or st.st_size < self._offset:
                    self._ident, self._offset, self._pending = (st.st_dev, st.st_ino), 0, b""
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        records = []
        for line in lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (UnicodeDecodeError, ValueError):
                self.skipped += 1
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                self.skipped += 1
        return records


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc; elsewhere just ``pid``), parents first: torchrun
    starts its workers in their own sessions, so killing torchrun alone would orphan them."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        tree.append(current)
        todo += children.get(current, [])
    return tree


def kill_tree(pids: list[int]) -> None:
    """SIGKILL these processes (those already gone are ignored)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
