"""The lab's tokenizers: a SentencePiece model trained in memory writes Japanese (spaces,
punctuation, ASCII, rare kanji, tabs, newlines) back exactly, through SentencePiece and through
the Hugging Face tokenizer a saved folder uses; a folder saved by the lab opens with
``core.load_model`` and analyses a Japanese text."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import sentencepiece as spm
import torch

from core import analyze, load_model
from core.engine.tokenize import decoder, tokenize
from core.lab.model import LabShape, build_model, vocabulary_model
from core.lab.tasks import RepeatTask
from core.lab.tokenizer import (
    SENTENCEPIECE_FILE,
    compare_splits,
    synthetic_vocabulary,
    train_vocabulary,
)
from core.lab.train import detector_tokens, save_checkpoint
from core.policy.errors import InputError

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "corpus" / "sample.jsonl"
JAPANESE = [
    json.loads(line)["text"]
    for line in SAMPLE.read_text(encoding="utf-8").splitlines()
    if json.loads(line)["lang"] == "ja"
]
# Two spaces, a full-width space, ASCII, full-width digits and brackets, rare kanji the sample
# never uses (鬱, 蒼, 龘: byte fallback), a tab and a newline.
HARD = "猫は暖かい  窓辺で眠っている。 Hello, world!\u3000鬱蒼とした森（１２３）龘\t改行\nです"


@pytest.fixture(scope="module", params=["unigram", "bpe"])
def trained(request):
    return train_vocabulary(JAPANESE, kind=request.param, vocab_size=700, context=128)


def hf_ids(lab, text: str) -> list[int]:
    loaded = replace(vocabulary_model(lab), max_tokens=10**9)
    return tokenize(loaded, text).input_ids[0].tolist()


def test_japanese_round_trips_through_sentencepiece_and_hugging_face(trained):
    processor = spm.SentencePieceProcessor(model_proto=trained.sentencepiece)
    decode = decoder(trained.tokenizer)
    for text in [HARD, *JAPANESE]:
        assert processor.decode(processor.encode(text)) == text
        assert decode(hf_ids(trained, text)) == text
    pieces = compare_splits(HARD, {"lab": trained})[0].pieces
    assert "<unk>" not in pieces
    rare = ("<0xE9>", "<0xBE>", "<0x98>")  # 龘 in UTF-8, never seen in training
    assert any(pieces[i : i + 3] == rare for i in range(len(pieces)))
    assert pieces.count("▁") >= 3  # the two spaces and the one after 。 are kept


def test_unigram_pieces_are_sentencepieces(trained):
    processor = spm.SentencePieceProcessor(model_proto=trained.sentencepiece)
    hf_pieces = compare_splits(HARD, {"lab": trained})[0].pieces
    if trained.kind == "unigram":  # BPE merges are rebuilt from the vocabulary: same text only
        assert list(hf_pieces) == processor.encode(HARD, out_type=str)
    assert trained.vocab_size == len(trained.tokenizer) == processor.get_piece_size() == 700
    specials = trained.tokenizer.convert_ids_to_tokens([0, 1, 2, 3])
    assert specials == ["<unk>", "<s>", "</s>", "<pad>"]


def test_too_small_a_vocabulary_or_no_text_is_refused():
    with pytest.raises(InputError) as error:
        train_vocabulary(JAPANESE, vocab_size=100)
    assert error.value.key == "lab.error_vocab_small"
    with pytest.raises(InputError) as error:
        train_vocabulary(["", "  "])
    assert error.value.key == "lab.error_no_texts"
    with pytest.raises(InputError) as error:
        train_vocabulary(JAPANESE[:3], vocab_size=5000)  # three sentences hold too few pieces
    assert error.value.key == "lab.error_vocab_large"
    assert 260 < error.value.params["maximum"] < 400
    with pytest.raises(InputError) as error:  # 256 bytes, 4 special tokens and the characters
        train_vocabulary(JAPANESE, vocab_size=300)
    assert error.value.key == "lab.error_vocab_small"
    assert error.value.params["minimum"] > 300


def test_synthetic_tokenizer_names_tokens_by_id_and_starts_with_bos():
    lab = synthetic_vocabulary(10)
    split = compare_splits("w4 w9 w4", {"synthetic": lab})[0]
    assert split.pieces == ("<s>", "w4", "w9", "w4")
    assert split.special == (True, False, False, False)
    assert hf_ids(lab, "w4 w9") == [1, 4, 9]
    assert len(lab.tokenizer) == 10


def test_saved_folder_loads_without_remote_code_and_analyses_japanese(trained, tmp_path):
    shape = LabShape(n_layers=2, n_heads=2, d_model=16, context=128, vocab_size=trained.vocab_size)
    model = build_model(shape, seed=1)
    probe = detector_tokens(shape, RepeatTask(half=8, bos=False), seed=0, n_sequences=2)
    found = save_checkpoint(tmp_path, 0, model, trained, probe)
    folder = tmp_path / "checkpoints" / found.folder
    assert {"config.json", "model.safetensors", "tokenizer.json", SENTENCEPIECE_FILE} <= {
        p.name for p in folder.iterdir()
    }
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "gpt2" and "auto_map" not in config
    loaded = load_model(str(folder))  # trust_remote_code stays off
    assert (loaded.kind, loaded.n_layers, loaded.n_heads) == ("decoder", 2, 2)
    assert loaded.max_tokens == 128
    text = "東京で  新しい本を買った。鬱"
    result = analyze(loaded, text)
    ids = [int(i) for i in result.token_ids]
    assert decoder(loaded.tokenizer)(ids) == text
    # a character written as three bytes is three tokens with the character's one span
    assert "".join(text[a:b] for a, b in dict.fromkeys(result.offsets)) == text
    assert result.tokens[-3:] == ("鬱(1/3)", "鬱(2/3)", "鬱(3/3)")
    for weights in result.layer_weights:  # (H, T, T)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, len(ids)))
    assert torch.equal(loaded.model.transformer.wte.weight, model.transformer.wte.weight.detach())


def test_compare_splits_puts_models_side_by_side(trained):
    from tests.unit.tiny_models import tiny_llama

    splits = compare_splits("the cat sat", {"lab": trained, "tiny": tiny_llama()})
    assert [s.name for s in splits] == ["lab", "tiny"]
    assert splits[1].pieces == ("the", "cat", "sat")
    # Japanese-only training: the Latin letters are bytes, and the spaces ▁
    assert splits[0].pieces[:4] == ("<0x74>", "<0x68>", "<0x65>", "▁")
    assert splits[0].n_tokens == len(splits[0].labels)
