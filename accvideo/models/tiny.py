"""The bundled tiny model family: stock diffusers/transformers classes at CPU size.

Everything is built from configs, offline: a word-level tokenizer over the procedural
vocabulary, a frozen random-init `UMT5EncoderModel`, an `AutoencoderKLWan` and a
`WanTransformer3DModel`, assembled into a `WanPipeline`. The same classes load real
Wan2.1 checkpoints, so every code path above this module is the real one.

Sizes (see `TinyConfig`) are chosen so that the transformer dominates a 50-step run
(the guided teacher makes 100 transformer calls against one VAE decode) while a teacher
still trains on a 2-core CPU in well under an hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

from accvideo.world import VOCABULARY, WorldConfig

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"


@dataclass
class TinyConfig:
    """Architecture of the tiny family. Changing a field changes the bundled checkpoints."""

    world: WorldConfig = field(default_factory=WorldConfig)
    max_sequence_length: int = 8  # 5 words + </s>, padded
    # text encoder (frozen, random init: distinct words give distinct embeddings)
    text_dim: int = 32
    text_layers: int = 2
    text_heads: int = 2
    text_ff: int = 64
    # VAE: 2x2 patchify + one learned 2x downsample = spatial 4; one temporal 2x downsample.
    # Residual (Wan2.2-style) blocks add parameter-free average/duplicate shortcuts around
    # each resampling: colour passes straight through, and the VAE learns colours in a few
    # hundred CPU steps instead of thousands (measured here).
    z_dim: int = 16
    vae_base_dim: int = 32
    vae_dim_mult: tuple[int, ...] = (1, 1)
    vae_patch_size: int = 2
    vae_residual: bool = True
    # transformer
    num_heads: int = 4
    head_dim: int = 32
    num_layers: int = 4
    ffn_dim: int = 512
    freq_dim: int = 64
    shift: float = 3.0  # SD3 shift of the sampling schedule (Wan2.1 uses 3.0 at 480p)

    @property
    def scale_factor_spatial(self) -> int:
        return self.vae_patch_size * 2 ** (len(self.vae_dim_mult) - 1)

    @property
    def scale_factor_temporal(self) -> int:
        return 2


def build_tokenizer(max_length: int = 8) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over the procedural vocabulary (pad=0, eos=1, unk=2).

    Built with the `tokenizers` library so `tokenizer.json` round-trips exactly (a
    `T5Tokenizer` built from a word list does not: transformers rebuilds its normaliser).
    """
    vocab = {PAD: 0, EOS: 1, UNK: 2}
    for word in VOCABULARY:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, vocab[EOS])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, model_max_length=max_length
    )


def build_text_encoder(cfg: TinyConfig, vocab_size: int) -> UMT5EncoderModel:
    config = UMT5Config(
        vocab_size=vocab_size, d_model=cfg.text_dim, d_kv=cfg.text_dim // cfg.text_heads, d_ff=cfg.text_ff,
        num_layers=cfg.text_layers, num_heads=cfg.text_heads, relative_attention_num_buckets=8,
        relative_attention_max_distance=16, dropout_rate=0.0, feed_forward_proj="gated-gelu",
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )
    return UMT5EncoderModel(config).eval().requires_grad_(False)


def build_vae(cfg: TinyConfig) -> AutoencoderKLWan:
    p = cfg.vae_patch_size
    return AutoencoderKLWan(
        base_dim=cfg.vae_base_dim, z_dim=cfg.z_dim, dim_mult=list(cfg.vae_dim_mult), num_res_blocks=1,
        # All True: diffusers reverses this list for the decoder and its residual decoder reads
        # entry i for up-block i, so [True, False] would downsample time but never upsample it.
        attn_scales=[], temperal_downsample=[True] * len(cfg.vae_dim_mult),
        in_channels=3 * p * p, out_channels=3 * p * p, patch_size=p, is_residual=cfg.vae_residual,
        # diffusers does not derive these from dim_mult / temperal_downsample: set them.
        scale_factor_spatial=cfg.scale_factor_spatial, scale_factor_temporal=cfg.scale_factor_temporal,
        # identity normalisation until the teacher's trainer measures the real statistics
        latents_mean=[0.0] * cfg.z_dim, latents_std=[1.0] * cfg.z_dim,
    )


