"""One entry point under `python` and `torchrun`: rank, world size, device, process group.

Under `torchrun` the env vars RANK / WORLD_SIZE / LOCAL_RANK are set; the group uses NCCL
when CUDA is available and gloo otherwise (CPU tests and the tiny preset).

At world size 1 no group is started (a one-GPU run needs no collectives) unless
`ACCVIDEO_PROCESS_GROUP=1` asks for one: then a one-process torchrun run takes the multi-GPU
path (NCCL collectives, DDP / FSDP2 wrapping) on one device. `scripts/gpu_check.sh` uses it to
test that path on a single GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    group: bool = False  # a process group is up although world_size is 1 (ACCVIDEO_PROCESS_GROUP=1)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or self.group


def setup() -> DistInfo:
    """Initialise the process group when launched by torchrun; a no-op under plain python."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    forced = os.environ.get("ACCVIDEO_PROCESS_GROUP", "0") == "1" and "RANK" in os.environ
    if world_size <= 1 and not forced:
        return DistInfo(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=device, group=world_size <= 1)


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def _all_reduce(value: float, info: DistInfo, op) -> float:
    # The tensor lives on the run's device: an NCCL-only process group has no CPU backend, and a
    # CPU tensor there fails at the first metrics step (tests/test_distributed.py checks every caller).
    t = torch.tensor([float(value)], dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=op)
    return float(t.item())


def mean_across_ranks(value: float, info: DistInfo) -> float:
    if not info.distributed:
        return value
    return _all_reduce(value, info, dist.ReduceOp.SUM) / info.world_size


def sum_across_ranks(value: float, info: DistInfo) -> float:
    return _all_reduce(value, info, dist.ReduceOp.SUM) if info.distributed else value


def max_across_ranks(value: float, info: DistInfo) -> float:
    return _all_reduce(value, info, dist.ReduceOp.MAX) if info.distributed else value
