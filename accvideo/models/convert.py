"""Original-format transformer checkpoints <-> diffusers layout, for HunyuanVideo and Wan2.1.

The released AccVideo students ship in their authors' formats: the HunyuanVideo student as
a `.pt` state dict with HunyuanVideo's own key names (`double_blocks.3.img_attn_qkv.weight`),
the Wan student with Wan2.1's key names (`blocks.3.self_attn.q.weight`). diffusers names the
same tensors differently and splits some fused ones (HunyuanVideo's `qkv` projections, the
single-stream blocks' `linear1` = [q | k | v | mlp]).

Each family is one table of rules `(original stem, diffusers stems, how)`; `{i}` stands for a
block index. The same table drives both directions, so the inverse used by the round-trip
tests cannot drift from the forward converter. `how` is:

- "same":   one tensor, renamed;
- "chunk":  the original tensor is the concatenation (dim 0) of equal-sized diffusers tensors;
- "linear1": HunyuanVideo single-stream `linear1`, dim 0 = [q, k, v, mlp] with q, k, v of
  the hidden size and the mlp part the rest;
- "swap":   two halves in the opposite order (HunyuanVideo's final modulation stores
  (shift, scale); diffusers' `AdaLayerNormContinuous` reads (scale, shift)).

Key facts were read from the installed diffusers (its transformer modules and the
single-file loader) and checked by the round-trip tests in `tests/test_convert.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

# (original stem, diffusers stems, how); a stem is a module path, the parameter suffix
# (".weight", ".bias" or none for bare parameters) is carried over unchanged.
HUNYUAN_RULES: list[tuple[str, tuple[str, ...], str]] = [
    ("img_in.proj", ("x_embedder.proj",), "same"),
    ("time_in.mlp.0", ("time_text_embed.timestep_embedder.linear_1",), "same"),
    ("time_in.mlp.2", ("time_text_embed.timestep_embedder.linear_2",), "same"),
    ("vector_in.in_layer", ("time_text_embed.text_embedder.linear_1",), "same"),
    ("vector_in.out_layer", ("time_text_embed.text_embedder.linear_2",), "same"),
    ("guidance_in.mlp.0", ("time_text_embed.guidance_embedder.linear_1",), "same"),
    ("guidance_in.mlp.2", ("time_text_embed.guidance_embedder.linear_2",), "same"),
    # the token refiner in front of the text stream
    ("txt_in.input_embedder", ("context_embedder.proj_in",), "same"),
    ("txt_in.t_embedder.mlp.0", ("context_embedder.time_text_embed.timestep_embedder.linear_1",), "same"),
    ("txt_in.t_embedder.mlp.2", ("context_embedder.time_text_embed.timestep_embedder.linear_2",), "same"),
    ("txt_in.c_embedder.linear_1", ("context_embedder.time_text_embed.text_embedder.linear_1",), "same"),
    ("txt_in.c_embedder.linear_2", ("context_embedder.time_text_embed.text_embedder.linear_2",), "same"),
    ("txt_in.individual_token_refiner.blocks.{i}.norm1", ("context_embedder.token_refiner.refiner_blocks.{i}.norm1",),
     "same"),
    ("txt_in.individual_token_refiner.blocks.{i}.self_attn_qkv",
     tuple(f"context_embedder.token_refiner.refiner_blocks.{{i}}.attn.to_{p}" for p in "qkv"), "chunk"),
    ("txt_in.individual_token_refiner.blocks.{i}.self_attn_proj",
     ("context_embedder.token_refiner.refiner_blocks.{i}.attn.to_out.0",), "same"),
    ("txt_in.individual_token_refiner.blocks.{i}.norm2", ("context_embedder.token_refiner.refiner_blocks.{i}.norm2",),
     "same"),
    ("txt_in.individual_token_refiner.blocks.{i}.mlp.fc1",
     ("context_embedder.token_refiner.refiner_blocks.{i}.ff.net.0.proj",), "same"),
    ("txt_in.individual_token_refiner.blocks.{i}.mlp.fc2",
     ("context_embedder.token_refiner.refiner_blocks.{i}.ff.net.2",), "same"),
    ("txt_in.individual_token_refiner.blocks.{i}.adaLN_modulation.1",
     ("context_embedder.token_refiner.refiner_blocks.{i}.norm_out.linear",), "same"),
    # dual-stream blocks: image and text streams, joint attention
    ("double_blocks.{i}.img_mod.linear", ("transformer_blocks.{i}.norm1.linear",), "same"),
    ("double_blocks.{i}.img_attn_qkv", tuple(f"transformer_blocks.{{i}}.attn.to_{p}" for p in "qkv"), "chunk"),
    ("double_blocks.{i}.img_attn_q_norm", ("transformer_blocks.{i}.attn.norm_q",), "same"),
    ("double_blocks.{i}.img_attn_k_norm", ("transformer_blocks.{i}.attn.norm_k",), "same"),
    ("double_blocks.{i}.img_attn_proj", ("transformer_blocks.{i}.attn.to_out.0",), "same"),
    ("double_blocks.{i}.img_mlp.fc1", ("transformer_blocks.{i}.ff.net.0.proj",), "same"),
    ("double_blocks.{i}.img_mlp.fc2", ("transformer_blocks.{i}.ff.net.2",), "same"),
    ("double_blocks.{i}.txt_mod.linear", ("transformer_blocks.{i}.norm1_context.linear",), "same"),
    ("double_blocks.{i}.txt_attn_qkv", tuple(f"transformer_blocks.{{i}}.attn.add_{p}_proj" for p in "qkv"), "chunk"),
    ("double_blocks.{i}.txt_attn_q_norm", ("transformer_blocks.{i}.attn.norm_added_q",), "same"),
    ("double_blocks.{i}.txt_attn_k_norm", ("transformer_blocks.{i}.attn.norm_added_k",), "same"),
    ("double_blocks.{i}.txt_attn_proj", ("transformer_blocks.{i}.attn.to_add_out",), "same"),
    ("double_blocks.{i}.txt_mlp.fc1", ("transformer_blocks.{i}.ff_context.net.0.proj",), "same"),
    ("double_blocks.{i}.txt_mlp.fc2", ("transformer_blocks.{i}.ff_context.net.2",), "same"),
    # single-stream blocks: one fused input projection, one fused output projection
    ("single_blocks.{i}.linear1", tuple(f"single_transformer_blocks.{{i}}.{p}" for p in
                                       ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")), "linear1"),
    ("single_blocks.{i}.linear2", ("single_transformer_blocks.{i}.proj_out",), "same"),
    ("single_blocks.{i}.q_norm", ("single_transformer_blocks.{i}.attn.norm_q",), "same"),
    ("single_blocks.{i}.k_norm", ("single_transformer_blocks.{i}.attn.norm_k",), "same"),
    ("single_blocks.{i}.modulation.linear", ("single_transformer_blocks.{i}.norm.linear",), "same"),
    ("final_layer.linear", ("proj_out",), "same"),
    ("final_layer.adaLN_modulation.1", ("norm_out.linear",), "swap"),
]

WAN_RULES: list[tuple[str, tuple[str, ...], str]] = [
    ("patch_embedding", ("patch_embedding",), "same"),
    ("text_embedding.0", ("condition_embedder.text_embedder.linear_1",), "same"),
    ("text_embedding.2", ("condition_embedder.text_embedder.linear_2",), "same"),
    ("time_embedding.0", ("condition_embedder.time_embedder.linear_1",), "same"),
    ("time_embedding.2", ("condition_embedder.time_embedder.linear_2",), "same"),
    ("time_projection.1", ("condition_embedder.time_proj",), "same"),
    ("blocks.{i}.modulation", ("blocks.{i}.scale_shift_table",), "same"),
    # Wan's `norm3` is the affine norm before cross-attention; diffusers calls it `norm2`
    # (Wan's norm1/norm2 have no parameters, so nothing else is renamed).
    ("blocks.{i}.norm3", ("blocks.{i}.norm2",), "same"),
    ("blocks.{i}.ffn.0", ("blocks.{i}.ffn.net.0.proj",), "same"),
    ("blocks.{i}.ffn.2", ("blocks.{i}.ffn.net.2",), "same"),
    ("head.head", ("proj_out",), "same"),
    ("head.modulation", ("scale_shift_table",), "same"),
] + [
    (f"blocks.{{i}}.{orig}_attn.{a}", (f"blocks.{{i}}.{ours}.{b}",), "same")
    for orig, ours in (("self", "attn1"), ("cross", "attn2"))
    for a, b in (("q", "to_q"), ("k", "to_k"), ("v", "to_v"), ("o", "to_out.0"), ("norm_q", "norm_q"),
                 ("norm_k", "norm_k"))
]

RULES = {"hunyuan": HUNYUAN_RULES, "wan": WAN_RULES}
# Wrappers that training frameworks and the original repos put around the model's own keys.
PREFIXES = ("module.", "model.diffusion_model.", "_orig_mod.")


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern
    targets: tuple[str, ...]
    how: str


def _stem_regex(stem: str) -> str:
    return re.escape(stem).replace(re.escape("{i}"), r"(?P<i>\d+)")


def _compile(rules, reverse: bool) -> list[_Rule]:
    compiled = []
    for original, ours, how in rules:
        if not reverse:
            regex = "^" + _stem_regex(original) + r"(?P<suffix>\.weight|\.bias|)$"
            compiled.append(_Rule(re.compile(regex), ours, how))
        else:  # one entry per diffusers stem, pointing back to the original stem
            for part, stem in enumerate(ours):
                regex = "^" + _stem_regex(stem) + r"(?P<suffix>\.weight|\.bias|)$"
                compiled.append(_Rule(re.compile(regex), (original, str(part), *ours), how))
    return compiled


def _check_family(family: str) -> list:
    if family not in RULES:
        raise ValueError(f"`family` must be one of {sorted(RULES)} but is {family!r}.")
    return RULES[family]


def _strip_prefixes(state_dict: dict) -> dict:
    out = {}
    for key, value in state_dict.items():
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def _hidden_size(family: str, state_dict: dict, key: str) -> int:
    name = {"hunyuan": "img_in.proj.weight", "wan": "patch_embedding.weight"}[family]
    if name not in state_dict:
        raise ValueError(f"cannot convert {key!r}: the checkpoint has no {name!r} to read the hidden size from.")
    return state_dict[name].shape[0]


def _split(how: str, tensor: torch.Tensor, parts: int, hidden: int | None) -> list[torch.Tensor]:
    if how == "same":
        return [tensor]
    if how == "chunk":
        if tensor.shape[0] % parts:
            raise ValueError(f"a fused tensor of shape {tuple(tensor.shape)} does not split into {parts} equal parts.")
        return list(tensor.chunk(parts, dim=0))
    if how == "swap":
        first, second = tensor.chunk(2, dim=0)
        return [torch.cat([second, first], dim=0)]
    if how == "linear1":
        rest = tensor.shape[0] - 3 * hidden
        if rest <= 0:
            raise ValueError(f"single-block linear1 of shape {tuple(tensor.shape)} is too small for 3 x {hidden}.")
        return list(torch.split(tensor, [hidden, hidden, hidden, rest], dim=0))
    raise AssertionError(how)


def _unknown(family: str, keys: list[str], direction: str) -> ValueError:
    shown = ", ".join(repr(k) for k in keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
    hint = {"hunyuan": "a HunyuanVideo text-to-video transformer", "wan": "a Wan2.1 text-to-video transformer"}[family]
    return ValueError(f"`state_dict` has {len(keys)} key(s) that are not {direction} keys of {hint}: {shown}. "
                      "Is this the right `family`, or an image-to-video / other variant (not supported)?")


def original_to_diffusers(family: str, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original-format transformer state dict -> diffusers key names and tensor layout.

    Wrapper prefixes (`module.`, `model.diffusion_model.`) are removed first. Every key must
    match a rule: an unknown key is a ValueError naming it, never silently dropped.
    """
    rules = _compile(_check_family(family), reverse=False)
    state_dict = _strip_prefixes(state_dict)
    out, unknown = {}, []
    for key, tensor in state_dict.items():
        for rule in rules:
            match = rule.pattern.match(key)
            if match is None:
                continue
            index, suffix = match.groupdict().get("i"), match.group("suffix")
            targets = [t.replace("{i}", index or "") + suffix for t in rule.targets]
            hidden = _hidden_size(family, state_dict, key) if rule.how == "linear1" else None
            for target, piece in zip(targets, _split(rule.how, tensor, len(targets), hidden)):
                out[target] = piece.contiguous()
            break
        else:
            unknown.append(key)
    if unknown:
        raise _unknown(family, unknown, "original")
    return out


