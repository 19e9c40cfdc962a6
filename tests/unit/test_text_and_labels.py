"""Text and labels a person reads (issue 11, "Text and labels"): plurals, special and unknown
tokens, words in code, right-to-left pieces, titles and names, heatmap sizes."""

from __future__ import annotations

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
