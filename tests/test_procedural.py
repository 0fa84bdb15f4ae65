import hashlib

import numpy as np
import pytest
import torch

from accvideo.world import (
    ALL_COMBOS,
    COLORS,
    DIRECTIONS,
    HELDOUT_COMBOS,
    SHAPES,
    TRAIN_COMBOS,
    ClipSpec,
    WorldConfig,
    make_batch,
    object_masks,
    parse_prompt,
    prompt_for,
    render,
    sample_spec,
)


def test_grammar_size_and_split():
    assert len(COLORS) >= 5 and len(SHAPES) >= 3 and len(DIRECTIONS) >= 4
    assert len(ALL_COMBOS) == len(COLORS) * len(SHAPES) * len(DIRECTIONS)
    assert not set(HELDOUT_COMBOS) & set(TRAIN_COMBOS)
    assert set(HELDOUT_COMBOS) | set(TRAIN_COMBOS) == set(ALL_COMBOS)
    # every word still appears in training, so held-out prompts are new combinations of known words
    for i, values in enumerate((COLORS, SHAPES, DIRECTIONS)):
        assert {c[i] for c in TRAIN_COMBOS} == set(values)


def test_deterministic_per_seed():
    a, specs_a = make_batch(3, 4)
    b, specs_b = make_batch(3, 4)
    c, _ = make_batch(4, 4)
    assert torch.equal(a, b) and specs_a == specs_b
    assert not torch.equal(a, c)
    assert a.shape == (4, 3, 9, 32, 32) and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() <= 1


def test_split_is_respected():
    rng = np.random.default_rng(0)
    held = {tuple((s.color, s.shape, s.direction)) for s in (sample_spec(rng, split="heldout") for _ in range(200))}
    assert held <= set(HELDOUT_COMBOS)
    train = {(s.color, s.shape, s.direction) for s in (sample_spec(rng, split="train") for _ in range(300))}
    assert not train & set(HELDOUT_COMBOS)


@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_object_moves_in_prompted_direction_and_stays_inside(direction):
    rng = np.random.default_rng(1)
    world = WorldConfig()
    spec = sample_spec(rng, world, combo=("red", "circle", direction))
    masks = object_masks(spec, world)
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    cx = (masks * xs).sum((1, 2)) / masks.sum((1, 2))
    cy = (masks * ys).sum((1, 2)) / masks.sum((1, 2))
    dx, dy = DIRECTIONS[direction]
    moved = torch.tensor([cx[-1] - cx[0], cy[-1] - cy[0]])
    assert float(moved @ torch.tensor([dx, dy])) > 8  # at least 1 px per frame along the direction
    # nothing is cut off by the border: every frame keeps the same area
    assert torch.allclose(masks.sum((1, 2)), masks.sum((1, 2))[0].expand(9), rtol=0.05)
    video = render(spec, world)
    inside = video[:, masks > 0.99]  # (3, N) colours of fully covered pixels
    assert inside.shape[1] > 0
    assert torch.all(inside[0] > 0.8) and torch.all(inside[1:] < -0.7)  # red, not green or blue
    assert torch.all(video[:, masks == 0] == -1)  # black background


def test_prompt_round_trip_and_errors():
    assert parse_prompt(prompt_for("cyan", "triangle", "up")) == ("cyan", "triangle", "up")
    with pytest.raises(ValueError, match="color"):
        parse_prompt("a purple circle moving up")
    with pytest.raises(ValueError, match="prompt"):
        parse_prompt("red circle")


def test_v1_preset_draws_no_distractors_and_no_extra_random_numbers():
    from accvideo.world import WORLDS

    assert WORLDS["v1"] == WorldConfig()
    rng = np.random.default_rng(7)
    spec = sample_spec(rng, WORLDS["v1"])
    assert spec.distractors == ()
    # the numbers and stream position the v1 world drew before v2 existed (bundled models' world)
    assert (spec.color, spec.shape, spec.direction) == ("cyan", "square", "down")
    assert (spec.radius, spec.speed) == (5.845820701454363, 1.8317642676838952)
    assert spec.start == (10.968994694445382, 7.942701683855295)
    assert rng.random() == 0.8735534453962619
    digest = hashlib.sha256(render(spec).numpy().tobytes()).hexdigest()
    assert digest == "2fdc9e28564166c90000987f148450913ccccaeba9958fee2b89b30edbb84bff"


def test_v2_distractors_follow_the_rules_and_are_known_to_the_spec():
    from accvideo.world import world_preset
    from accvideo.world.distractors import distractor_masks

    world = world_preset("v2")
    rng = np.random.default_rng(0)
    specs = [sample_spec(rng, world) for _ in range(40)]
    counts = [len(s.distractors) for s in specs]
    assert min(counts) >= 1 and max(counts) <= world.num_distractors[1] and np.mean(counts) > 2
    for spec in specs[:8]:
        # the v1 draws come first: the prompted object is the v1 clip of the same stream position
        assert spec.radius >= world.radius_range[0]
        for d in spec.distractors:
            assert d.color != spec.color and d.distractors == ()
            assert world.distractor_radius_range[0] <= d.radius <= world.distractor_radius_range[1]
        video = (render(spec, world) + 1) / 2
        assert video.shape == (3, 9, 32, 32)
        # the prompted object is drawn on top, unchanged by its distractors
        alone = (render(ClipSpec(spec.color, spec.shape, spec.direction, spec.radius, spec.speed, spec.start),
                        world) + 1) / 2
        on = object_masks(spec, world) > 0.99
        assert torch.allclose(video[:, on], alone[:, on])
        masks = distractor_masks(spec, world)
        assert masks.shape == (len(spec.distractors), 9, 32, 32)
        for d, mask in zip(spec.distractors, masks):
            inside = mask > 0.99  # the distractor's colour shows where it is fully visible
            assert inside.any()
            expected = torch.tensor(COLORS[d.color])[:, None]
            assert torch.allclose(video[:, inside], expected.expand(-1, int(inside.sum())), atol=1e-6)
    with pytest.raises(ValueError, match="world"):
        world_preset("v3")
    with pytest.raises(ValueError, match="num_distractors"):
        sample_spec(rng, WorldConfig(num_distractors=(3, 2)))