def diffusers_to_original(family: str, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of `original_to_diffusers` (used by the round-trip tests and by LoRA users
    who need the original names). A fused tensor with a missing part is a ValueError."""
    rules = _compile(_check_family(family), reverse=True)
    groups: dict[str, tuple[str, dict[int, torch.Tensor], int]] = {}
    unknown = []
    for key, tensor in state_dict.items():
        for rule in rules:
            match = rule.pattern.match(key)
            if match is None:
                continue
            index, suffix = match.groupdict().get("i"), match.group("suffix")
            original, part, *ours = rule.targets
            name = original.replace("{i}", index or "") + suffix
            how, parts, _ = groups.setdefault(name, (rule.how, {}, len(ours)))
            parts[int(part)] = tensor
            break
        else:
            unknown.append(key)
    if unknown:
        raise _unknown(family, unknown, "diffusers")
    out = {}
    for name, (how, parts, count) in groups.items():
        if len(parts) != count:
            missing = sorted(set(range(count)) - set(parts))
            raise ValueError(f"cannot rebuild {name!r}: part(s) {missing} of {count} are missing from `state_dict`.")
        ordered = [parts[i] for i in range(count)]
        if how == "swap":
            first, second = ordered[0].chunk(2, dim=0)
            out[name] = torch.cat([second, first], dim=0)
        else:
            out[name] = torch.cat(ordered, dim=0) if count > 1 else ordered[0]
    return out


def hunyuan_original_to_diffusers(state_dict: dict) -> dict:
    return original_to_diffusers("hunyuan", state_dict)


def hunyuan_diffusers_to_original(state_dict: dict) -> dict:
    return diffusers_to_original("hunyuan", state_dict)


def wan_original_to_diffusers(state_dict: dict) -> dict:
    return original_to_diffusers("wan", state_dict)


def wan_diffusers_to_original(state_dict: dict) -> dict:
    return diffusers_to_original("wan", state_dict)


def load_original_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an original-format checkpoint: a `.pt`/`.pth` file, a `.safetensors` file, or a
    folder of `*.safetensors` shards. Training wrappers (`{"module": ...}`) are unwrapped."""
    path = Path(path).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise ValueError(f"`checkpoint` folder {str(path)!r} holds no *.safetensors files.")
    elif path.is_file():
        files = [path]
    else:
        raise ValueError(f"`checkpoint` must be an existing file or folder but {str(path)!r} does not exist.")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state.update(load_file(str(file)))
        elif file.suffix in (".pt", ".pth", ".bin"):
            # weights_only: a checkpoint from the internet must not run code on load
            data = torch.load(str(file), map_location="cpu", weights_only=True, mmap=True)
            for wrapper in ("module", "ema", "state_dict", "model"):
                if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
                    data = data[wrapper]
                    break
            if not isinstance(data, dict):
                raise ValueError(f"`checkpoint` {str(file)!r} does not hold a state dict.")
            state.update(data)
        else:
            raise ValueError(f"`checkpoint` must be .pt, .pth, .bin or .safetensors but is {file.name!r}.")
    return state


def transformer_class(family: str):
    from diffusers import HunyuanVideoTransformer3DModel, WanTransformer3DModel

    _check_family(family)
    return {"hunyuan": HunyuanVideoTransformer3DModel, "wan": WanTransformer3DModel}[family]


def build_converted_transformer(family: str, state_dict: dict, config: dict):
    """A diffusers transformer of `config` holding the converted `state_dict` (strict: a missing
    or unexpected key is a ValueError). Built on the meta device, so memory = the checkpoint;
    the buffers no checkpoint holds (Wan's rotary tables) are computed on the CPU."""
    cls = transformer_class(family)
    converted = original_to_diffusers(family, state_dict)
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    with torch.device("meta"):
        model = cls.from_config(config)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(converted)), sorted(set(converted) - expected)
    if missing or unexpected:
        raise ValueError(f"converted checkpoint does not fit the {cls.__name__} config: missing {missing[:6]}"
                         f"{' ...' if len(missing) > 6 else ''}, unexpected {unexpected[:6]}"
                         f"{' ...' if len(unexpected) > 6 else ''}.")
    model.load_state_dict(converted, strict=True, assign=True)
    _materialise_buffers(family, model)
    return model.eval()


