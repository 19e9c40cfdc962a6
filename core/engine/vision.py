"""Vision transformers (ViT, DeiT, DINO/DINOv2, CLIP's vision tower): an uploaded image, checked
and read safely, run through the model's own image processor, as an
:class:`~core.engine.analysis.Analysis` whose tokens are ``[CLS]`` (then ``[DIST]`` or register
tokens where the model has them) and ``patch r,c`` in row-major order.

Uploads are refused before decoding when they are too large in bytes or claim too many pixels in
their header (a decompression bomb: a 20 000 x 20 000 PNG of one colour is a few kilobytes);
greyscale, palette and RGBA images are converted to RGB, with a note saying so.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from core.engine.analysis import Analysis
from core.engine.model_kinds import require_kind
from core.policy.errors import InputError, UnsupportedModelError

if TYPE_CHECKING:
    from PIL import Image

    from core.engine.models import LoadedModel

__all__ = [
    "FORMATS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "ImageAnalysis",
    "ReadImage",
    "analyze_image",
    "prefix_labels",
    "read_image",
]

MAX_IMAGE_BYTES = 10 * 1024 * 1024  # 10 MiB
MAX_IMAGE_PIXELS = 40_000_000  # width x height: a 40 MP photo; models see about 224 x 224
FORMATS = frozenset({"PNG", "JPEG"})


@dataclass(frozen=True)
class ReadImage:
    """An upload as an RGB image, with catalogue notes on what was done to it."""

    image: Image.Image  # mode "RGB"
    notes: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # (catalogue key, its values)
    original_mode: str
    format: str


def read_image(
    data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS
) -> ReadImage:
    """``data`` (PNG or JPEG bytes) decoded as RGB, or an :class:`InputError` naming the limit:
    too many bytes, not an image, another format, too many pixels (read from the header, before
    any pixel is decoded). Greyscale, palette, CMYK and images with transparency are converted
    (transparent pixels over white), with a note."""
    from PIL import Image

    if len(data) > max_bytes:
        raise InputError(
            "error.image_too_large", size=f"{len(data) / 2**20:.1f}", limit=max_bytes // 2**20
        )
    width, height, fmt = _header(data)
    if width * height > max_pixels:
        raise InputError(
            "error.image_too_many_pixels", width=width, height=height, limit=f"{max_pixels:,}"
        )
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt])
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise InputError("error.not_an_image") from error
    mode, notes = image.mode, []
    if mode != "RGB":
        if "A" in mode or "transparency" in image.info:
            rgba = image.convert("RGBA")
            image = Image.new("RGB", rgba.size, (255, 255, 255))
            image.paste(rgba, mask=rgba.getchannel("A"))
        else:
            image = image.convert("RGB")
        notes.append(("vision.converted", (("mode", mode),)))
    return ReadImage(image=image, notes=tuple(notes), original_mode=mode, format=fmt)


def _header(data: bytes) -> tuple[int, int, str]:
    """Width, height and format from the header alone. PNG and JPEG are opened by their own
    plugins, which decode nothing and, unlike ``Image.open``, raise no bomb error without the
    size, so the message can name it; any other image is named by its format."""
    from PIL import Image, JpegImagePlugin, PngImagePlugin

    for plugin in (PngImagePlugin.PngImageFile, JpegImagePlugin.JpegImageFile):
        try:
            with plugin(io.BytesIO(data)) as probe:
                return probe.size[0], probe.size[1], plugin.format
        except (SyntaxError, OSError, ValueError, struct.error):
            continue
    try:
        with Image.open(io.BytesIO(data)) as other:
            fmt = other.format or "?"
    except Image.DecompressionBombError:
        fmt = "?"
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError("error.not_an_image") from error
    raise InputError("error.image_format", format=fmt)


@dataclass(frozen=True, eq=False)
class ImageAnalysis:
    """An image under a vision transformer: the attention over its tokens and the geometry that
    puts each patch back on the picture."""

    analysis: Analysis  # tokens: prefix tokens, then "patch r,c" row by row
    pixels: np.ndarray  # (height, width, 3) uint8: the image as the model saw it (resized, cropped)
    grid: tuple[int, int]  # (rows, cols) of patches
    patch_size: int  # pixels per patch side, in ``pixels``
    n_prefix: int  # tokens before the patches: [CLS], [DIST], registers
    norms: Tensor  # (seq_len,) the last layer's output norm per token (high-norm tokens: sinks)

    @property
    def n_patches(self) -> int:
        return self.grid[0] * self.grid[1]


def prefix_labels(model_type: str, n_prefix: int) -> tuple[str, ...]:
    """Labels of the tokens before the patches.

    >>> prefix_labels("deit", 2), prefix_labels("dinov2_with_registers", 3)
    (('[CLS]', '[DIST]'), ('[CLS]', '[REG 1]', '[REG 2]'))
    """
    if n_prefix == 0:
        return ()
    if model_type == "deit" and n_prefix == 2:
        return ("[CLS]", "[DIST]")
    return ("[CLS]", *(f"[REG {k}]" for k in range(1, n_prefix)))


def _seen_pixels(processor: object, pixel_values: Tensor) -> np.ndarray:
    """The processor's normalisation undone: ``(1, 3, H, W)`` -> ``(H, W, 3)`` uint8."""
    values = pixel_values[0].float().cpu()  # (3, H, W)
    if getattr(processor, "do_normalize", False):
        mean = torch.tensor(processor.image_mean).view(3, 1, 1)
        std = torch.tensor(processor.image_std).view(3, 1, 1)
        values = values * std + mean
    if getattr(processor, "do_rescale", False):
        values = values / float(processor.rescale_factor)
    return values.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _patch_size(loaded: LoadedModel) -> int:
    config = getattr(loaded.model.config, "vision_config", None) or loaded.model.config
    size = getattr(config, "patch_size", None)
    size = size[0] if isinstance(size, list | tuple) else size
    if not isinstance(size, int) or size <= 0:
        raise UnsupportedModelError("error.no_patches", model=loaded.title)
    return size


