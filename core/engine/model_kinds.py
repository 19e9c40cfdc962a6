"""What kind of model a config describes (text encoder, text decoder, encoder-decoder, vision
transformer), which class and preprocessor load it, and the check that an input fits the kind.

:func:`core.engine.models.load_model` asks here; the pages ask :func:`require_kind` before they run
a model, so a text for an image model or an image for a text model is a message, not a crash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from core.policy.errors import InputError

if TYPE_CHECKING:
    from transformers import PretrainedConfig

    from core.engine.models import LoadedModel

__all__ = [
    "TEXT_KINDS",
    "VISION_TYPES",
    "Input",
    "heads_config",
    "model_class",
    "preprocessor_loader",
    "require_kind",
    "special_kind",
]

Input = Literal["text", "seq2seq", "vision"]
TEXT_KINDS = ("encoder", "decoder")
# Vision transformers whose attention AttnScope reads: [CLS] (+ distillation or register
# tokens) then the patches in row-major order. CLIP's and SigLIP's full configs load their tower.
VISION_TYPES = frozenset(
    {"vit", "deit", "dinov2", "dinov2_with_registers", "clip", "clip_vision_model", "beit"}
)


def special_kind(config: PretrainedConfig) -> str | None:
    """``"seq2seq"`` for an encoder-decoder, ``"vision"`` for a vision transformer, else None
    (a text encoder or decoder, decided by :mod:`core.engine.models`)."""
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    if config.model_type in VISION_TYPES:
        return "vision"
    return None


def heads_config(config: PretrainedConfig, kind: str) -> Any:
    """The sub-config that names layers and heads: CLIP's vision tower for a vision model, the
    text config otherwise (for encoder-decoders, the encoder's, which ``attribute_map`` exposes
    as ``num_hidden_layers`` and ``num_attention_heads``)."""
    if kind == "vision":
        return getattr(config, "vision_config", None) or config
    return config.get_text_config()


def model_class(kind: str, config: PretrainedConfig) -> Any:
    """The transformers class to load a ``kind`` model with: a seq2seq LM head for generation,
    CLIP's vision tower alone for CLIP, the bare model for other vision transformers."""
    import transformers

    if kind == "seq2seq":
        return transformers.AutoModelForSeq2SeqLM
    if kind == "vision":
        if config.model_type == "clip":
            return transformers.CLIPVisionModel
        return transformers.AutoModel
    if kind == "decoder":
        return transformers.AutoModelForCausalLM
    return transformers.AutoModel


def preprocessor_loader(kind: str) -> Any:
    """What turns an input into model inputs: the image processor for vision, else a tokenizer."""
    import transformers

    if kind == "vision":
        return transformers.AutoImageProcessor.from_pretrained
    return transformers.AutoTokenizer.from_pretrained


def require_kind(loaded: LoadedModel, wanted: Input) -> None:
    """Refuse, with a message in the reader's language, a model that cannot take this input:
    a text for an image model, an image for a text model, a translation for a model with no
    decoder over a source."""
    kind = loaded.kind
    if wanted == "text" and kind in TEXT_KINDS:
        return
    if wanted == kind:
        return
    if wanted == "vision":
        raise InputError("error.image_for_text_model", model=loaded.title)
    if kind == "vision":
        raise InputError("error.text_for_image_model", model=loaded.title)
    if wanted == "seq2seq":
        raise InputError("error.needs_seq2seq", model=loaded.title)
    raise InputError("error.needs_text_model", model=loaded.title)