def _materialise_buffers(family: str, model) -> None:
    """Recompute the non-persistent buffers that `load_state_dict` cannot fill: built under the meta
    device they stay on meta, and the first forward pass fails ("Tensor on device meta")."""
    if family == "wan":
        from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed

        # the rotary tables (freqs_cos, freqs_sin), built exactly as WanTransformer3DModel.__init__ does;
        # the module has no parameters, so this allocates only the tables
        config = model.config
        model.rope = WanRotaryPosEmbed(config.attention_head_dim, config.patch_size, config.rope_max_seq_len)
    left = [name for name, buffer in model.named_buffers() if buffer.is_meta]
    if left:
        raise ValueError(f"converted {type(model).__name__} has buffers left on the meta device {left[:6]}: the "
                         f"converter does not know how to compute them for family {family!r}.")


def convert_checkpoint(family: str, checkpoint: str | Path, config: str | Path, out: str | Path) -> Path:
    """Convert an original-format checkpoint into a diffusers transformer folder at `out`.

    `config` is a diffusers transformer folder or its config.json (the teacher's
    `transformer/`: a distilled student has its teacher's architecture).
    """
    import json

    config = Path(config).expanduser()
    config_file = config / "config.json" if config.is_dir() else config
    if not config_file.is_file():
        raise ValueError(f"`config` must be a transformer folder or config.json but {str(config)!r} has none.")
    model = build_converted_transformer(family, load_original_checkpoint(checkpoint),
                                        json.loads(config_file.read_text()))
    out = Path(out)
    model.save_pretrained(out, safe_serialization=True)
    return out
