"""Text and labels a person reads (issue 11, "Text and labels"): plurals, special and unknown
tokens, words in code, right-to-left pieces, titles and names, heatmap sizes."""

from __future__ import annotations

import pytest

from core.policy.i18n import t


def test_counts_of_one_are_singular_in_english_and_plain_in_japanese():
    assert t("generate.summary", "en", tokens=1, reason="Stop") == "1 new token; stopped by: Stop."
    assert t("generate.summary", "en", tokens=3, reason="Stop") == "3 new tokens; stopped by: Stop."
    assert t("run.done", "en", tokens=1, model="M", seconds="0.10") == (
        "Analysed 1 token with M (forward 0.10 s)"
    )
    summary = t("page.summary", "en", model="M", kind="decoder", layers=1, heads=1, tokens=1)
    assert summary == "M · decoder · 1 layer × 1 head · 1 token"
    japanese = t("generate.summary", "ja", tokens=1, reason="停止")
    assert japanese == "新しいトークン 1 個。終了の理由：停止。"


# --- words in code --------------------------------------------------------------------------------


def character_word_strings(text: str) -> list[str]:
    from core.methods.segmentation import character_words

    out: dict[int, str] = {}
    for ch, w in zip(text, character_words(text), strict=True):
        if w >= 0:
            out[w] = out.get(w, "") + ch
    return list(out.values())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("print(add(1, 2))", ["print", "(", "add", "(", "1", ",", "2", ")", ")"]),
        ("def add(a, b):", ["def", "add", "(", "a", ",", "b", ")", ":"]),
        ("x+=1; y==z", ["x", "+=", "1", ";", "y", "==", "z"]),
        ("a*b/c a+b", ["a", "*", "b", "/", "c", "a", "+", "b"]),
        ("max_len = __init__[0]", ["max_len", "=", "__init__", "[", "0", "]"]),
        ("f(x) -> None", ["f", "(", "x", ")", "->", "None"]),
        # prose keeps its rules
        ("isn't it?! e.g. 3.14", ["isn't", "it", "?!", "e.g", ".", "3.14"]),
        ("state-of-the-art C++ $5, 5%", ["state-of-the-art", "C++", "$5", ",", "5", "%"]),
        ("「猫」です。", ["「", "猫", "」", "で", "す", "。"]),
    ],
)
def test_code_splits_at_identifiers_brackets_and_operators(text, expected):
    assert character_word_strings(text) == expected


# --- right-to-left pieces -------------------------------------------------------------------------

FSI, PDI = "\u2068", "\u2069"


def test_a_right_to_left_piece_label_keeps_its_suffix_after_it():
    from core.engine.tokens import labels_by_decoding, labels_from_offsets, mark_unknown

    # "שלום" in byte-level BPE: ש is cut into two pieces (0xD7 | 0xA9), then "לום".
    labels = labels_from_offsets(
        ["שלום 日"],
        [(0, 1), (0, 1), (1, 4), (4, 6), (5, 6)],
        [0] * 5,
        ["×", "©", "×ľ×ķ×Ŀ", "Ġæ", "Ĺ¥"],
    )
    assert labels == [f"{FSI}ש{PDI}(1/2)", f"{FSI}ש{PDI}(2/2)", "לום", "日(1/2)", "日(2/2)"]
    pieces = {0: "ש".encode()[:1], 1: "ש".encode()[1:], 2: b"ok"}

    def decode(ids):
        return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")

    assert labels_by_decoding([0, 1, 2], decode) == [f"{FSI}ש{PDI}(1/2)", f"{FSI}ש{PDI}(2/2)", "ok"]
    # an unknown right-to-left word keeps its mark after it too
    assert mark_unknown(["שלום"], [100], 100, "[UNK]") == [f"{FSI}שלום{PDI} [UNK]"]


# --- heatmap sizes and cell words -----------------------------------------------------------------


def test_a_512_token_heatmap_grows_to_three_pixels_a_row_and_lens_words_fit_their_cells():
    import numpy as np

    from viz.heatmaps import heatmap

    labels = [f"{i}: token" for i in range(512)]
    figure = heatmap(
        np.zeros((512, 512), dtype=np.float32),
        kind="query_key",
        x=labels,
        y=labels,
        title="t",
        value_name="w",
        scale="weight",
    )
    assert figure.layout.height >= 220 + 3 * 512  # was a fixed 900 px
    lens = heatmap(
        np.zeros((2, 3), dtype=np.float32),
        kind="layer_position",
        x=["0: a", "1: b", "2: c"],
        y=["embeddings", "layer 0"],
        title="lens",
        value_name="p",
        scale="weight",
        cell_text=[["Paris", "information", "<|im_end|>"], ["a", "b", "c"]],
    )
    trace = lens.data[0]
    assert trace.textfont.size == 12  # not shrunk to fit the longest word in every cell
    assert list(trace.text[0]) == ["Paris", "infor…", "&lt;|im_…"]
    assert list(trace.customdata[0]) == ["Paris", "information", "&lt;|im_end|&gt;"]  # on hover
    assert "%{customdata}" in trace.hovertemplate


# --- names a person reads -------------------------------------------------------------------------


def test_tables_and_captions_use_words_not_internal_names():
    import re

    import torch

    from core.engine.analysis import Analysis
    from core.methods.head_stats import HEAD_METRICS
    from viz.labels import metric_caption
    from viz.tables import (
        head_stats_table,
        layer_entropy_table,
        most_attended_table,
        pattern_rules_frame,
        tokens_table,
    )

    attn = torch.softmax(torch.randn(2, 3, 4, 4), dim=-1)
    result = Analysis.from_attentions(attn, ["a", "b", "c", "d"], kind="encoder")
    internal = re.compile(r"[a-z]{3,}_[a-z]{2,}|core\.|>=")  # identifiers, module paths, code
    for lang in ("en", "ja"):
        frames = [
            tokens_table(result, lang=lang),
            layer_entropy_table(result, lang=lang),
            head_stats_table(result, lang=lang),
            most_attended_table(result, 2, ranking="visible", lang=lang),
        ]
        for frame in frames:
            assert not [c for c in frame.columns if internal.search(str(c))], list(frame.columns)
        rules = pattern_rules_frame(lang=lang)
        assert not [r for r in rules.iloc[:, 1] if internal.search(r)], list(rules.iloc[:, 1])
        for metric in HEAD_METRICS:
            assert not internal.search(metric_caption(metric, lang)), metric_caption(metric, lang)
    assert list(layer_entropy_table(result).columns)[-1] == "largest possible (ln T)"
    rules = pattern_rules_frame(lang="en")
    assert "previous-token share ≥ 0.5" in list(rules.iloc[:, 1])
