"""`reproduce --preset smoke`: the whole pipeline end to end in minutes, then resume and report."""

import json

import pandas as pd
import pytest

from accvideo.experiments.reproduce import PRESETS, STAGES, Preset, run_reproduce, synvid_store


def test_synvid_store_keeps_every_key_state():
    store = synvid_store(Preset(accvideo_m=5, frontier=(2, 3, 4), synvid_steps=50))
    assert store == "0,10,12,17,20,25,30,33,38,40,50"


def test_unknown_preset_and_stage_are_errors(tmp_path):
    with pytest.raises(ValueError, match="`preset` must be one of"):
        run_reproduce(tmp_path, preset="huge")
    with pytest.raises(ValueError, match="`stages` must be names"):
        run_reproduce(tmp_path, preset="smoke", only=("teachr",))


@pytest.mark.slow
def test_reproduce_smoke_end_to_end(tmp_path):
    out, results = tmp_path / "run", tmp_path / "docs" / "RESULTS.md"
    data = run_reproduce(out, "smoke", results=results, bundle_dir=tmp_path / "assets")
    assert all(data["stages"][s]["finished"] for s in STAGES)
    # every model exists and is a pipeline the rest of the tools load
    for folder in (out / "teacher" / "pipeline", out / "accvideo" / "full-m5" / "pipeline",
                   out / "accvideo" / "full-m2" / "pipeline", out / "gpd" / "pipeline"):
        assert (folder / "model_index.json").exists(), folder
    assert not (out / "accvideo" / "traj-m5").exists()  # the ablation's extra row is not in reproduce
    synvid_config = json.loads((out / "synvid" / "config.json").read_text())
    assert synvid_config["batch_size"] == 2 and synvid_config["num_samples"] == 4
    gpd = json.loads((out / "gpd" / "pipeline" / "accvideo_sampling.json").read_text())
    assert gpd["num_steps"] == PRESETS["smoke"].gpd_schedule[-1]
    table = pd.read_csv(out / "procbench.csv")
    assert {"teacher@50", "+ adversarial", "student m=2", "gpd"} <= set(table.row)
    assert set(table.split) == {"train", "heldout"}
    assert table.total.between(0, 100).all()
    bench = pd.read_csv(out / "bench.csv")
    assert bench.speedup.iloc[0] == 1.0 and (bench.total_s > 0).all()
    text = results.read_text()
    for heading in ("## Headline", "## AccVideo against the teacher", "## Speed-quality frontier", "## Wall time"):
        assert heading in text
    for figure in ("frontier.png", "samples.png", "ablation.png"):
        assert (results.parent / "results" / figure).stat().st_size > 1000
    for name in ("tiny-teacher", "tiny-accvideo", "tiny-gpd"):
        provenance = json.loads((tmp_path / "assets" / name / "provenance.json").read_text())
        assert provenance["reproduce"]["command"].startswith("python -m accvideo reproduce")
        # the same pipeline wall time as RESULTS.md: the computing stages, not report and bundle
        assert provenance["reproduce"]["pipeline_wall_s"] == round(
            sum(data["stages"][s]["wall_s"] for s in STAGES if s not in ("report", "bundle")), 1)
        assert "procbench_train" in provenance["scores"]

    # a rerun skips every finished stage: same stage log, report rewritten
    before = json.loads((out / "stages.json").read_text())
    again = run_reproduce(out, "smoke", results=results)
    assert {s: again["stages"][s]["wall_s"] for s in STAGES if s not in ("report", "bundle")} == \
        {s: before["stages"][s]["wall_s"] for s in STAGES if s not in ("report", "bundle")}
