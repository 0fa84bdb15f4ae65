"""Converters of original-format checkpoints, tested by round trip on tiny random transformers:
diffusers model -> original key names -> our converter -> strict load -> bit-identical output."""

import subprocess
import sys

import pytest
import torch
from diffusers import HunyuanVideoTransformer3DModel, WanTransformer3DModel

from accvideo.models.convert import (
    build_converted_transformer,
    convert_checkpoint,
    diffusers_to_original,
    hunyuan_diffusers_to_original,
    hunyuan_original_to_diffusers,
    load_original_checkpoint,
    original_to_diffusers,
    wan_diffusers_to_original,
    wan_original_to_diffusers,
)
from tests.helpers.tiny_hunyuan import TRANSFORMER as TINY_HUNYUAN_TRANSFORMER

# the tiny HunyuanVideo transformer with two blocks of each kind, so block indices above 0 are mapped too
HUNYUAN_TINY = {**TINY_HUNYUAN_TRANSFORMER, "num_layers": 2, "num_single_layers": 2, "num_refiner_layers": 2}
WAN_TINY = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
                text_dim=16, freq_dim=16, ffn_dim=32, num_layers=2, rope_max_seq_len=32)


def _randomise(model):
    # random init leaves some tensors at exact zeros / ones (norms, gates); make every
    # tensor distinct so a swapped or mis-split tensor cannot pass unnoticed
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model.eval()


def _hunyuan_inputs():
    g = torch.Generator().manual_seed(1)
    return dict(hidden_states=torch.randn(1, 4, 3, 4, 4, generator=g), timestep=torch.tensor([500.0]),
                encoder_hidden_states=torch.randn(1, 5, 16, generator=g),
                encoder_attention_mask=torch.tensor([[1, 1, 1, 0, 0]]),
                pooled_projections=torch.randn(1, 8, generator=g), guidance=torch.tensor([6000.0]), return_dict=False)


def _wan_inputs():
    g = torch.Generator().manual_seed(1)
    return dict(hidden_states=torch.randn(1, 4, 3, 4, 4, generator=g), timestep=torch.tensor([500.0]),
                encoder_hidden_states=torch.randn(1, 5, 16, generator=g), return_dict=False)


CASES = {
    "hunyuan": (HunyuanVideoTransformer3DModel, HUNYUAN_TINY, _hunyuan_inputs),
    "wan": (WanTransformer3DModel, WAN_TINY, _wan_inputs),
}


@pytest.mark.parametrize("family", ["hunyuan", "wan"])
def test_round_trip_is_bit_identical(family):
    cls, config, inputs = CASES[family]
    torch.manual_seed(0)
    model = _randomise(cls(**config))
    original = diffusers_to_original(family, model.state_dict())
    # the original names really are the original format's (no diffusers name survives)
    if family == "hunyuan":
        assert "double_blocks.1.img_attn_qkv.weight" in original and "single_blocks.0.linear1.bias" in original
        assert original["single_blocks.0.linear1.weight"].shape == (3 * 16 + 64, 16)
        assert not any(k.startswith(("transformer_blocks", "x_embedder", "context_embedder")) for k in original)
    else:
        assert "blocks.1.self_attn.q.weight" in original and "blocks.0.norm3.weight" in original
        assert "head.modulation" in original and "blocks.0.modulation" in original
        assert not any(".attn1." in k or "scale_shift_table" in k for k in original)
    back = original_to_diffusers(family, original)
    ours = model.state_dict()
    assert back.keys() == ours.keys()
    assert all(torch.equal(back[k], ours[k]) for k in ours)
    again = cls(**config)
    again.load_state_dict(back, strict=True)
    again.eval()
    with torch.no_grad():
        assert torch.equal(model(**inputs())[0], again(**inputs())[0])


def test_named_wrappers():
    sd = {"x": torch.zeros(1)}
    with pytest.raises(ValueError, match="`family` must be one of"):
        original_to_diffusers("sdxl", sd)
    torch.manual_seed(0)
    model = HunyuanVideoTransformer3DModel(**HUNYUAN_TINY)
    orig = hunyuan_diffusers_to_original(model.state_dict())
    assert hunyuan_original_to_diffusers(orig).keys() == model.state_dict().keys()
    wan = WanTransformer3DModel(**WAN_TINY)
    assert wan_original_to_diffusers(wan_diffusers_to_original(wan.state_dict())).keys() == wan.state_dict().keys()


def test_final_modulation_halves_are_swapped():
    """HunyuanVideo stores (shift, scale); diffusers' AdaLayerNormContinuous reads (scale, shift)."""
    shift, scale = torch.full((4, 2), 1.0), torch.full((4, 2), 2.0)
    sd = {"final_layer.adaLN_modulation.1.weight": torch.cat([shift, scale])}
    out = hunyuan_original_to_diffusers(sd)["norm_out.linear.weight"]
    assert torch.equal(out[:4], scale) and torch.equal(out[4:], shift)


