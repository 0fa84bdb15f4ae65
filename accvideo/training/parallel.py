"""Data parallelism for the trainer: DDP wrapping, FSDP2 sharding, and full (gathered) state dicts.

"ddp" replicates the trainables on every rank (gloo on CPU, NCCL on GPUs); "fsdp2" shards them
with `torch.distributed.fsdp.fully_shard` (one unit per transformer block, then the root), so a
rank holds 1/world of each trainable's parameters, gradients and optimizer state. Checkpoints
and exported pipelines always hold full state dicts; each rank takes its shard on resume.
"""

from __future__ import annotations

import torch
from torch import nn

# Child module lists that are FSDP2 units: Wan's `blocks`, HunyuanVideo's two block stacks.
BLOCK_LISTS = ("blocks", "transformer_blocks", "single_transformer_blocks")


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The transformer's blocks in the order they run: Wan's `blocks`; HunyuanVideo's dual-stream
    `transformer_blocks`, then its `single_transformer_blocks`."""
    model = getattr(model, "module", model)  # through a DDP wrapper
    blocks = [block for name in BLOCK_LISTS for block in (getattr(model, name, None) or [])]
    if not blocks:
        raise ValueError(f"`transformer` must have one of the block lists {list(BLOCK_LISTS)} but "
                         f"{type(model).__name__} has none.")
    return blocks


def enable_checkpointing(module: nn.Module) -> bool:
    """Gradient (activation) checkpointing of each transformer block: a block keeps only its
    inputs during forward and recomputes its activations in backward, one block at a time, so
    the activation memory of a pass drops from all blocks' to about one block's plus the block
    inputs, for about one more forward of compute. Uses the diffusers models' own switch (Wan
    and HunyuanVideo call every block through `torch.utils.checkpoint`, non-reentrant, when it
    is on and grad is enabled). Returns False, changing nothing, for a module without transformer
    blocks (AccVideo's heads, a VAE)."""
    model = getattr(module, "module", module)  # through a DDP wrapper
    has_blocks = any(getattr(model, name, None) for name in BLOCK_LISTS)
    if not has_blocks or not getattr(model, "_supports_gradient_checkpointing", False):
        return False
    model.enable_gradient_checkpointing()
    return True


def shard_fsdp2(module: nn.Module, mesh, mixed_precision: str = "no") -> nn.Module:
    """Shard `module` in place with FSDP2: each transformer block its own unit (its parameters
    are gathered just for its forward/backward), then the root for the rest."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    kwargs = {"mesh": mesh}
    root = dict(kwargs)
    if mixed_precision == "bf16":
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        # FSDP2 would cast every floating input of the root to bf16, the timestep too (999 -> 1000,
        # and every t above 256 lands on a multiple of 2 or more). The root casts nothing itself;
        # our pre-hook casts the other inputs and leaves the FP32_INPUTS alone.
        root["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32,
                                                 cast_forward_inputs=False)
        module.register_forward_pre_hook(_cast_inputs_but_timesteps, with_kwargs=True)
    for name in BLOCK_LISTS:
        for block in getattr(module, name, None) or []:
            fully_shard(block, **kwargs)
    fully_shard(module, **root)
    return module


# Inputs a transformer embeds sinusoidally in fp32 itself: kept fp32 under bf16 compute.
FP32_INPUTS = ("timestep", "guidance")


def _cast_inputs_but_timesteps(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Floating inputs, also inside lists and dicts (the heads take a list of features), to bf16:
    the root's weights are gathered in bf16. The keyword inputs named in FP32_INPUTS stay as they are."""
    def cast(x):
        if isinstance(x, torch.Tensor):
            return x.to(torch.bfloat16) if x.is_floating_point() else x
        if isinstance(x, (list, tuple)):
            return type(x)(cast(v) for v in x)
        if isinstance(x, dict):
            return {k: cast(v) for k, v in x.items()}
        return x

    return (tuple(cast(a) for a in args),
            {k: v if k in FP32_INPUTS else cast(v) for k, v in kwargs.items()})


def full_state_dict(module: nn.Module, sharded: bool) -> dict:
    """The whole state dict on rank 0 (empty elsewhere under FSDP2); collective when sharded."""
    if not sharded:
        return module.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


class FullState:
    """Stands in for a sharded module where a method's `export` reads `state_dict()`."""

    def __init__(self, state: dict):
        self._state = state

    def state_dict(self) -> dict:
        return self._state


def phase_model(modules: dict, names: list[str]) -> nn.Module:
    """The module (or ModuleList of modules) one optimiser trains, as FSDP2's state-dict helpers want it."""
    return modules[names[0]] if len(names) == 1 else nn.ModuleList([modules[n] for n in names])


def optimizer_states(optimizers: dict, modules: dict, phase_modules, sharded: bool) -> dict:
    """Full optimizer state dicts per phase; `phase_modules(phase)` names the modules a phase trains."""
    if not sharded:
        return {k: o.state_dict() for k, o in optimizers.items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return {phase: get_optimizer_state_dict(phase_model(modules, phase_modules(phase)), opt, options=options)
            for phase, opt in optimizers.items()}


def load_states(state: dict, modules: dict, optimizers: dict, phase_modules, sharded: bool) -> None:
    """Load a checkpoint's full module and optimizer states; under FSDP2 each rank keeps its shard."""
    if not sharded:
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name])
        for phase, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][phase])
        return
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    # every rank read the same full checkpoint; each keeps its own shard
    options = StateDictOptions(full_state_dict=True)
    for name, module in modules.items():
        set_model_state_dict(module, state["modules"][name], options=options)
    for phase, opt in optimizers.items():
        set_optimizer_state_dict(phase_model(modules, phase_modules(phase)), opt,
                                 optim_state_dict=state["optimizers"][phase], options=options)
