"""Activation memory of a transformer architecture, measured on the CPU, for the memory plan.

What is measured. `LiveBytes` runs every op under a torch dispatch mode and keeps the size of
every live tensor storage made since it started; its "current" and "peak" are exact byte counts
of what the program holds in tensors, independent of the allocator (no RSS noise, no Python
heap, no allocator caching or fragmentation, which the plan adds as a margin). CPU kernels
differ from CUDA ones only in scratch space inside a kernel; what autograd saves for backward
(the bulk of training memory) is the same tensors of the same dtypes on both, with SDPA saving
O(tokens) (output and logsumexp) on both. So a CPU measurement of a few blocks at a few hundred
tokens, scaled linearly in tokens and blocks, gives the GPU activation bytes;
`tests/test_plan.py` checks the composed estimate against a whole measured training step.

How. The architecture is built with 1 block of each kind (Wan: `blocks`; HunyuanVideo: the
dual- and single-stream stacks), then with 2 of one kind, each at two token counts, weights
allocated with `to_empty` and filled with small random values (values do not change sizes).
From the differences: bytes per block per token and per block, and the rest of the model per
token and per call, for
- `train`: a trainable transformer in the compute dtype (FSDP2 gathers bf16 parameters),
  forward with grad (saved tensors), and the extra peak of its backward;
- `train_ckpt`: the same with gradient checkpointing (block inputs saved, one block recomputed);
- `frozen` / `frozen_ckpt`: frozen weights, gradient into the input only (AccVideo's teacher);
- `inference`: no grad, the peak of one call above the weights and input (SynVid, GPD targets).
Results ship in `plan_calibration.json` beside this file for the preset architectures
(`scripts/plan_tables.py --recalibrate` remakes it); others are measured on first use and kept
in the user's cache; `python -m accvideo plan ... --recalibrate` measures again.
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from pathlib import Path

import torch

CACHE = Path(__file__).with_name("plan_calibration.json")
MODES = ("train", "train_ckpt", "frozen", "frozen_ckpt", "inference")
# Blocks per kind, as config keys of each transformer class (`parallel.BLOCK_LISTS` order).
BLOCK_KEYS = {"WanTransformer3DModel": ("num_layers",),
              "HunyuanVideoTransformer3DModel": ("num_layers", "num_single_layers")}
TOKENS = (64, 128)  # latent tokens of the two calibration calls (after patching)


def _key(class_name: str, config: dict, dtype: str, text_len: int) -> str:
    shape = {k: v for k, v in sorted(config.items()) if k not in BLOCK_KEYS.get(class_name, ()) and
             not k.startswith("_")}
    blob = json.dumps([class_name, shape, dtype, text_len, torch.__version__.split("+")[0]], sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build(class_name: str, config: dict, blocks: dict[str, int] | None = None) -> torch.nn.Module:
    """The transformer of `config` with the given block counts, on the meta device (no memory)."""
    import diffusers

    cls = getattr(diffusers, class_name)
    with torch.device("meta"):
        return cls.from_config({**config, **(blocks or {})})


def _inputs(model, class_name: str, tokens: int, text_len: int, dtype: torch.dtype, grad_input: bool):
    """A latent of `tokens` tokens (1 frame, 8 x tokens/8 patches) and matching text inputs."""
    cfg = model.config
    pt, ph, pw = (cfg.patch_size if isinstance(cfg.patch_size, (tuple, list))
                  else (cfg.patch_size_t, cfg.patch_size, cfg.patch_size))
    x = torch.randn(1, cfg.in_channels, pt, 8 * ph, tokens // 8 * pw, dtype=dtype, requires_grad=grad_input)
    kwargs = {"timestep": torch.tensor([500.0]), "return_dict": False}
    if class_name == "WanTransformer3DModel":
        kwargs["encoder_hidden_states"] = torch.randn(1, text_len, cfg.text_dim, dtype=dtype)
    else:
        kwargs.update(encoder_hidden_states=torch.randn(1, text_len, cfg.text_embed_dim, dtype=dtype),
                      encoder_attention_mask=torch.ones(1, text_len, dtype=dtype),
                      pooled_projections=torch.randn(1, cfg.pooled_projection_dim, dtype=dtype))
        if cfg.guidance_embeds:
            kwargs["guidance"] = torch.tensor([6000.0])
    return x, kwargs


class LiveBytes:
    """Bytes of tensor storages created inside the `with` block and still alive: `current`, and
    the `peak` of that. Every op's outputs pass through a dispatch mode, which records each new
    storage once with a finaliser that subtracts it when the storage is freed; inputs and weights
    made before the block are not counted. (torch's `MemTracker` does the same per module, but
    needs every parameter to require grad, which a frozen teacher does not.)"""

    def __init__(self):
        from torch.utils.weak import WeakIdKeyDictionary

        self.current = self.peak = 0
        self._seen = WeakIdKeyDictionary()

    def _free(self, nbytes: int) -> None:
        self.current -= nbytes

    def _add(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        if storage in self._seen:
            return
        nbytes = storage.nbytes()
        self._seen[storage] = nbytes
        self.current += nbytes
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, nbytes)

    def __enter__(self) -> LiveBytes:
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_leaves

        tracker = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                # storages made before the block (weights, inputs) are known at zero bytes, so
                # a view of a weight returned by an op is not counted as new memory
                for t in tree_leaves((args, kwargs)):
                    if isinstance(t, torch.Tensor) and t.device.type != "meta":
                        tracker._seen.setdefault(t.untyped_storage(), 0)
                out = func(*args, **(kwargs or {}))
                for t in tree_leaves(out):
                    if isinstance(t, torch.Tensor) and t.device.type != "meta":
                        tracker._add(t)
                return out

        self._mode = Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)

    def reset_peak(self) -> None:
        self.peak = self.current


def _one_call(class_name: str, config: dict, blocks: dict, tokens: int, text_len: int, dtype: torch.dtype,
              mode: str) -> tuple[int, int]:
    """(bytes held after the forward, extra peak bytes above that during backward), weights,
    inputs and parameter gradients excluded; for `inference`, (0, peak of the call)."""
    model = build(class_name, config, blocks).to_empty(device="cpu").to(dtype)
    with torch.no_grad():
        for p in model.parameters():  # small finite values: only sizes matter, but no NaN paths
            p.normal_(0, 0.02)
    trainable = mode.startswith("train")
    model.requires_grad_(trainable)
    if mode.endswith("ckpt"):
        model.enable_gradient_checkpointing()
    x, kwargs = _inputs(model, class_name, tokens, text_len, dtype, grad_input=mode.startswith("frozen"))
    with LiveBytes() as live:
        if mode == "inference":
            with torch.no_grad():
                model(x, **kwargs)
            return 0, live.peak
        out = model(x, **kwargs)[0]
        held = live.current
        live.reset_peak()
        out.float().square().mean().backward()
        peak = live.peak
    grads = sum(p.numel() * p.element_size() for p in model.parameters()) if trainable else 0
    # the plan counts parameter gradients on their own; the rest of the backward peak is scratch
    return held, max(0, peak - held - grads)


def measure(class_name: str, config: dict, dtype: str, text_len: int) -> dict:
    """Per mode: {"block_tok", "block", "rest_tok", "rest", "backward_tok", "backward"} in bytes
    (per block per token, per block, per call per token outside the blocks, per call), for each
    block kind ("block_tok:<kind>" when the class has several kinds)."""
    torch_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    kinds = BLOCK_KEYS[class_name]
    one = dict.fromkeys(kinds, 1)
    result = {}
    for mode in MODES:
        at = {n: _one_call(class_name, config, one, n, text_len, torch_dtype, mode) for n in TOKENS}
        n1, n2 = TOKENS
        row = {}
        per_tok_all = (at[n2][0] - at[n1][0]) / (n2 - n1)  # the whole one-block-each model
        blocks_tok = blocks_const = 0.0
        for kind in kinds:
            two = {**one, kind: 2}
            more = {n: _one_call(class_name, config, two, n, text_len, torch_dtype, mode) for n in TOKENS}
            d1, d2 = more[n1][0] - at[n1][0], more[n2][0] - at[n2][0]
            row[f"block_tok:{kind}"] = (d2 - d1) / (n2 - n1)
            row[f"block:{kind}"] = d1 - row[f"block_tok:{kind}"] * n1
            blocks_tok += row[f"block_tok:{kind}"]
            blocks_const += row[f"block:{kind}"]
        row["rest_tok"] = per_tok_all - blocks_tok
        row["rest"] = at[n1][0] - per_tok_all * n1 - blocks_const
        peak_key = 1  # the backward's (or the inference call's) extra peak, linear in tokens
        row["peak_tok"] = (at[n2][peak_key] - at[n1][peak_key]) / (n2 - n1)
        row["peak"] = at[n1][peak_key] - row["peak_tok"] * n1
        result[mode] = {k: round(v) for k, v in row.items()}
    return result


def user_cache() -> Path:
    """Where measurements of architectures missing from the shipped table are kept."""
    return Path(os.environ.get("ACCVIDEO_CACHE", Path.home() / ".cache" / "accvideo")) / "plan_calibration.json"


def calibration(class_name: str, config: dict, dtype: str, text_len: int, recalibrate: bool = False,
                store: Path | None = None) -> dict:
    """The measurement for this architecture, compute dtype and text length: from the shipped
    table (`plan_calibration.json`, made by `scripts/plan_tables.py`), else from `store`
    (default `user_cache()`), else measured now (a few seconds to a minute) and kept in `store`.
    `recalibrate` measures again."""
    key = _key(class_name, config, dtype, text_len)
    store = store or user_cache()
    shipped = json.loads(CACHE.read_text()) if CACHE.is_file() else {}
    kept = json.loads(store.read_text()) if store.is_file() else {}
    if not recalibrate and key in shipped:
        return shipped[key]
    if recalibrate or key not in kept:
        kept[key] = {"class": class_name, "dtype": dtype, "text_len": text_len,
                     "width": _width(config), **measure(class_name, config, dtype, text_len)}
        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_text(json.dumps(kept, indent=1, sort_keys=True) + "\n")
    return kept[key]


def _width(config: dict) -> int:
    return config["num_attention_heads"] * config["attention_head_dim"]
