"""Errors AttnScope shows to people: each says what went wrong and what to do next, in English
(``str(error)``, for logs and the command line) or in any catalogue language (:meth:`localized`)."""

from __future__ import annotations

from collections.abc import Callable

from core.policy.i18n import DEFAULT_LANG, Lang, t

__all__ = [
    "AttnScopeError",
    "FigureExportError",
    "InputError",
    "ModelLoadError",
    "ModelNotFoundError",
    "UnsupportedModelError",
]


def _rebuild(cls: type[AttnScopeError], key: str, params: dict[str, object]) -> AttnScopeError:
    return cls(key, **params)


class AttnScopeError(Exception):
    """Base class: a catalogue ``key`` (see :mod:`core.policy.i18n`) and the values it needs.

    >>> error = InputError("error.empty_text")
    >>> str(error)
    'The text is empty: type or paste some text to analyse.'
    >>> error.localized("ja")
    'テキストが空です。解析するテキストを入力するか貼り付けてください。'
    """

    def __init__(self, key: str, /, **params: object) -> None:
        self.key = key
        self.params = params
        super().__init__(t(key, DEFAULT_LANG, **params))

    def localized(self, lang: Lang, *, escape: Callable[[str], str] | None = None) -> str:
        """The message in ``lang``; ``escape`` is applied to every text value first (user
        input shown in Markdown, say), never to the catalogue's own words."""
        params = self.params
        if escape is not None:
            params = {k: escape(v) if isinstance(v, str) else v for k, v in params.items()}
        return t(self.key, lang, **params)

    def __reduce__(self):  # keep key and params when pickled (args holds only the message)
        return _rebuild, (type(self), self.key, self.params)


class InputError(AttnScopeError, ValueError):
    """The text or an option is unusable (empty text, a pair for a decoder, ...)."""


class ModelNotFoundError(AttnScopeError, LookupError):
    """No model by that name: not built in, not a model folder, not found on the Hub."""


class ModelLoadError(AttnScopeError, RuntimeError):
    """The model was found but could not be loaded (broken config, truncated weights, ...)."""


class UnsupportedModelError(AttnScopeError, TypeError):
    """The model loads but its attention cannot be read (no weights, encoder-decoder, ...)."""


class FigureExportError(AttnScopeError, RuntimeError):
    """A figure could not be written as a file (no Chromium to render it, or the render failed)."""
