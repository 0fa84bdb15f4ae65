"""`python -m accvideo reproduce` (see `stages`)."""

from accvideo.experiments.reproduce.stages import PRESETS, STAGES, Preset, StageLog, run_reproduce, synvid_store

__all__ = ["PRESETS", "STAGES", "Preset", "StageLog", "run_reproduce", "synvid_store"]
