"""Memory options for loading a pipeline on a GPU: precision, CPU offload, VAE tiling.

What each mode needs for the real models is in docs/GPU.md (estimates from parameter
counts, with the arithmetic). Every option is validated on any machine, so a bad value is a
clear error on a laptop too; offload needs `accelerate` and a CUDA device and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
OFFLOAD = ("none", "model", "sequential")


@dataclass(frozen=True)
class MemoryOptions:
    """dtype: weights and activations of the transformer and text encoders ("fp32" keeps the
    checkpoint's own dtype, the CPU default); device: where the pipeline runs (None = cpu);
    offload: "model" moves whole components to the GPU one at a time (diffusers'
    `enable_model_cpu_offload`), "sequential" layer by layer (`enable_sequential_cpu_offload`:
    lowest memory, several times slower); vae_tiling: decode in overlapping spatial tiles."""

    dtype: str = "fp32"
    device: str | None = None
    offload: str = "none"
    vae_tiling: bool = False

    def validate(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"`dtype` must be one of {sorted(DTYPES)} but is {self.dtype!r}.")
        if self.offload not in OFFLOAD:
            raise ValueError(f"`offload` must be one of {list(OFFLOAD)} but is {self.offload!r}.")
        if not isinstance(self.vae_tiling, bool):
            raise ValueError(f"`vae_tiling` must be True or False but is {self.vae_tiling!r}.")
        if self.device is not None:
            try:
                device = torch.device(self.device)
            except (RuntimeError, TypeError):
                raise ValueError(f"`device` must be 'cpu', 'cuda' or 'cuda:N' but is {self.device!r}.") from None
            if device.type == "cuda" and not torch.cuda.is_available():
                raise ValueError(f"`device` is {self.device!r} but this machine has no CUDA GPU (torch "
                                 f"{torch.__version__}); use device 'cpu'.")
        if self.offload != "none":
            if not torch.cuda.is_available():
                raise ValueError(f"`offload` {self.offload!r} moves weights between the CPU and a CUDA GPU, but this "
                                 "machine has no CUDA GPU; use offload 'none'.")
            if self.device is not None and torch.device(self.device).type != "cuda":
                raise ValueError(f"`offload` {self.offload!r} needs a CUDA `device` but `device` is {self.device!r}.")
            try:
                import accelerate  # noqa: F401
            except ImportError:
                raise ValueError(f"`offload` {self.offload!r} needs the `accelerate` package "
                                 "(pip install -r requirements.txt).") from None

    @property
    def torch_dtype(self) -> torch.dtype | None:
        return None if self.dtype == "fp32" else DTYPES[self.dtype]


def apply_memory_options(pipe, options: MemoryOptions) -> None:
    """Place `pipe` as `options` ask (call once, right after loading)."""
    if options.torch_dtype is not None and type(pipe.vae).__name__ == "AutoencoderKLWan":
        # Wan's VAE is documented to decode in fp32 (diffusers' Wan examples load it so);
        # it is small (about 0.13 B parameters), so this costs little memory.
        pipe.vae.to(torch.float32)
    if options.vae_tiling:
        if not hasattr(pipe.vae, "enable_tiling"):
            raise ValueError(f"`vae_tiling` is not supported by {type(pipe.vae).__name__}.")
        pipe.vae.enable_tiling()
    gpu = options.device or "cuda"
    if options.offload == "model":
        pipe.enable_model_cpu_offload(device=gpu)
    elif options.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=gpu)
    elif options.device is not None:
        pipe.to(options.device)


def execution_device(pipe) -> torch.device:
    """The device the pipeline computes on (a GPU even while offloaded weights sit on the CPU)."""
    return getattr(pipe, "_execution_device", None) or torch.device("cpu")
