"""The sizes of every `reproduce` stage: `tiny-v2` makes the bundled models (world v2), `tiny` the world v1
bundle of docs/world-v1/, `smoke` is the test's."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


@dataclass
class Preset:
    """Sizes of every stage. `tiny-v2` makes the bundled models; `smoke` is the same path in about
    a minute, for tests (its models are not meant to be good)."""

    teacher_config: Path | None = None  # a TeacherTrainConfig YAML (architecture, world), then the overrides
    teacher_overrides: tuple[str, ...] = ()
    synvid_num_prompts: int | None = None  # None: every train prompt
    synvid_samples_per_prompt: int = 6
    synvid_steps: int = 50
    synvid_batch: int = 6  # a prompt's seeds per teacher batch (several times faster than one by one)
    accvideo_m: int = 5
    # The trajectory-loss-only row of the ablation (`ablation --method accvideo` has it); left
    # out here to fit the 90-minute budget.
    trajectory_only: bool = False
    accvideo_steps: int = 1600
    frontier: tuple[int, ...] = (2, 3, 4)
    frontier_steps: int = 300
    accvideo_overrides: tuple[str, ...] = ("trainer.lr=2e-4", "method.adv_start=200")
    gpd_schedule: tuple[int, ...] = (48, 24, 12, 6)
    # stage 1 also bakes the guidance in; 400/400/600 left this teacher's 6-step student at 88.8
    # against 90.9 for the 48-step teacher (runs of 2026-11-23, docs/RESULTS.md says which is bundled)
    gpd_stage_steps: tuple[int, ...] = (800, 800, 1200)
    gpd_overrides: tuple[str, ...] = ("trainer.lr=2e-4",)
    # the lightweight decoder of the teacher's VAE (docs/FIXED_COST.md); the v1 bundle's took 3000 steps,
    # tiny-v2 trains the bundled one for 6000
    decoder_steps: int = 3000
    decoder_overrides: tuple[str, ...] = ("method.channels=64", "method.num_blocks=2", "method.freq_weight=0.3")
    decoder_check_videos: int = 8  # generated videos of its PSNR and speed check against the VAE (0: none)
    num_videos: int = 24
    # each student and the teacher at its steps again on this many videos (0: none), in the
    # report's separation table; few-step rows are cheap, and 96 videos leave their intervals overlapping
    separation_videos: int = 0
    bench_repeats: int = 5
    bench_warmup: int = 1
    # the teacher's transformer stage and GPD under torch.compile (`trainer.compile`): 1.30x and
    # 1.49x their steps per second on this CPU, AccVideo 0.98x, so not it (scripts/compile_check.py)
    compile: bool = False
    toy_seeds: int | None = None  # None: the toy's default
    toy_points: int | None = None


PRESETS: dict[str, Preset] = {
    "tiny": Preset(),
    # world v2 (docs/WORLD.md): its larger teacher (192 x 6, about 2.2x the tiny teacher's cost per
    # call, so the students cost as much more per step: fewer student steps keep the pipeline near
    # its time budget), and 96 videos per ProcBench row so the intervals separate the headline rows;
    # its decoder trains 6000 steps on the SynVid final states (what samplers make; on world clips it
    # scored 1.0 point under the VAE, on these 0.5, docs/FIXED_COST.md); 24 SynVid
    # trajectories per prompt, not 6: on 396 the student overfits, on 1584 it scores 2.7 points
    # above the naive teacher at 5 steps on 384 paired videos (docs/RESULTS.md); GPD at the default
    # 800/800/1200 stage steps: at 500/500/800 its 6-step student was not separated from the naive
    # teacher at 6 steps on 384 paired videos (+0.79 [-0.60, +2.19]), at 800/800/1200 it is
    # (+1.40 [+0.13, +2.68]); the separation rows on 1536 videos: on 384 that GPD's interval still
    # touched the naive teacher's (84.49 against 85.13), on 1536 they are 0.42 apart
    # (scripts/separation.py, docs/RECIPE.md); the bench at 20 repeats: at 5, three runs of the same
    # models on this CPU put tiny-accvideo at 11.0x to 13.3x, the repro-v3 run at 8.9x
    "tiny-v2": replace(Preset(), teacher_config=CONFIGS / "teacher-world-v2.yaml", accvideo_steps=1000,
                       synvid_samples_per_prompt=24, frontier_steps=200,
                       num_videos=96, separation_videos=1536, bench_repeats=20, decoder_steps=6000,
                       decoder_overrides=(*Preset.decoder_overrides, "method.source=synvid", "method.num_videos=1584")),
    "smoke": Preset(
        teacher_overrides=("vae.steps=3", "vae.stats_clips=8", "transformer.steps=4", "transformer.num_clips=32",
                           "transformer.batch_size=4", "vae.batch_size=2", "checkpoint_every=2", "log_every=1"),
        synvid_num_prompts=2, synvid_samples_per_prompt=2, synvid_batch=2, synvid_steps=10,
        accvideo_m=5, accvideo_steps=2, frontier=(2,), frontier_steps=2,
        accvideo_overrides=("trainer.batch_size=2", "method.adv_start=1", "trainer.log_every=1"),
        gpd_schedule=(10, 5), gpd_stage_steps=(2,), gpd_overrides=("trainer.batch_size=2", "trainer.log_every=1"),
        decoder_steps=3, decoder_check_videos=1,
        decoder_overrides=("trainer.batch_size=2", "trainer.log_every=1", "method.num_videos=6", "method.heldout=2",
                           "method.channels=8", "method.num_blocks=1", "method.data_batch=3"),
        num_videos=2, separation_videos=3, bench_repeats=1, bench_warmup=0, toy_seeds=1, toy_points=64,
    ),
}


def synvid_store(preset: Preset) -> str:
    """The stored states: the key states of the main student and of every frontier student."""
    from accvideo.core.schedules import key_steps

    keep = set()
    for m in (preset.accvideo_m, *preset.frontier):
        keep.update(key_steps(preset.synvid_steps, m))
    return ",".join(str(i) for i in sorted(keep))
