"""The bad-input suite: every case is run through core, through AppTest and in the browser.

A case is a text, a model name or a shared link. ``error`` is a piece of the English message it
must produce (None: it must simply work, as a text of emoji or right-to-left script should).
Model folders (``{no_config}``, ...) are made by :func:`make_folders`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

GOOD_TEXT = "A good sentence after a bad one."


@dataclass(frozen=True)
class Case:
    id: str
    text: str = GOOD_TEXT
    model: str = "minilm"
    link: dict[str, str] = field(default_factory=dict)  # query parameters of a shared link
    error: str | None = None  # a piece of the expected message; None when it must work

    @property
    def kind(self) -> str:
        if self.link:
            return "link"
        return "model" if self.model != "minilm" else "text"


CASES = [
    # Texts that are empty in every way that matters.
    Case("empty", text="", error="The text is empty"),
    Case("spaces", text="     ", error="The text is empty"),
    Case("whitespace-mix", text="\n\t \u3000\r\n", error="The text is empty"),
    Case("zero-width-only", text="\u200b\u200c\u200d\ufeff", error="The text is empty"),
    Case("nul-only", text="\x00\x00", error="The text is empty"),
    # Texts that are unusual but must work.
    Case("huge-200k", text="word " * 40_000),
    Case("control-chars", text="a\x00b\x01c\x07d\x1b[31m red"),
    Case("zero-width-inside", text="zero\u200bwidth\u200djoin\ufeffer"),
    Case("arabic-rtl", text="مرحبا بالعالم، كيف حالك؟"),
    Case("hebrew-rtl", text="שלום עולם"),
    Case("rtl-override", text="abc\u202edef\u202c ghi"),
    Case("emoji", text="😀👍🏽👨\u200d👩\u200d👧 🎉 party"),
    Case("japanese", text="日本語の文章です。"),
    Case("chinese", text="我们今天去公园。"),
    Case("korean", text="안녕하세요 세계"),
    Case("combining-marks", text="cafe\u0301 nai\u0308ve"),
    Case("ligatures", text="ﬁne ﬂow Ünïcödé ß"),
    Case("long-word", text="a" * 5000),
    # Markup that must stay text.
    Case("script-tag", text="<script>alert(1)</script>"),
    Case("img-onerror", text='"><img src=x onerror=alert(1)>'),
    Case("script-breakout", text="</script><script>alert(document.domain)</script>"),
    Case("markdown-image", text="![x](http://example.invalid/x.png) **bold**"),
    Case("markdown-js-link", text="[click](javascript:alert(1))"),
    Case("latex", text="$$\\frac{a}{b}$$ and $x^2$"),
    # Model names and folders.
    Case("model-empty-name", model=" ", error="pick a built-in model or type a model id"),
    Case("model-dotdot", model="../etc/passwd", error="neither a built-in model"),
    Case("model-dotdot-deep", model="../../../../x", error="neither a built-in model"),
    Case("model-markup", model="<script>alert(1)</script>", error="neither a built-in model"),
    Case("model-query", model="bert-base-uncased?x=1", error="neither a built-in model"),
    Case("model-too-long", model="a" * 300, error="neither a built-in model"),
    Case("model-nonexistent", model="no-such-owner/no-such-model", error="Could not find"),
    Case("folder-no-config", model="{no_config}", error="has no config.json"),
    Case("folder-broken-config", model="{broken_config}", error="not a valid JSON|not valid JSON"),
    Case("folder-truncated-weights", model="{truncated}", error="Could not load"),
    Case("model-without-attention", model="{mamba}", error="has no attention heads"),
    # Shared links.
    Case("link-script-text", link={"text": "<script>alert(1)</script>"}),
    Case(
        "link-markup-model",
        link={"model": "<img src=x onerror=alert(1)>", "text": "hi"},
        error="neither a built-in model",
    ),
    Case(
        "link-dotdot-model",
        link={"model": "../../etc", "text": "hi"},
        error="neither a built-in model|is not a model",
    ),
    Case(
        "link-bad-numbers",
        link={"text": "hi", "layer": "-1", "head": "<b>"},
        error="Parts of this link were ignored",
    ),
    Case(  # digits to str.isdigit, not to int(): they crashed the page once
        "link-unicode-digits",
        link={"text": "hi", "layer": "²", "head": "³3"},
        error="Parts of this link were ignored",
    ),
    Case("link-text-too-long", link={"text": "x" * 3000}, error="too long for a link"),
    Case("link-bad-example", link={"example": "../../etc/passwd"}, error="no such example"),
]


def make_folders(root: Path, minilm_folder: Path) -> dict[str, str]:
    """Model folders that are not (quite) models; returns the placeholders' values."""
    no_config = root / "no_config"
    no_config.mkdir()
    (no_config / "notes.txt").write_text("not a model")
    broken = root / "broken_config"
    broken.mkdir()
    (broken / "config.json").write_text("{ this is not json")
    truncated = root / "truncated"
    truncated.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(minilm_folder / name, truncated / name)
    weights = (minilm_folder / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(weights[: len(weights) // 3])
    mamba = root / "mamba"
    mamba.mkdir()
    config = {
        "model_type": "mamba",
        "architectures": ["MambaForCausalLM"],
        "vocab_size": 30522,
        "hidden_size": 16,
        "state_size": 4,
        "num_hidden_layers": 2,
        "expand": 2,
        "conv_kernel": 2,
    }
    (mamba / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(minilm_folder / name, mamba / name)
    return {
        "{no_config}": str(no_config),
        "{broken_config}": str(broken),
        "{truncated}": str(truncated),
        "{mamba}": str(mamba),
    }


def resolved(case: Case, folders: dict[str, str]) -> str:
    return folders.get(case.model, case.model)
