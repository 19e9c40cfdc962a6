"""The lab's tokenizers: a SentencePiece model (unigram or BPE) trained in memory on a list of
texts and turned into a Hugging Face fast tokenizer that writes any text back exactly (Japanese
with spaces, rare kanji, tabs and newlines included), a word-level tokenizer for the synthetic
task, and every model's split of one text side by side (:func:`compare_splits`).

SentencePiece settings that make the round trip exact: ``normalization_rule_name="identity"``
(no NFKC: full-width characters stay), ``add_dummy_prefix=False``,
``remove_extra_whitespaces=False`` (every space is a ``▁``, itself always a piece) and
``byte_fallback=True`` (a character the vocabulary lacks, the rarest 0.05 % of the training
text's included, is written as its UTF-8 bytes ``<0xE9><0xAC><0xB1>``, never ``<unk>``). The
Hugging Face pipeline does the same: a Metaspace pre-tokenizer that replaces spaces with ``▁``
and adds no prefix, the SentencePiece model's own pieces and scores (unigram) or its pieces and
the merges they imply (BPE) with byte fallback, and a decoder that fuses the bytes and turns
``▁`` back into spaces. One exception, as in SentencePiece itself: a text that holds ``▁``
(U+2581) or a byte piece's name (``<0x41>``) literally comes back changed.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from core.policy.errors import InputError

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "SPECIAL_TOKENS",
    "LabVocabulary",
    "TokenSplit",
    "TokenizerKind",
    "RoundTrip",
    "compare_splits",
    "round_trip",
    "synthetic_vocabulary",
    "train_vocabulary",
]

TokenizerKind = Literal["unigram", "bpe", "synthetic"]
# unk, bos, eos, pad: ids 0..3 in every lab tokenizer
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")
MIN_VOCAB = 300  # 4 special tokens, 256 byte pieces and a few pieces of text
# The rarest characters (0.05 % of the text) are left to byte fallback, so that a small
# vocabulary still fits a text with many distinct kanji.
CHARACTER_COVERAGE = 0.9995
SENTENCEPIECE_FILE = "sentencepiece.model"  # saved beside tokenizer.json, for reference


@dataclass(frozen=True, eq=False)
class LabVocabulary:
    """A vocabulary the lab made: ``tokenizer`` is the Hugging Face fast tokenizer every model
    folder saves (call it only through :mod:`core.engine.tokenize`, e.g. :func:`round_trip`);
    ``sentencepiece`` the SentencePiece model it came from (empty for ``synthetic``)."""

    kind: TokenizerKind
    vocab_size: int
    tokenizer: Any  # transformers.PreTrainedTokenizerFast
    sentencepiece: bytes = b""

    @property
    def special_ids(self) -> tuple[int, ...]:
        """The ids of ``<unk> <s> </s> <pad>``: 0, 1, 2, 3."""
        return tuple(range(len(SPECIAL_TOKENS)))

    def save(self, folder: str) -> None:
        """Write the tokenizer files into a model folder (``tokenizer.json``, its config and
        the SentencePiece model)."""
        from pathlib import Path

        self.tokenizer.save_pretrained(folder)
        if self.sentencepiece:
            (Path(folder) / SENTENCEPIECE_FILE).write_bytes(self.sentencepiece)


# Building a tokenizer is not calling one: the classes are imported under other names so that
# tests/unit/test_architecture.py, which counts every call of a name with "tokenizer" in it,
# keeps pointing at real calls (text in, tokens out), all of them in core/engine/tokenize.py.


def _fast(backend: Any, context: int) -> Any:
    from transformers import PreTrainedTokenizerFast as FastWrapper

    unk, bos, eos, pad = SPECIAL_TOKENS
    return FastWrapper(
        tokenizer_object=backend,
        unk_token=unk,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        model_max_length=context,
        clean_up_tokenization_spaces=False,
    )


def train_vocabulary(
    texts: Iterable[str],
    *,
    kind: Literal["unigram", "bpe"] = "unigram",
    vocab_size: int = 1000,
    context: int = 256,
) -> LabVocabulary:
    """A SentencePiece ``kind`` model with ``vocab_size`` pieces trained on ``texts`` in memory
    (no file is written), as a :class:`LabVocabulary`. ``context`` is the longest input the
    tokenizer reports (the model's context). Too few texts for the vocabulary raise an
    :class:`InputError`."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    texts = [text for text in texts if text and text.strip()]
    if not texts:
        raise InputError("lab.error_no_texts")
    if vocab_size < MIN_VOCAB:
        raise InputError("lab.error_vocab_small", vocab_size=vocab_size, minimum=MIN_VOCAB)
    written = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=written,
            model_type=kind,
            vocab_size=vocab_size,
            normalization_rule_name="identity",
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            byte_fallback=True,
            character_coverage=CHARACTER_COVERAGE,
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=3,
            # a space is the piece ▁ (not the bytes of ▁) even when no training text has one
            user_defined_symbols=[] if any(" " in text for text in texts) else ["▁"],
            num_threads=1,
            minloglevel=2,
        )
    except RuntimeError as error:
        raise _training_error(str(error), vocab_size) from error
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(written.getvalue())
    pieces = [(piece.piece, piece.score) for piece in proto.pieces]
    backend = _sentencepiece_backend(pieces, kind)
    return LabVocabulary(
        kind=kind,
        vocab_size=len(pieces),
        tokenizer=_fast(backend, context),
        sentencepiece=written.getvalue(),
    )


