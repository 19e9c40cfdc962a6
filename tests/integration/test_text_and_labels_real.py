"""Text and labels on the bundled models: what the user sees of generated text, unknown tokens
and right-to-left pieces (issue 11, "Text and labels")."""

from __future__ import annotations

import pytest

from core.methods.generate import Generation, GenerationConfig, generate

# The Generate page's defaults (pages/generate.py): sampled, seed 0, 24 new tokens.
PAGE_DEFAULTS = GenerationConfig(max_new_tokens=24, temperature=0.8, top_p=0.95, top_k=50, seed=0)


@pytest.fixture(scope="module")
def japanese(smollm2) -> Generation:
    return generate(smollm2, "日本の首都は", PAGE_DEFAULTS)


def test_the_end_tokens_of_a_chat_model_all_end_generation(smollm2):
    from core.engine.tokenize import end_token_ids

    # SmolLM2's eos_token is <|im_end|> (2); <|endoftext|> (0) ends a text as well; <|im_start|>
    # (1) starts a turn and ends nothing.
    assert end_token_ids(smollm2.tokenizer) == frozenset({0, 2})
    from core.methods.generation import eos_ids

    assert eos_ids(smollm2) == frozenset({0, 2})


def test_a_character_the_token_limit_cuts_is_finished_and_shown_as_pieces(japanese):
    # With these settings the 24th token is the first two bytes of a katakana (E3 83): the
    # limit falls inside a character, so generation finishes that character.
    assert japanese.stop_reason == "max_new_tokens"
    assert len(japanese.steps) == 25 and japanese.steps[-1].finish_reason == "max_new_tokens"
    assert "\ufffd" not in japanese.generated_text
    assert "\ufffd" not in japanese.output_text
    last, before = japanese.tokens[-1], japanese.tokens[-2]
    assert before.endswith("(1/2)") and last.endswith("(2/2)") and before[:-5] == last[:-5]
    assert not any("\ufffd" in label for label in japanese.tokens)
    labels, _ = japanese.step_words(len(japanese.steps) - 1)
    assert not any("\ufffd" in label for label in labels)
    assert labels[-1] == last[:-5]


def test_a_generation_stopped_inside_a_character_shows_its_bytes(smollm2, japanese):
    # Stop after step 11, whose token holds the first two bytes (E3 82) of the next katakana.
    steps = japanese.steps[:12]
    assert steps[-1].text == ""  # the character is not whole yet
    stopped = Generation.from_steps(smollm2, "日本の首都は", PAGE_DEFAULTS, steps)
    assert stopped.stop_reason == "stopped"
    assert stopped.output_text.endswith("<E3 82>") and "\ufffd" not in stopped.output_text
    assert stopped.tokens[-1] == "<E3 82>"
    labels, _ = stopped.step_words(11)
    assert labels[-1] == "<E3 82>" and not any("\ufffd" in label for label in labels)


def test_the_end_of_turn_token_ends_the_output_and_is_named_not_written(smollm2):
    english = generate(smollm2, "The capital of France is", PAGE_DEFAULTS)
    assert english.stop_reason == "eos" and english.steps[-1].special
    assert english.tokens[-1] == "<|im_end|>"
    assert english.generated_text.endswith("<|im_end|>")  # the exact decode keeps it (JSON)
    assert english.output_text == english.generated_text.removesuffix("<|im_end|>")
    assert english.end_token == "<|im_end|>"


def test_an_unknown_token_shows_what_the_model_saw_and_the_text_it_stands_for(minilm):
    from core import analyze
    from core.methods.words import word_analysis
    from viz.attention_view import decode_payload, encode_head_view
    from viz.heatmaps import head_heatmap
    from viz.tables import tokens_table

    result = analyze(minilm, "I love 😀 pizza, a😀b")
    assert result.raw_tokens[3] == "[UNK]" and result.token_ids[3] == minilm.tokenizer.unk_token_id
    assert result.tokens[:5] == ("[CLS]", "I", "love", "😀 [UNK]", "pizza")
    assert result.tokens[6] == "a😀b [UNK]"  # one unknown token for the whole word
    words = word_analysis(minilm, result)
    assert "😀 [UNK]" in words.tokens and "a😀b [UNK]" in words.tokens
    assert "pizza" in words.tokens
    # the same label in a table, a heatmap's axis and the canvas view's header
    assert tokens_table(result)["token"][3] == "😀 [UNK]"
    assert head_heatmap(result, 0, 0).data[0].x[3] == "3: 😀 [UNK]"
    header, _ = decode_payload(encode_head_view(result, 0).data)
    assert header["tokens"][3] == "😀 [UNK]"


def test_hebrew_pieces_keep_their_numbers_after_the_letter(smollm2):
    from core import analyze

    result = analyze(smollm2, "שלום עולם, מה שלומך?")
    pieces = [label for label in result.tokens if "(1/" in label or "(2/" in label]
    assert pieces, result.tokens  # SmolLM2 cuts some Hebrew letters into byte pieces
    for label in pieces:
        assert label.startswith("\u2068") and "\u2069(" in label, label
