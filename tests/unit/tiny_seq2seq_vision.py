"""Tiny random encoder-decoder (T5, BART, Marian) and vision (ViT, DeiT, DINOv2 with registers,
CLIP's vision tower) models built offline from configs, wrapped as
:class:`core.engine.models.LoadedModel`, and saved with ``save_pretrained`` for the loader."""

from __future__ import annotations

from pathlib import Path

import torch

from core.engine.models import LoadedModel
from tests.unit.tiny_models import WORDS

SPECIALS = ["<pad>", "</s>", "<unk>", "<s>"]
PAD, EOS, UNK, BOS = range(4)
VOCAB_SIZE = len(SPECIALS) + len(WORDS)
IMAGE = 32  # pixels per side
PATCH = 8  # pixels per patch side: a 4 x 4 grid
FORCED = len(SPECIALS) + WORDS.index("hello")  # M2M's stand-in for a language token


def seq2seq_tokenizer(*, bos: bool):
    """A word-level fast tokenizer that ends every text (source or target) with ``</s>``
    (BART: ``<s> … </s>``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    single = "<s> $A </s>" if bos else "$A </s>"
    backend.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[("<s>", BOS), ("</s>", EOS)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<pad>",
        eos_token="</s>",
        bos_token="<s>",
    )


def _randomised(model, seed: int):
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:  # Marian's sinusoidal positions are fixed, never saved
                parameter.normal_(0.0, 0.3)
    return model.eval()


def _wrap(name: str, model, preprocessor, kind: str) -> LoadedModel:
    from core.engine.model_kinds import heads_config

    config = heads_config(model.config, kind)
    return LoadedModel(
        name=name,
        source=name,
        model=model,
        tokenizer=preprocessor,
        kind=kind,
        n_layers=config.num_hidden_layers,
        n_heads=config.num_attention_heads,
        n_kv_heads=config.num_attention_heads,
        max_tokens=64,
        device=torch.device("cpu"),
        load_seconds=0.0,
    )


def tiny_t5(seed: int = 0) -> LoadedModel:
    """T5: 2 encoder and 2 decoder layers x 4 heads, d_model 16."""
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=VOCAB_SIZE,
        d_model=16,
        d_kv=4,
        d_ff=32,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        pad_token_id=PAD,
        eos_token_id=EOS,
        decoder_start_token_id=PAD,
        attn_implementation="eager",
    )
    model = _randomised(T5ForConditionalGeneration(config), seed)
    return _wrap("tiny-t5", model, seq2seq_tokenizer(bos=False), "seq2seq")


def tiny_bart(seed: int = 0) -> LoadedModel:
    """BART: 2 + 2 layers x 4 heads, d_model 16; the decoder starts from ``</s>``."""
    from transformers import BartConfig, BartForConditionalGeneration

    config = BartConfig(
        vocab_size=VOCAB_SIZE,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        decoder_start_token_id=EOS,
        forced_eos_token_id=None,
        attn_implementation="eager",
    )
    model = _randomised(BartForConditionalGeneration(config), seed)
    return _wrap("tiny-bart", model, seq2seq_tokenizer(bos=True), "seq2seq")


def tiny_marian(seed: int = 0) -> LoadedModel:
    """Marian (OPUS-MT): 2 + 2 layers x 2 heads, d_model 16; starts from and never writes pad."""
    from transformers import MarianConfig, MarianMTModel

    config = MarianConfig(
        vocab_size=VOCAB_SIZE,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=PAD,
        eos_token_id=EOS,
        decoder_start_token_id=PAD,
        forced_eos_token_id=None,
        attn_implementation="eager",
    )
    model = _randomised(MarianMTModel(config), seed)
    model.generation_config.bad_words_ids = [[PAD]]
    return _wrap("tiny-marian", model, seq2seq_tokenizer(bos=False), "seq2seq")


def tiny_m2m100(seed: int = 0) -> LoadedModel:
    """M2M100 (the NLLB architecture): 2 + 2 layers x 2 heads; every target starts with a forced
    language token (``forced_bos_token_id``, here "hello")."""
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    config = M2M100Config(
        vocab_size=VOCAB_SIZE,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        decoder_start_token_id=EOS,
        attn_implementation="eager",
    )
    model = _randomised(M2M100ForConditionalGeneration(config), seed)
    model.generation_config.forced_bos_token_id = FORCED
    return _wrap("tiny-m2m100", model, seq2seq_tokenizer(bos=False), "seq2seq")


def _vision(name: str, config, model_class, processor, seed: int) -> LoadedModel:
    model = _randomised(model_class(config), seed)
    return _wrap(name, model, processor, "vision")


def _vit_processor():
    from transformers import ViTImageProcessor

    return ViTImageProcessor(size={"height": IMAGE, "width": IMAGE})


VISION_SIZES = {
    "image_size": IMAGE,
    "patch_size": PATCH,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "attn_implementation": "eager",
}


def tiny_vit(seed: int = 0) -> LoadedModel:
    """ViT: 32 x 32 images, 8-pixel patches (4 x 4 grid), [CLS] + 16 patches, 2 x 2 heads."""
    from transformers import ViTConfig, ViTModel

    return _vision("tiny-vit", ViTConfig(**VISION_SIZES), ViTModel, _vit_processor(), seed)


def tiny_deit(seed: int = 0) -> LoadedModel:
    """DeiT: as ViT, with a distillation token: [CLS] [DIST] + 16 patches."""
    from transformers import DeiTConfig, DeiTModel

    return _vision("tiny-deit", DeiTConfig(**VISION_SIZES), DeiTModel, _vit_processor(), seed)


def tiny_dinov2_registers(seed: int = 0) -> LoadedModel:
    """DINOv2 with 2 registers: [CLS] [REG 1] [REG 2] + 16 patches."""
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    config = Dinov2WithRegistersConfig(**VISION_SIZES, num_register_tokens=2)
    model_class = Dinov2WithRegistersModel
    return _vision("tiny-dinov2-reg", config, model_class, _vit_processor(), seed)


def tiny_clip_vision(seed: int = 0) -> LoadedModel:
    """CLIP's vision tower: [CLS] + 16 patches, CLIP's own image processor (resize, crop)."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE}
    )
    config = CLIPVisionConfig(**VISION_SIZES)
    return _vision("tiny-clip-vision", config, CLIPVisionModel, processor, seed)


SEQ2SEQ = {"t5": tiny_t5, "bart": tiny_bart, "marian": tiny_marian, "m2m100": tiny_m2m100}
VISION = {
    "vit": tiny_vit,
    "deit": tiny_deit,
    "dinov2-registers": tiny_dinov2_registers,
    "clip-vision": tiny_clip_vision,
}


def save(loaded: LoadedModel, folder: Path) -> Path:
    """``loaded`` written with ``save_pretrained`` (weights, config, tokenizer or processor)."""
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    return folder
