"""SynVid: a dataset of the teacher's own ODE trajectories.

`format` (names, config, sample numbering, shard bytes, manifest), `writer` (`generate_synvid`)
and `reader` (`open_synvid`, `SynVidDataset`). The names callers use are re-exported here.
"""

from accvideo.synvid.format import (
    DTYPES,
    FORMAT,
    FORMAT_VERSION,
    PRESETS,
    ShardPlan,
    SynVidConfig,
    Trajectory,
    load_prompts,
    parse_store,
    resolve_config,
)
from accvideo.synvid.reader import SynVidCorruptError, SynVidDataset, open_synvid
from accvideo.synvid.writer import SynVidSummary, generate_synvid, teacher_trajectories

__all__ = [
    "DTYPES", "FORMAT", "FORMAT_VERSION", "PRESETS", "ShardPlan", "SynVidConfig", "SynVidCorruptError",
    "SynVidDataset", "SynVidSummary", "Trajectory", "generate_synvid", "load_prompts", "open_synvid",
    "parse_store", "resolve_config", "teacher_trajectories",
]
