"""The catalogues: same keys, same placeholders, every key used exists and every key is used."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from core.policy.errors import InputError
from core.policy.i18n import LANGUAGES, catalogue, parse_lang, t

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "app|nav|common|sidebar|about|run|page|heatmaps|heatmap|entropy|stats|col|views|view|error"
    "|metric|metricdef|pattern|heads|ablation|predict|compare|generate|effective|demo|link|corpus|attribution"
    "|translation|vision|detectors|qk|long|serve|byo|profile|lab"
)
KEY = re.compile(rf"""["']((?:{SECTIONS})\.[a-z0-9_]+)["']""")
SOURCES = [
    *ROOT.glob("core/**/*.py"),
    *ROOT.glob("viz/*.py"),
    *ROOT.glob("pages/*.py"),
    *ROOT.glob("ui/*.py"),
    ROOT / "app.py",
]


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def keys_in_code() -> set[str]:
    found: set[str] = set()
    for path in SOURCES:
        found |= set(KEY.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_language_has_every_key():
    english = set(catalogue("en"))
    for lang in LANGUAGES:
        assert set(catalogue(lang)) == english, lang


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_translations_keep_the_placeholders(lang):
    for key, text in catalogue("en").items():
        assert placeholders(catalogue(lang)[key]) == placeholders(text), key


def test_translations_are_not_english_copies():
    same = [k for k, v in catalogue("ja").items() if v == catalogue("en")[k]]
    assert same == ["app.language"]  # the selector's label is bilingual on purpose


def test_every_key_the_code_uses_exists_and_every_key_is_used():
    used = keys_in_code()
    assert used - set(catalogue("en")) == set()
    unused = set(catalogue("en")) - used
    assert unused == set(), f"catalogue keys nothing uses: {sorted(unused)}"


def test_lookup_fills_placeholders_and_marks_missing_keys():
    assert t("run.done", "ja", tokens=3, model="M", seconds="0.10") == (
        "M で 3 トークンを解析しました（順伝播 0.10 秒）"
    )
    assert t("no.such", "ja") == "⟦no.such⟧"
    assert parse_lang("ja") == "ja" and parse_lang("de") == "en"


def test_errors_speak_both_languages():
    error = InputError("error.pair_decoder", model="SmolLM2")
    assert str(error).startswith("A second sentence only applies")
    assert error.localized("ja").startswith("2 文目はエンコーダ")
    import pickle

    again = pickle.loads(pickle.dumps(error))
    assert again.localized("ja") == error.localized("ja") and str(again) == str(error)