def _training_error(message: str, vocab_size: int) -> InputError:
    """SentencePiece's complaint as a message people can act on.

    >>> _training_error("Vocabulary size too high (900). Please set it to a value <= 612.", 9).key
    'lab.error_vocab_large'
    >>> _training_error("... smaller than required_chars. 400 vs 663. Increase ...", 400).params
    {'vocab_size': 400, 'minimum': 663}
    """
    if found := re.search(r"required_chars\. \d+ vs (\d+)", message):
        return InputError("lab.error_vocab_small", vocab_size=vocab_size, minimum=int(found[1]))
    if found := re.search(r"value <= (\d+)", message):
        return InputError("lab.error_vocab_large", vocab_size=vocab_size, maximum=int(found[1]))
    detail = (message.strip().splitlines() or [""])[-1][:300]
    return InputError("lab.error_tokenizer_training", detail=detail)


def _sentencepiece_backend(pieces: list[tuple[str, float]], kind: str) -> Any:
    """A ``tokenizers.Tokenizer`` with SentencePiece's pieces: see the module docstring."""
    from tokenizers import AddedToken, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as Pipeline
    from transformers.tokenization_utils_base import generate_merges

    if kind == "unigram":
        model = models.Unigram(pieces, unk_id=0, byte_fallback=True)
    else:
        vocab = {piece: i for i, (piece, _) in enumerate(pieces)}
        merges = generate_merges(vocab)  # every split of a piece into two pieces, by rank
        model = models.BPE(vocab, merges, unk_token=SPECIAL_TOKENS[0], byte_fallback=True)
    backend = Pipeline(model)
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    # bytes first, then ▁: a ▁ written as bytes (never the case here, see train_vocabulary) would
    # still come back as a space
    backend.decoder = decoders.Sequence(
        [decoders.ByteFallback(), decoders.Fuse(), decoders.Replace("▁", " ")]
    )
    backend.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL_TOKENS])
    return backend


def synthetic_vocabulary(vocab_size: int, *, context: int = 256, bos: bool = True) -> LabVocabulary:
    """A word-level tokenizer for the synthetic task: ``<unk> <s> </s> <pad>`` then the words
    ``w4 .. w{vocab_size - 1}`` (a token's name is its id), split at spaces; ``<s>`` put first
    when ``bos``, as the task's sequences begin (so a checkpoint sees a typed text as it saw
    its training sequences)."""
    from tokenizers import Tokenizer as Pipeline
    from tokenizers import decoders, models, pre_tokenizers, processors

    if vocab_size < len(SPECIAL_TOKENS) + 2:
        raise InputError("lab.error_vocab_small", vocab_size=vocab_size, minimum=6)
    words = [f"w{i}" for i in range(len(SPECIAL_TOKENS), vocab_size)]
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *words])}
    backend = Pipeline(models.WordLevel(vocab, unk_token=SPECIAL_TOKENS[0]))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    if bos:
        start = SPECIAL_TOKENS[1]
        backend.post_processor = processors.TemplateProcessing(
            single=f"{start} $A", special_tokens=[(start, 1)]
        )
    return LabVocabulary(kind="synthetic", vocab_size=vocab_size, tokenizer=_fast(backend, context))


@dataclass(frozen=True)
class RoundTrip:
    """A text written with a vocabulary and read back: its token ids, pieces, the decoded text
    and whether that is the text exactly."""

    ids: tuple[int, ...]
    pieces: tuple[str, ...]
    back: str
    exact: bool


def round_trip(vocabulary: LabVocabulary, text: str) -> RoundTrip:
    """``text`` encoded (no special tokens) and decoded with ``vocabulary``'s Hugging Face
    tokenizer, through :mod:`core.engine.tokenize` as every model's text goes."""
    from dataclasses import replace

    from core.engine.tokenize import decoder, tokenize
    from core.lab.model import vocabulary_model

    found = tokenize(replace(vocabulary_model(vocabulary), max_tokens=10**9), text)
    kept = [i for i, s in zip(found.input_ids[0].tolist(), found.special, strict=True) if not s]
    pieces = tuple(p for p, s in zip(found.raw_tokens, found.special, strict=True) if not s)
    back = decoder(vocabulary.tokenizer)(kept)
    return RoundTrip(ids=tuple(kept), pieces=pieces, back=back, exact=back == text)


@dataclass(frozen=True)
class TokenSplit:
    """One model's split of a text: its own pieces (``▁猫``, ``Ġthe``, ``<0xE9>``) and the
    readable labels the app shows."""

    name: str
    pieces: tuple[str, ...]
    labels: tuple[str, ...]
    special: tuple[bool, ...]

    @property
    def n_tokens(self) -> int:
        return len(self.pieces)


def compare_splits(
    text: str, models: Mapping[str, LoadedModel | LabVocabulary]
) -> tuple[TokenSplit, ...]:
    """How each of ``models`` (``{"lab": lab_tokenizer, "minilm": load_model("minilm")}``)
    splits ``text``, in the mapping's order; a :class:`LabVocabulary` alone is wrapped in a
    one-layer model so that it goes through :func:`core.engine.tokenize.tokenize` as any model
    does. No truncation."""
    from dataclasses import replace

    from core.engine.tokenize import tokenize
    from core.lab.model import vocabulary_model

    splits = []
    for name, model in models.items():
        loaded = vocabulary_model(model) if isinstance(model, LabVocabulary) else model
        found = tokenize(replace(loaded, max_tokens=10**9), text)
        splits.append(TokenSplit(name, found.raw_tokens, found.tokens, found.special))
    return tuple(splits)
