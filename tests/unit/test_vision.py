"""Vision transformers on tiny random ViT, DeiT, DINOv2-with-registers and CLIP vision towers:
tokens and shapes, rollout over patches against a direct product, the overlay's patch-to-pixel
mapping on a hand-made case, per-head patch statistics, every bad upload with its message in
both languages, and the real loading path from a folder saved by save_pretrained."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from core.engine.model_kinds import require_kind
from core.engine.models import load_model
from core.engine.vision import analyze_image, read_image
from core.methods.patches import (
    high_norm_patches,
    mean_attention_distance,
    patch_boxes,
    patch_map,
    patch_rollout,
    patch_statistics,
    patch_to_pixels,
)
from core.policy.errors import InputError
from tests.unit.tiny_models import tiny_bert
from tests.unit.tiny_seq2seq_vision import IMAGE, VISION, save

PREFIX = {
    "vit": ("[CLS]",),
    "deit": ("[CLS]", "[DIST]"),
    "dinov2-registers": ("[CLS]", "[REG 1]", "[REG 2]"),
    "clip-vision": ("[CLS]",),
}


def scene(size=(48, 40), mode="RGB") -> Image.Image:
    """A red square on blue, in ``mode``."""
    image = Image.new("RGB", size, (20, 40, 200))
    image.paste((220, 30, 30), (8, 8, 24, 24))
    return image.convert(mode)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module", params=sorted(VISION))
def family(request):
    return request.param, VISION[request.param]()


def test_tokens_shapes_and_rows(family):
    name, model = family
    result = analyze_image(model, scene())
    prefix = PREFIX[name]
    assert result.grid == (4, 4) and result.n_prefix == len(prefix)
    tokens = result.analysis.tokens
    assert tokens[: len(prefix)] == prefix
    assert tokens[len(prefix)] == "patch 0,0" and tokens[len(prefix) + 5] == "patch 1,1"
    assert tokens[-1] == "patch 3,3" and len(tokens) == len(prefix) + 16
    attn = result.analysis.attentions
    assert attn.shape == (2, 2, len(tokens), len(tokens))
    assert torch.allclose(attn.sum(-1), torch.ones(attn.shape[:-1]), atol=1e-5)
    assert result.pixels.shape == (IMAGE, IMAGE, 3) and result.pixels.dtype == np.uint8
    # the model's own output, read by name, for the same pixels
    with torch.inference_mode():
        pixels = model.tokenizer(images=scene(), return_tensors="pt")["pixel_values"]
        out = model.model(pixel_values=pixels, output_attentions=True)
    assert torch.allclose(attn, torch.stack([a[0] for a in out.attentions]), atol=1e-6)


def test_the_pixels_are_what_the_model_saw():
    model = VISION["vit"]()
    result = analyze_image(model, scene((IMAGE, IMAGE)))  # no resize: the same pixels back
    assert np.abs(result.pixels.astype(int) - np.asarray(scene((IMAGE, IMAGE)))).max() <= 1


def test_rollout_over_patches_equals_a_direct_product():
    model = VISION["deit"]()
    result = analyze_image(model, scene())
    attn = result.analysis.attentions  # (L, H, T, T)
    eye = torch.eye(attn.shape[-1])
    mixed = [0.5 * attn[layer].mean(0) + 0.5 * eye for layer in range(2)]
    mixed = [m / m.sum(-1, keepdim=True) for m in mixed]
    direct = mixed[1] @ mixed[0]  # (T, T)
    rolled = patch_rollout(result)
    assert torch.allclose(rolled[-1], direct, atol=1e-6)
    cls_map = patch_map(result, rolled[-1])
    assert cls_map.shape == (4, 4)
    assert torch.allclose(cls_map.flatten(), direct[0, 2:], atol=1e-6)
    assert torch.allclose(patch_map(result, attn[1, 0], query=5).flatten(), attn[1, 0, 5, 2:])


def test_patch_to_pixel_mapping_on_a_hand_made_case():
    # a 2 x 2 grid on a 3 x 5 image: rows 0..1 -> patch row 0 (y * 2 // 3), row 2 -> 1;
    # columns 0..2 -> patch column 0 (x * 2 // 5: 0, 0, 0, 1, 1)
    values = torch.tensor([1.0, 2.0, 3.0, 4.0])
    expected = torch.tensor(
        [[1.0, 1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 1.0, 2.0, 2.0], [3.0, 3.0, 3.0, 4.0, 4.0]]
    )
    assert torch.equal(patch_to_pixels(values, (2, 2), (3, 5)), expected)
    # boxes [x0, y0, x1, y1): column c covers c*5//2 .. (c+1)*5//2, row r covers r*3//2 ..
    assert patch_boxes((2, 2), (3, 5)).tolist() == [
        [0, 0, 2, 1],
        [2, 0, 5, 1],
        [0, 1, 2, 3],
        [2, 1, 5, 3],
    ]
    # 16-pixel patches of a 224 x 224 ViT: patch 15 (row 1, col 1) is pixels 16..32 each way
    assert patch_boxes((14, 14), (224, 224))[15].tolist() == [16, 16, 32, 32]


def test_patch_statistics_against_hand_formulas():
    model = VISION["dinov2-registers"]()
    result = analyze_image(model, scene())
    found = patch_statistics(result)
    attn = result.analysis.attentions
    patches = attn[..., 3:, 3:]  # (L, H, 16, 16)
    r, c = torch.arange(16) // 4, torch.arange(16) % 4
    d = ((r[:, None] - r[None]) ** 2 + (c[:, None] - c[None]) ** 2).float().sqrt()
    direct = ((patches * d).sum(-1) / patches.sum(-1)).mean(-1)
    assert torch.allclose(found.distance, direct, atol=1e-5)
    assert torch.allclose(found.register_share, attn[..., 1:3].sum(-1).mean(-1), atol=1e-6)
    rows = attn[..., 3:, :]
    assert torch.allclose(found.entropy, -(rows * rows.log()).sum(-1).mean(-1), atol=1e-5)
    assert (found.sink_share >= found.register_share - 1e-6).all()
    # a hand-made sink: key 2 takes everything from every query -> distance 0 at query 2 only
    a = torch.zeros(4, 4)
    a[:, 2] = 1.0
    assert torch.isclose(mean_attention_distance(a, (2, 2), 0), torch.tensor((1 + 2**0.5 + 1) / 4))
    assert high_norm_patches(torch.tensor([1.0, 1.0, 1.0, 1.0, 5.0]), 1).tolist() == [
        False,
        False,
        False,
        False,
        True,
    ]


def test_the_real_loading_path_from_a_saved_folder(tmp_path):
    for name in ("vit", "clip-vision"):
        tiny = VISION[name]()
        loaded = load_model(str(save(tiny, tmp_path / name)), device="cpu")
        assert loaded.kind == "vision" and (loaded.n_layers, loaded.n_heads) == (2, 2)
        ours = analyze_image(loaded, scene()).analysis.attentions
        assert torch.allclose(ours, analyze_image(tiny, scene()).analysis.attentions, atol=1e-6)


# --- bad input -----------------------------------------------------------------------------------


def _refused(data: bytes, key: str) -> InputError:
    with pytest.raises(InputError) as caught:
        read_image(data)
    assert caught.value.key == key
    english, japanese = str(caught.value), caught.value.localized("ja")
    assert english and japanese and english != japanese and "⟦" not in english + japanese
    return caught.value


def test_a_non_image_upload():
    error = _refused(b"%PDF-1.4 not an image at all", "error.not_an_image")
    assert "PNG or JPEG" in str(error) and "PNG か JPEG" in error.localized("ja")


def test_a_40_mb_image_is_refused_before_decoding():
    data = png_bytes(scene()) + bytes(40 * 2**20)  # 40 MB: the bytes count, whatever they hold
    error = _refused(data, "error.image_too_large")
    assert "is 40.0 MB; the limit is 10 MB" in str(error)
    assert "40.0 MB" in error.localized("ja") and "上限は 10 MB" in error.localized("ja")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_a_decompression_bomb_is_refused_from_its_header():
    """A valid 20 000 x 20 000 one-bit PNG, all black: 50 MB of rows that compress to ~50 kB."""
    side = 20_000
    rows = zlib.compress(bytes(side * (1 + side // 8)), 9)
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", rows)
    data += _chunk(b"IEND", b"")
    assert len(data) < 200_000
    error = _refused(data, "error.image_too_many_pixels")
    assert "20000 × 20000" in str(error) and "20000 × 20000" in error.localized("ja")


def test_another_format_is_refused():
    buffer = io.BytesIO()
    scene().save(buffer, format="GIF")
    error = _refused(buffer.getvalue(), "error.image_format")
    assert "this one is GIF" in str(error)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_greyscale_rgba_and_palette_images_are_converted_with_a_note(mode):
    image = scene(mode=mode)
    if mode == "RGBA":
        image.putpixel((0, 0), (0, 0, 0, 0))  # one transparent pixel: white in RGB
    read = read_image(png_bytes(image))
    assert read.image.mode == "RGB" and read.original_mode == mode
    assert read.notes == (("vision.converted", (("mode", mode),)),)
    if mode == "RGBA":
        assert read.image.getpixel((0, 0)) == (255, 255, 255)
        assert read.image.getpixel((10, 10)) == (220, 30, 30)
    if mode == "L":
        grey = read.image.getpixel((10, 10))
        assert grey[0] == grey[1] == grey[2] == scene(mode="L").getpixel((10, 10))
    analyze_image(VISION["vit"](), read.image)  # and the model takes it


def test_an_rgb_jpeg_needs_no_note():
    buffer = io.BytesIO()
    scene().save(buffer, format="JPEG")
    read = read_image(buffer.getvalue())
    assert read.notes == () and read.format == "JPEG" and read.image.size == (48, 40)


def test_an_image_for_a_text_model_and_a_text_for_an_image_model():
    with pytest.raises(InputError) as caught:
        analyze_image(tiny_bert(), scene())
    assert caught.value.key == "error.image_for_text_model"
    assert "reads text, not images" in str(caught.value)
    assert "画像は読めません" in caught.value.localized("ja")
    with pytest.raises(InputError) as caught:
        require_kind(VISION["vit"](), "text")
    assert caught.value.key == "error.text_for_image_model"
    assert "is a vision model" in str(caught.value)
    assert "視覚モデル" in caught.value.localized("ja")
    from core.engine.seq2seq import analyze_pair

    with pytest.raises(InputError) as caught:
        analyze_pair(VISION["clip-vision"](), "the cat", "a dog")
    assert caught.value.key == "error.text_for_image_model"


def test_the_command_line_says_a_text_is_for_text_models(tmp_path, capsys):
    from core.cli import main

    folder = save(VISION["vit"](), tmp_path / "vit")
    assert main(["analyze", "the cat sat", "--model", str(folder), "--device", "cpu"]) == 2
    assert "is a vision model: it reads images, not text" in capsys.readouterr().err


def test_the_python_api_refuses_image_and_translation_models_with_a_message():
    from core import analyze
    from core.engine.run import analyze_ids
    from core.policy.errors import InputError
    from tests.unit.tiny_seq2seq_vision import tiny_marian, tiny_vit

    for make, key in (
        (tiny_vit, "error.text_for_image_model"),
        (tiny_marian, "error.needs_text_model"),
    ):
        loaded = make()
        with pytest.raises(InputError) as raised:
            analyze(loaded, "a cat on the mat")
        assert raised.value.key == key
        with pytest.raises(InputError):
            analyze_ids(loaded, [1, 2, 3])
