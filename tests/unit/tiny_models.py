"""Tiny random models built offline from configs, with a word-level tokenizer, wrapped as
:class:`core.engine.models.LoadedModel`: small enough to run hooks and ablations in milliseconds."""

from __future__ import annotations

import torch

from core.engine.models import LoadedModel

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "dog",
    "slept",
    "a",
    "and",
    "it",
    "was",
    ",",
    ".",
    "!",
    "?",
    "hello",
    "world",
]


def tiny_tokenizer(*, encoder: bool):
    """A fast word-level tokenizer: ``[PAD] [UNK] [CLS] [SEP]`` then :data:`WORDS`; encoders wrap
    the text in ``[CLS] … [SEP]`` (pairs: ``[CLS] A [SEP] B [SEP]``), decoders add nothing."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocab = {token: i for i, token in enumerate(specials + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    if encoder:
        backend.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )


VOCAB_SIZE = 4 + len(WORDS)


def _wrap(name: str, model, *, kind: str, n_kv_heads: int | None = None) -> LoadedModel:
    """Eval mode, every parameter (biases included, which transformers initialises to 0) drawn
    from N(0, 0.3^2) so that biases and norms matter, wrapped as a LoadedModel."""
    config = model.config
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    model.eval()
    return LoadedModel(
        name=name,
        source=name,
        model=model,
        tokenizer=tiny_tokenizer(encoder=kind == "encoder"),
        kind=kind,
        n_layers=config.num_hidden_layers,
        n_heads=config.num_attention_heads,
        n_kv_heads=n_kv_heads or config.num_attention_heads,
        max_tokens=64,
        device=torch.device("cpu"),
        load_seconds=0.0,
    )


def tiny_bert(seed: int = 0) -> LoadedModel:
    """BERT encoder: 2 layers x 2 heads, hidden 16 (head_dim 8), biases everywhere."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        attn_implementation="eager",
    )
    return _wrap("tiny-bert", BertModel(config), kind="encoder")


def tiny_roberta(seed: int = 0) -> LoadedModel:
    """RoBERTa encoder: 2 layers x 4 heads, hidden 16."""
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=32,
        max_position_embeddings=80,
        pad_token_id=0,
        attn_implementation="eager",
    )
    return _wrap("tiny-roberta", RobertaModel(config), kind="encoder")


def _llama_like(name: str, config_class, model_class, seed: int, **extra) -> LoadedModel:
    torch.manual_seed(seed)
    config = config_class(
        vocab_size=VOCAB_SIZE,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        tie_word_embeddings=True,
        attn_implementation="eager",
        **extra,
    )
    return _wrap(name, model_class(config), kind="decoder", n_kv_heads=2)


def tiny_llama(seed: int = 0) -> LoadedModel:
    """Llama decoder: 2 layers x 4 query heads sharing 2 KV heads (GQA), head_dim 4, tied
    embeddings, no biases: SmolLM2 in miniature."""
    from transformers import LlamaConfig, LlamaForCausalLM

    return _llama_like("tiny-llama", LlamaConfig, LlamaForCausalLM, seed)


def tiny_qwen2(seed: int = 0) -> LoadedModel:
    """Qwen2 decoder: Llama's modules with a bias on the value projection (b_V), GQA 4 / 2."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    return _llama_like("tiny-qwen2", Qwen2Config, Qwen2ForCausalLM, seed)


def tiny_mistral(seed: int = 0) -> LoadedModel:
    """Mistral decoder: Llama's module layout, GQA 4 / 2."""
    from transformers import MistralConfig, MistralForCausalLM

    return _llama_like("tiny-mistral", MistralConfig, MistralForCausalLM, seed)


def tiny_gpt2(seed: int = 0) -> LoadedModel:
    """GPT-2 decoder: fused q/k/v (``c_attn``), ``Conv1D`` projections, 2 layers x 2 heads."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=VOCAB_SIZE,
        n_embd=16,
        n_layer=2,
        n_head=2,
        n_positions=64,
        bos_token_id=2,
        eos_token_id=3,
        attn_implementation="eager",
    )
    return _wrap("tiny-gpt2", GPT2LMHeadModel(config), kind="decoder")


TINY_MODELS = {
    "bert": tiny_bert,
    "roberta": tiny_roberta,
    "llama": tiny_llama,
    "mistral": tiny_mistral,
    "qwen2": tiny_qwen2,
    "gpt2": tiny_gpt2,
}
