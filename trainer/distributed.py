"""The torchrun environment: process group, device, agreement between processes, stop requests.

``locdiff train`` runs as one plain process, or as one process per GPU (or CPU worker) under
PyTorch's own launcher, ``torchrun``, which sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``:

    # one process (CPU or one GPU)
    locdiff train --data D --out RUN --device cuda
    # one machine, 4 GPUs (NCCL); on CPU drop --device cuda (gloo)
    torchrun --standalone --nproc-per-node 4 -m trainer train --data D --out RUN --device cuda
    # two machines with 4 GPUs each: the same line on both (HOST0: the first machine)
    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST0:29500 \\
        --rdzv-id RUN_NAME -m trainer train --data D --out RUN --device cuda
    # the same with fixed node ranks (rank 0, which writes RUN, on HOST0)
    torchrun --nnodes 2 --nproc-per-node 4 --node-rank 0 --master-addr HOST0 \\
        --master-port 29500 -m trainer train --data D --out RUN --device cuda   # on HOST0
    torchrun ... --node-rank 1 ...                                              # on the other

Process ``r`` on CUDA uses ``cuda:LOCAL_RANK`` and the NCCL backend; on CPU, gloo. Only rank 0
writes (checkpoints, logs, metrics); the weights and optimizer state of a resume and the
validation split reach the other processes through the process group. Every node needs the data
set at the same path. A new run needs the run folder only on rank 0's machine; ``--resume`` also
has every process read the run's settings from ``RUN/training_state.pt`` before the group
exists, so a resume needs RUN on every machine (a shared disk). The c10d rendezvous numbers the
nodes itself (rank 0 may land on either machine), so with it keep RUN on a disk all machines
see, or fix the ranks with ``--node-rank``.

Stopping: SIGTERM or SIGINT (or a ``STOP`` file in the run folder, seen by rank 0) sets a flag;
the processes agree on it at the end of every step, so all of them finish the same step, save
and exit 0. torchrun itself forwards a signal it receives to its workers but then reports its
own exit as a failure (exit code 1) although every worker stopped cleanly; to stop a torchrun
job with exit code 0, create ``RUN/STOP`` (or signal the worker processes, not torchrun).
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: its rank among ``world_size`` and its device."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    ddp: bool = False  # launched by torchrun with a process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def backend(self) -> str:
        return "nccl" if self.device.type == "cuda" else "gloo"


def setup(device: str = "cpu") -> DistEnv:
    """Read torchrun's environment and join the process group; a plain process gets
    ``DistEnv(device=device)``. ``device`` is ``"cpu"`` or ``"cuda"`` (``"cuda:N"`` outside
    torchrun)."""
    if int(os.environ.get("RANK", -1)) == -1:
        return DistEnv(device=torch.device(device))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    world_size = int(os.environ["WORLD_SIZE"])
    if torch.device(device).type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s) "
                "are visible; use --nproc-per-node <= the number of GPUs"
            )
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl", device_id=dev)
    else:
        dev = torch.device("cpu")
        dist.init_process_group(backend="gloo")
    return DistEnv(rank, local_rank, world_size, dev, ddp=True)


def teardown(env: DistEnv) -> None:
    if env.ddp and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.ddp:
        if env.device.type == "cuda":
            dist.barrier(device_ids=[env.local_rank])
        else:
            dist.barrier()


def all_reduce_sum(env: DistEnv, values: torch.Tensor) -> list[float]:
    """Element-wise sums of ``values`` (on this process's device) over the processes; NaN and
    inf propagate. One synchronisation."""
    if env.ddp:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values.tolist()


def share(env: DistEnv, data: bytes | None) -> bytes:
    """Rank 0's ``data`` on every process (others pass ``None``)."""
    if not env.ddp:
        assert data is not None
        return data
    size = torch.tensor([len(data) if env.is_main else 0], dtype=torch.int64, device=env.device)
    dist.broadcast(size, src=0)
    if env.is_main and data:
        buf = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(env.device)
    else:
        buf = torch.empty(int(size.item()), dtype=torch.uint8, device=env.device)
    if buf.numel():
        dist.broadcast(buf, src=0)
    return data if env.is_main else bytes(buf.cpu().numpy())


class StopRequest:
    """A graceful stop asked for by SIGTERM/SIGINT (handlers live for the ``with`` block) or by
    a ``STOP`` file (checked by :meth:`poll`). ``reason`` says which, once asked."""

    def __init__(self, stop_file: Path | None) -> None:
        self.stop_file = stop_file
        self.reason: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        self.reason = self.reason or signal.Signals(signum).name

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def poll(self) -> bool:
        """Whether a stop was asked for (looks for the STOP file)."""
        if self.reason is None and self.stop_file is not None and self.stop_file.exists():
            self.reason = f"{self.stop_file.name} file"
        return self.reason is not None