def test_prefixes_are_stripped():
    torch.manual_seed(0)
    model = WanTransformer3DModel(**WAN_TINY)
    orig = wan_diffusers_to_original(model.state_dict())
    wrapped = {f"model.diffusion_model.{k}": v for k, v in orig.items()}
    assert wan_original_to_diffusers(wrapped).keys() == model.state_dict().keys()


def test_unknown_keys_are_named():
    torch.manual_seed(0)
    orig = wan_diffusers_to_original(WanTransformer3DModel(**WAN_TINY).state_dict())
    orig["img_emb.proj.0.weight"] = torch.zeros(2)
    with pytest.raises(ValueError, match=r"not original keys of a Wan2.1 text-to-video transformer: 'img_emb"):
        wan_original_to_diffusers(orig)
    # a HunyuanVideo checkpoint given as Wan: every key is named as unknown
    hy = hunyuan_diffusers_to_original(HunyuanVideoTransformer3DModel(**HUNYUAN_TINY).state_dict())
    with pytest.raises(ValueError, match="Is this the right `family`"):
        wan_original_to_diffusers(hy)


def test_missing_parts_are_named():
    torch.manual_seed(0)
    sd = HunyuanVideoTransformer3DModel(**HUNYUAN_TINY).state_dict()
    del sd["transformer_blocks.0.attn.to_k.weight"]
    with pytest.raises(ValueError, match=r"cannot rebuild 'double_blocks.0.img_attn_qkv.weight': part\(s\) \[1\]"):
        hunyuan_diffusers_to_original(sd)


def test_missing_keys_do_not_load():
    torch.manual_seed(0)
    model = HunyuanVideoTransformer3DModel(**HUNYUAN_TINY)
    orig = hunyuan_diffusers_to_original(model.state_dict())
    del orig["double_blocks.1.txt_mlp.fc2.bias"]
    with pytest.raises(ValueError, match=r"missing \['transformer_blocks.1.ff_context.net.2.bias'\]"):
        build_converted_transformer("hunyuan", orig, dict(model.config))


@pytest.mark.parametrize("family", ["hunyuan", "wan"])
def test_convert_checkpoint_file_to_folder(family, tmp_path):
    """The user's path: an original .pt (wrapped as the HunyuanVideo repo saves it) -> a
    diffusers transformer folder that loads with from_pretrained and computes the same."""
    cls, config, inputs = CASES[family]
    torch.manual_seed(0)
    model = _randomise(cls(**config))
    model.save_pretrained(tmp_path / "teacher-transformer")
    torch.save({"module": diffusers_to_original(family, model.state_dict())}, tmp_path / "student.pt")
    assert load_original_checkpoint(tmp_path / "student.pt").keys() == diffusers_to_original(
        family, model.state_dict()).keys()
    out = convert_checkpoint(family, tmp_path / "student.pt", tmp_path / "teacher-transformer", tmp_path / "conv")
    loaded = cls.from_pretrained(out).eval()
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    # compare with the same model loaded the same way (a from_pretrained model and one built
    # in memory differ by ~2e-6 in diffusers itself, with equal weights)
    reference = cls.from_pretrained(tmp_path / "teacher-transformer").eval()
    with torch.no_grad():
        assert torch.equal(reference(**inputs())[0], loaded(**inputs())[0])


@pytest.mark.slow
def test_convert_cli(tmp_path):
    torch.manual_seed(0)
    model = _randomise(WanTransformer3DModel(**WAN_TINY))
    model.save_pretrained(tmp_path / "cfg")
    from safetensors.torch import save_file

    save_file(wan_diffusers_to_original(model.state_dict()), str(tmp_path / "wan.safetensors"))
    run = subprocess.run([sys.executable, "-m", "accvideo", "convert", "--family", "wan", "--checkpoint",
                          str(tmp_path / "wan.safetensors"), "--config", str(tmp_path / "cfg"), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "config.json").exists()
    bad = subprocess.run([sys.executable, "-m", "accvideo", "convert", "--family", "wan", "--checkpoint",
                          str(tmp_path / "nope.pt"), "--config", str(tmp_path / "cfg"), "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "`checkpoint` must be an existing file" in bad.stderr


@pytest.mark.parametrize("family", ["hunyuan", "wan"])
def test_converted_transformer_has_no_meta_tensors(family):
    """Built on meta, a converted transformer still gets its buffers (Wan's rotary tables) computed
    on the CPU: equal to a normally built model's, and a forward pass runs and matches."""
    cls, config, inputs = CASES[family]
    torch.manual_seed(0)
    model = _randomise(cls(**config))
    converted = build_converted_transformer(family, diffusers_to_original(family, model.state_dict()),
                                            dict(model.config))
    assert not [n for n, b in converted.named_buffers() if b.is_meta]
    assert not [n for n, p in converted.named_parameters() if p.is_meta]
    ours = dict(converted.named_buffers())
    assert ours.keys() == dict(model.named_buffers()).keys()
    assert all(torch.equal(b, ours[n]) for n, b in model.named_buffers())
    with torch.no_grad():
        assert torch.equal(model(**inputs())[0], converted(**inputs())[0])