def analyze_image(loaded: LoadedModel, image: Image.Image, *, label: str = "") -> ImageAnalysis:
    """Run ``image`` (RGB) through ``loaded``'s image processor and model, every layer's
    attention held: ``(n_layers, n_heads, T, T)`` with ``T = n_prefix + rows * cols``."""
    require_kind(loaded, "vision")
    processor = loaded.tokenizer  # a vision model's preprocessor is its image processor
    pixel_values = processor(images=image, return_tensors="pt")["pixel_values"]  # (1, 3, H, W)
    with torch.inference_mode():
        out = loaded.model(
            **loaded.place({"pixel_values": pixel_values}),
            output_attentions=True,
            output_hidden_states=True,
            return_dict=True,
        )
    if not out.attentions or any(a is None for a in out.attentions):
        raise UnsupportedModelError("error.no_attention", model=loaded.title)
    attn = torch.stack([layer[0] for layer in out.attentions]).float().cpu()  # (L, H, T, T)
    patch = _patch_size(loaded)
    grid = (pixel_values.shape[-2] // patch, pixel_values.shape[-1] // patch)
    seq_len = attn.shape[-1]
    n_prefix = seq_len - grid[0] * grid[1]
    if n_prefix < 0:
        raise UnsupportedModelError("error.no_patches", model=loaded.title)
    model_type = getattr(loaded.model.config, "model_type", "")
    patches = [f"patch {r},{c}" for r in range(grid[0]) for c in range(grid[1])]
    tokens = (*prefix_labels(model_type, n_prefix), *patches)
    norms = out.hidden_states[-1][0].float().cpu().norm(dim=-1)  # (T,)
    width, height = image.size
    analysis = Analysis.from_attentions(
        attn,
        tokens,
        kind="encoder",
        model_name=loaded.name,
        text=label or f"image {width}x{height}",
        special=(True,) * n_prefix + (False,) * len(patches),
        max_tokens=seq_len,
    )
    return ImageAnalysis(
        analysis=analysis,
        pixels=_seen_pixels(processor, pixel_values),
        grid=grid,
        patch_size=patch,
        n_prefix=n_prefix,
        norms=norms,
    )