def build_transformer(cfg: TinyConfig) -> WanTransformer3DModel:
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=cfg.num_heads, attention_head_dim=cfg.head_dim,
        in_channels=cfg.z_dim, out_channels=cfg.z_dim, text_dim=cfg.text_dim, freq_dim=cfg.freq_dim,
        ffn_dim=cfg.ffn_dim, num_layers=cfg.num_layers, rope_max_seq_len=64,
    )


def build_scheduler(cfg: TinyConfig) -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=cfg.shift)


def build_pipeline(cfg: TinyConfig | None = None, seed: int = 0) -> WanPipeline:
    """A random-init tiny `WanPipeline` (deterministic per seed)."""
    cfg = cfg or TinyConfig()
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(cfg.max_sequence_length)
    return WanPipeline(
        tokenizer=tokenizer, text_encoder=build_text_encoder(cfg, len(tokenizer)), vae=build_vae(cfg),
        transformer=build_transformer(cfg), scheduler=build_scheduler(cfg),
    )


@dataclass(frozen=True)
class PromptCheck:
    """What a word-level tokenizer makes of a prompt. unknown: words outside its vocabulary (each
    becomes <unk>, so the model cannot follow it), in prompt order, once each; dropped: words past
    `max_words`, cut by truncation before the model sees them."""

    unknown: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    max_words: int = 0

    @property
    def ok(self) -> bool:
        return not self.unknown and not self.dropped

    def message(self, model: str = "this model") -> str:
        """One plain sentence (or two) naming the words, '' when every word is read."""
        parts = []
        if self.unknown:
            parts.append(f"Unknown to {model}: {', '.join(repr(w) for w in self.unknown)} (each becomes <unk>, so "
                         "the video will not follow it).")
        if self.dropped:
            parts.append(f"Cut off by {model}, which reads only the first {self.max_words} words: "
                         f"{', '.join(repr(w) for w in self.dropped)}.")
        return " ".join(parts)


def check_prompt_words(tokenizer, prompt: str, max_sequence_length: int | None = None) -> PromptCheck:
    """The words of `prompt` that `tokenizer` cannot read: a `PromptCheck`, empty for every tokenizer
    that is not word-level (a real model's subword tokenizer reads any text, so free text is fine).

    max_sequence_length: tokens the pipeline keeps (eos included); default the tokenizer's limit.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or type(backend.model).__name__ != "WordLevel":
        return PromptCheck()
    # the tokenizer's own normaliser and splitter, so the words are exactly the ones it looks up
    text = backend.normalizer.normalize_str(prompt) if backend.normalizer is not None else prompt
    words = [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(text)] if backend.pre_tokenizer else text.split()
    vocab = tokenizer.get_vocab()
    unknown = tuple(dict.fromkeys(w for w in words if w not in vocab))
    limit = (max_sequence_length or tokenizer.model_max_length) - 1  # one place is the eos token
    return PromptCheck(unknown=unknown, dropped=tuple(words[limit:]) if limit > 0 else (), max_words=max(limit, 0))


def check_prompt(model, prompt: str) -> PromptCheck:
    """The words of `prompt` this model (a LoadedModel) cannot read (its tokenizer is word-level: the bundled tiny
    family) or that its sequence length cuts; empty for real models, which take free text."""
    tokenizer = getattr(model.pipe, "tokenizer", None)
    if tokenizer is None:
        return PromptCheck()
    return check_prompt_words(tokenizer, prompt, model.sampling.get("max_sequence_length"))
