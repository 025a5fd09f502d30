"""Distributed set-up for the training engine: one process per device under ``torchrun``.

``torchrun`` (``python -m torch.distributed.run``) sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``
and ``MASTER_PORT``; :func:`setup` reads them, picks the device and initialises the process group (gloo on CPU,
nccl on CUDA). Without them (or with ``WORLD_SIZE=1``) everything runs in this one process.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from hmore.errors import UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly single-process) run.

    Attributes:
        rank: global rank of this process (0 in a single-process run).
        world_size: number of processes.
        local_rank: rank on this machine (selects the CUDA device).
        device: the torch device this process trains on.
        owns_group: True when :func:`setup` created the process group (so :func:`teardown` destroys it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and logs (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"environment variable {name} must be an integer, got {raw!r}") from None


def resolve_device(device: str, *, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> CUDA (device ``local_rank``) when available, else CPU; other strings as torch understands them."""
    if device == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UsageError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N): {exc}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {device!r} requested but CUDA is not available on this machine (use cpu)")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
        if dev.index >= torch.cuda.device_count():
            raise UsageError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError(f"device {device!r} requested but MPS is not available on this machine (use cpu)")
    elif dev.type != "cpu":
        raise UsageError(f"unsupported device {device!r} (use auto, cpu, cuda or cuda:N)")
    return dev


def setup(device: str = "auto") -> DistContext:
    """Read the ``torchrun`` environment, choose the device and join the process group when ``WORLD_SIZE > 1``.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns:
        The :class:`DistContext` of this process.
    """
    world_size = env_int("WORLD_SIZE", 1)
    rank = env_int("RANK", 0)
    local_rank = env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise UsageError(f"bad distributed environment: RANK={rank}, WORLD_SIZE={world_size}")
    dev = resolve_device(device, local_rank=local_rank)
    if world_size == 1:
        return DistContext(device=dev)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        log.info("joining process group: rank %d of %d, backend %s", rank, world_size, backend)
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        owns = True
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=dev, owns_group=owns)


def teardown(ctx: DistContext) -> None:
    """Leave the process group if :func:`setup` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op in a single-process run)."""
    if ctx.distributed:
        dist.barrier()


def mean_over_ranks(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Average a dict of floats (same keys on every rank) over the ranks."""
    if not ctx.distributed or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_reduce_device(ctx))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= ctx.world_size
    return {k: float(v) for k, v in zip(keys, t.tolist())}


def all_true(flag: bool, ctx: DistContext) -> bool:
    """True when ``flag`` is True on every rank."""
    if not ctx.distributed:
        return flag
    t = torch.tensor([0 if flag else 1], dtype=torch.int32, device=_reduce_device(ctx))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item()) == 0


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` in a single-process run)."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _reduce_device(ctx: DistContext) -> torch.device:
    return ctx.device if ctx.device.type == "cuda" else torch.device("cpu")
