"""Collectives run on the run's device: an NCCL group has no CPU backend, so a metric reduced as a
CPU tensor crashes a multi-GPU run at its first log step.

There is no GPU here, so the run's device is `meta`: a tensor made on the wrong device shows up in
the patched `all_reduce`, which records the device and stops the call (a meta tensor has no value
to read back).
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from accvideo.util import distributed
from accvideo.util.distributed import DistInfo


class Reduced(Exception):
    pass


@pytest.fixture
def devices(monkeypatch):
    seen = []

    def fake_all_reduce(tensor, op=None, **kwargs):
        seen.append(tensor.device)
        raise Reduced

    monkeypatch.setattr(dist, "all_reduce", fake_all_reduce)
    return seen


@pytest.mark.parametrize("reduce", [distributed.mean_across_ranks, distributed.sum_across_ranks,
                                    distributed.max_across_ranks])
def test_metric_collectives_use_the_run_device(devices, reduce):
    info = DistInfo(rank=0, world_size=2, device=torch.device("meta"))
    with pytest.raises(Reduced):
        reduce(1.5, info)
    assert devices == [torch.device("meta")]


@pytest.mark.parametrize("reduce", [distributed.mean_across_ranks, distributed.sum_across_ranks,
                                    distributed.max_across_ranks])
def test_a_single_process_run_reduces_nothing(devices, reduce):
    assert reduce(2.5, DistInfo()) == 2.5 and devices == []


@pytest.mark.slow
def test_reductions_across_two_gloo_processes(tmp_path):
    """The arithmetic, on a real 2-process gloo group (CPU is the run's device there)."""
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(str(tmp_path / "rendezvous"),), nprocs=2, join=True)
    results = sorted((tmp_path / f"rank{r}.txt").read_text() for r in range(2))
    assert results == ["1.5 3.0 2.0", "1.5 3.0 2.0"]


def _worker(rank: int, path: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=2)
    info = DistInfo(rank=rank, world_size=2)
    value = float(rank + 1)  # 1 and 2
    out = (distributed.mean_across_ranks(value, info), distributed.sum_across_ranks(value, info),
           distributed.max_across_ranks(value, info))
    (__import__("pathlib").Path(path).parent / f"rank{rank}.txt").write_text(" ".join(str(v) for v in out))
    dist.destroy_process_group()


def test_one_process_starts_a_group_only_when_asked(monkeypatch, tmp_path):
    """`ACCVIDEO_PROCESS_GROUP=1` under torchrun (RANK set) at world size 1 starts the group, so the
    GPU check runs the multi-GPU path (NCCL collectives, FSDP2) on one device; without it, none."""
    from tests.helpers.ports import free_port

    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port())}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ACCVIDEO_PROCESS_GROUP", raising=False)
    assert not distributed.setup().distributed and not dist.is_initialized()
    monkeypatch.setenv("ACCVIDEO_PROCESS_GROUP", "1")
    info = distributed.setup()
    try:
        assert info.distributed and info.world_size == 1 and dist.is_initialized()
        assert distributed.sum_across_ranks(2.5, info) == 2.5  # a real all-reduce over the one rank
    finally:
        distributed.cleanup(info)
    assert not dist.is_initialized()
