"""How busy the machine was while something ran: this process's CPU time against the whole
machine's, so a wall time can say whether it was measured alone or beside other jobs."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class CpuSample:
    wall: float  # perf_counter seconds
    own: float  # CPU seconds of this process and its finished children
    machine: float | None  # busy CPU seconds of the whole machine since boot (None: no /proc/stat)


def _machine_busy(path: Path) -> float | None:
    """Busy CPU seconds of all cores from the first line of /proc/stat (all but idle and iowait)."""
    try:
        fields = [int(v) for v in path.read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_sample(path: Path = PROC_STAT) -> CpuSample:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    own = sum(u.ru_utime + u.ru_stime for u in usage)
    return CpuSample(time.perf_counter(), own, _machine_busy(path))


def cpu_share(start: CpuSample, end: CpuSample) -> dict:
    """Cores used on average between two samples: `own_cores` by this process, `other_cores` by
    everything else on the machine (None without /proc/stat), and torch's thread count now."""
    import torch

    wall = max(end.wall - start.wall, 1e-9)
    own = (end.own - start.own) / wall
    other = None
    if start.machine is not None and end.machine is not None:
        # both clocks tick in whole jiffies: a small negative remainder is rounding, not load
        other = max(0.0, (end.machine - start.machine) / wall - own)
    return {"threads": torch.get_num_threads(), "own_cores": round(own, 2),
            "other_cores": None if other is None else round(other, 2)}
