"""A tiny random-init `HunyuanVideoPipeline`, built offline from configs, for tests only.

The real classes at toy size: `HunyuanVideoTransformer3DModel` (guidance-embedded, like the
released model), `AutoencoderKLHunyuanVideo` with the real compression (4 in time, 8 in
space), a `LlamaModel` and a `CLIPTextModel` with word-level tokenizers. It exercises every
HunyuanVideo code path (two encoders, attention mask, pooled projection, embedded guidance,
`scaling_factor` latents, the 4k + 1 / multiple-of-16 rules) in well under a second.
Prompts use `PLAIN_PROMPT_TEMPLATE`: the real Llama chat template's `crop_start` would cut
the whole tiny prompt away.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLHunyuanVideo,
    FlowMatchEulerDiscreteScheduler,
    HunyuanVideoPipeline,
    HunyuanVideoTransformer3DModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

from accvideo.models.families import PLAIN_PROMPT_TEMPLATE
from accvideo.models.registry import SAMPLING_FILE
from accvideo.models.tiny import build_tokenizer

TRANSFORMER = dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1,
                   num_single_layers=1, num_refiner_layers=1, patch_size=2, patch_size_t=1, text_embed_dim=16,
                   pooled_projection_dim=8, rope_axes_dim=(2, 2, 4), guidance_embeds=True)

# sampling defaults of the tiny model: the AccVideo student's settings at toy size
SAMPLING = {"role": "teacher", "num_steps": 4, "shift": 7.0, "guidance_scale": 1.0, "embedded_guidance_scale": 6.0,
            "num_frames": 9, "height": 32, "width": 32, "max_sequence_length": 8,
            "prompt_template": PLAIN_PROMPT_TEMPLATE}


def build_tiny_hunyuan(seed: int = 0) -> HunyuanVideoPipeline:
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(16)
    tokenizer_2 = build_tokenizer(77)
    vocab = len(tokenizer)
    text_encoder = LlamaModel(LlamaConfig(
        vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0, bos_token_id=1, eos_token_id=1))
    text_encoder_2 = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=77, projection_dim=8, pad_token_id=0, bos_token_id=1, eos_token_id=1))
    vae = AutoencoderKLHunyuanVideo(
        latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4,
        spatial_compression_ratio=8, temporal_compression_ratio=4, mid_block_add_attention=False)
    pipe = HunyuanVideoPipeline(
        text_encoder=text_encoder.eval(), tokenizer=tokenizer,
        transformer=HunyuanVideoTransformer3DModel(**TRANSFORMER),
        vae=vae.eval(), scheduler=FlowMatchEulerDiscreteScheduler(shift=SAMPLING["shift"]),
        text_encoder_2=text_encoder_2.eval(), tokenizer_2=tokenizer_2)
    return pipe


def save_tiny_hunyuan(folder: Path, seed: int = 0) -> Path:
    """`build_tiny_hunyuan(seed)` saved in `folder` with its sampling defaults (`SAMPLING`): the
    folder every test of a real-layout HunyuanVideo teacher loads."""
    build_tiny_hunyuan(seed=seed).save_pretrained(folder)
    (folder / SAMPLING_FILE).write_text(json.dumps(SAMPLING))
    return folder


def save_original_student(models: Path, seed: int = 1) -> torch.nn.Module:
    """A "distilled" tiny HunyuanVideo transformer (`build_tiny_hunyuan(seed)`'s, other weights
    than the teacher's) saved in the released AccVideo student's original format where
    `hf download aejion/AccVideo ...` puts it under the models folder `models`; returns it.
    `python -m accvideo convert --model accvideo-hunyuan-5step` (or `real.prepare_student`) then
    makes the pipeline folder, once the teacher is in `models / "hunyuanvideo"`."""
    from accvideo.models.convert import hunyuan_diffusers_to_original

    student = build_tiny_hunyuan(seed=seed).transformer
    ckpt = models / "accvideo-hunyuan-5step-original" / "accvideo-t2v-5-steps" / "diffusion_pytorch_model.pt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"module": hunyuan_diffusers_to_original(student.state_dict())}, ckpt)
    return student
