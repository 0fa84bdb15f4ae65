"""Export a distilled student as a LoRA on its teacher: per-Linear `W_s - W_t`, truncated SVD.

For every `nn.Linear` of the transformer whose weights differ, the delta `dW = W_s - W_t`
(out x in) is factored as `dW ~= B A` with `B = U_r sqrt(S_r)` (out x r) and
`A = sqrt(S_r) V_r^T` (r x in), the best rank-r approximation (Eckart-Young). The bias
delta rides along as peft's `lora_B.bias`. Saved with the pipeline class's own
`save_lora_weights`, so plain diffusers loads it: `pipe.load_lora_weights(folder)`.

What a LoRA cannot hold: parameters outside Linear layers (patch-embedding conv, norm
scales, Wan's `scale_shift_table`). Their student values go to `non_linear.safetensors`;
`apply_lora` loads both. `export_lora` reports how much of the delta each part carries and,
with `check=True`, how far the LoRA'd teacher's samples are from the student's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

LORA_FILE = "pytorch_lora_weights.safetensors"
REST_FILE = "non_linear.safetensors"
REPORT_FILE = "lora_report.json"


def _check_rank(rank) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"`rank` must be an integer >= 1 but is {rank!r}.")


@torch.no_grad()
def lora_from_delta(teacher: nn.Module, student: nn.Module, rank: int) -> tuple[dict, dict, dict]:
    """LoRA factors of `student - teacher` (two transformers of one class and config).

    Returns (lora, rest, stats): `lora` maps `<module>.lora_A.weight` (r, in),
    `<module>.lora_B.weight` (out, r) and `<module>.lora_B.bias` (out,) to float32 tensors;
    `rest` maps the names of non-Linear parameters that differ to the student's values;
    `stats` gives the relative Frobenius error of the rank-r fit over all Linear deltas and
    the share of the total delta (squared norm) that lies outside Linear layers.
    """
    _check_rank(rank)
    def arch(model: nn.Module) -> tuple:
        return type(model).__name__, {k: v for k, v in dict(model.config).items() if not k.startswith("_")}

    if arch(teacher) != arch(student):
        raise ValueError(f"`student` and `teacher` must be the same architecture but are {arch(student)} and "
                         f"{arch(teacher)}; a LoRA only bridges weights of one shape.")
    lora, rest = {}, {}
    delta_sq = residual_sq = rest_sq = 0.0
    linear_params = set()
    ranks = []
    for name, module in teacher.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        other = student.get_submodule(name)
        linear_params.update({f"{name}.weight", f"{name}.bias"})
        d_w = other.weight.float() - module.weight.float()
        d_b = (other.bias.float() - module.bias.float()) if module.bias is not None else None
        if not d_w.any() and (d_b is None or not d_b.any()):
            continue
        u, s, vh = torch.linalg.svd(d_w, full_matrices=False)
        r = min(rank, s.numel())
        root = s[:r].sqrt()
        lora[f"{name}.lora_A.weight"] = (root[:, None] * vh[:r]).contiguous()
        lora[f"{name}.lora_B.weight"] = (u[:, :r] * root[None, :]).contiguous()
        if d_b is not None:
            lora[f"{name}.lora_B.bias"] = d_b.contiguous()
        delta_sq += float((s**2).sum())
        residual_sq += float((s[r:] ** 2).sum())
        ranks.append(r)
    student_state = student.state_dict()
    for key, value in teacher.state_dict().items():
        if key in linear_params:
            continue
        diff = student_state[key].float() - value.float()
        if diff.any():
            rest[key] = student_state[key].clone()
            rest_sq += float((diff**2).sum())
    total = delta_sq + rest_sq
    stats = {"rank": rank, "lora_modules": len(ranks), "max_module_rank": max(ranks, default=0),
             "lora_parameters": sum(v.numel() for v in lora.values()),
             "linear_delta_relative_error": math.sqrt(residual_sq / delta_sq) if delta_sq else 0.0,
             "non_linear_parameters": len(rest), "non_linear_delta_share": rest_sq / total if total else 0.0}
    return lora, rest, stats


def _load_transformer(folder: Path, dtype: torch.dtype | None):
    import diffusers

    config = json.loads((folder / "transformer" / "config.json").read_text())
    cls = getattr(diffusers, config["_class_name"])
    return cls.from_pretrained(folder / "transformer", torch_dtype=dtype).eval()


def apply_lora(pipe, folder: str | Path, with_rest: bool = True, adapter_name: str = "accvideo") -> None:
    """Load an exported LoRA onto a teacher pipeline (in place); with `with_rest`, also set the
    student's non-Linear parameters, which a LoRA cannot express."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / LORA_FILE).is_file():
        raise ValueError(f"`folder` {str(folder)!r} holds no {LORA_FILE}; export one with `accvideo lora-export`.")
    pipe.load_lora_weights(str(folder), weight_name=LORA_FILE, adapter_name=adapter_name)
    if with_rest and (folder / REST_FILE).is_file():
        rest = load_file(str(folder / REST_FILE))
        params = dict(pipe.transformer.named_parameters()) | dict(pipe.transformer.named_buffers())
        unknown = sorted(set(rest) - set(params))
        if unknown:
            raise ValueError(f"{REST_FILE} names parameters this transformer lacks: {unknown[:5]}.")
        with torch.no_grad():
            for key, value in rest.items():
                params[key].copy_(value.to(params[key].dtype))


def export_lora(student: str | Path, teacher: str | Path, out: str | Path, rank: int = 64,
                dtype: str = "fp32") -> dict:
    """Write `out/pytorch_lora_weights.safetensors` (+ `non_linear.safetensors`, `lora_report.json`).

    The check that the LoRA reproduces the student's videos needs generation, a layer above
    this one: `accvideo.eval.lora.export_checked_lora` runs both.
    """
    from diffusers import DiffusionPipeline
    from safetensors.torch import save_file

    from accvideo.models.memory import DTYPES
    from accvideo.models.registry import resolve_model

    _check_rank(rank)
    if dtype not in DTYPES:
        raise ValueError(f"`dtype` must be one of {sorted(DTYPES)} but is {dtype!r}.")
    torch_dtype = None if dtype == "fp32" else DTYPES[dtype]
    student_dir, teacher_dir = resolve_model(student), resolve_model(teacher)
    lora, rest, stats = lora_from_delta(_load_transformer(teacher_dir, torch_dtype),
                                        _load_transformer(student_dir, torch_dtype), rank)
    if not lora:
        raise ValueError("`student` and `teacher` have identical Linear weights: there is nothing to export.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pipe_cls = DiffusionPipeline.load_config(str(teacher_dir))["_class_name"]
    import diffusers

    getattr(diffusers, pipe_cls).save_lora_weights(str(out), transformer_lora_layers=lora, weight_name=LORA_FILE)
    if rest:
        save_file({k: v.contiguous() for k, v in rest.items()}, str(out / REST_FILE))
    report = {"student": str(student_dir), "teacher": str(teacher_dir), **stats}
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2))
    return report
