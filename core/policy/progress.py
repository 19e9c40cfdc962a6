"""Progress lines of a long step (loading a model): each names its stage by a catalogue key, so
that the command line prints it in English and the app shows it in the reader's language."""

from __future__ import annotations

from collections.abc import Callable

from core.policy.i18n import DEFAULT_LANG, Lang, t

__all__ = ["ProgressFn", "Stage"]


class Stage(str):
    """A stage of a long step: the English line as a ``str`` (logs, the command line, ``in``
    tests), and its catalogue ``key`` and ``params`` for :meth:`localized`.

    >>> stage = Stage("run.stage_tokenizer", model="MiniLM")
    >>> str(stage), stage.key
    ('Loading the tokenizer of MiniLM', 'run.stage_tokenizer')
    >>> stage.localized("ja")
    'MiniLM のトークナイザーを読み込んでいます'
    """

    key: str
    params: dict[str, object]

    def __new__(cls, key: str, /, **params: object) -> Stage:
        stage = super().__new__(cls, t(key, DEFAULT_LANG, **params))
        stage.key = key
        stage.params = params
        return stage

    def localized(self, lang: Lang, *, escape: Callable[[str], str] | None = None) -> str:
        """The line in ``lang``; ``escape`` is applied to every text value first (a model name
        shown in Markdown), never to the catalogue's own words."""
        params = self.params
        if escape is not None:
            params = {k: escape(v) if isinstance(v, str) else v for k, v in params.items()}
        return t(self.key, lang, **params)

    def __reduce__(self):  # pickled with its key, not as a plain str
        return _rebuild, (self.key, self.params)


def _rebuild(key: str, params: dict[str, object]) -> Stage:
    return Stage(key, **params)


# What a long step calls with each stage; a plain str works too (the older callers' lines).
ProgressFn = Callable[[str], None]
