"""AttnScope's core: load a model, turn a text into an :class:`Analysis`. Never imports streamlit.

Example (tested in ``tests/integration``)::

    from core import analyze, load_model
    result = analyze(load_model("minilm"), "The cat sat on the mat.")
    result.head_entropy.shape  # torch.Size([6, 12]): n_layers x n_heads

Words instead of pieces: :mod:`core.methods.words`; step-by-step generation:
:mod:`core.methods.generate`.
"""

from core.engine.analysis import Analysis, AttendedToken
from core.engine.models import BUILTIN_MODELS, DEFAULT_MODEL, LoadedModel, load_model
from core.engine.run import analyze, analyze_ids, with_layers
from core.engine.tokenize import check_text, tokenize
from core.methods.generate import (
    Generation,
    GenerationConfig,
    GenerationStep,
    generate_steps,
)
from core.methods.words import Words, find_words, word_analysis
from core.policy.errors import (
    AttnScopeError,
    InputError,
    ModelLoadError,
    ModelNotFoundError,
    UnsupportedModelError,
)

__all__ = [
    "BUILTIN_MODELS",
    "DEFAULT_MODEL",
    "Analysis",
    "AttendedToken",
    "AttnScopeError",
    "Generation",
    "GenerationConfig",
    "GenerationStep",
    "InputError",
    "LoadedModel",
    "ModelLoadError",
    "ModelNotFoundError",
    "UnsupportedModelError",
    "Words",
    "analyze",
    "analyze_ids",
    "with_layers",
    "check_text",
    "find_words",
    "generate_steps",
    "load_model",
    "tokenize",
    "word_analysis",
]
