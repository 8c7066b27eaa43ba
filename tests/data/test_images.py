from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keylink.data.images import (
    IMAGE_SUFFIXES,
    ImageInputError,
    ImageSkippedWarning,
    Resize,
    list_images,
    load_image,
    scan_images,
)


def _asymmetric_rgb(h: int = 12, w: int = 20) -> np.ndarray:
    """An image whose orientation is unambiguous: gradients plus a block in the top-left."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[:, :, 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[:, :, 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    img[:4, :6, 2] = 255
    return img


# ---------------------------------------------------------------- list_images


def test_list_images_sorted_recursive_and_case_insensitive(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    for name in ["b.PNG", "a.jpg", "sub/c.JpEg", "notes.txt", ".hidden/d.png", "._e.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    expected = [tmp_path / "a.jpg", tmp_path / "b.PNG", tmp_path / "sub/c.JpEg"]
    assert list_images(tmp_path) == expected
    assert list_images(tmp_path, recursive=False) == [tmp_path / "a.jpg", tmp_path / "b.PNG"]


def test_image_suffixes() -> None:
    assert {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"} == IMAGE_SUFFIXES


def test_list_images_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match="does not exist"):
        list_images(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(ImageInputError, match="not a folder"):
        list_images(tmp_path / "file.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageInputError, match="empty"):
        list_images(empty)
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("hello")
    with pytest.raises(ImageInputError, match=r"accepted suffixes: .*\.jpg") as info:
        list_images(texts)
    assert "1 other files" in str(info.value)


# ---------------------------------------------------------------- load_image


def test_load_rgb_png_and_lossless_formats(tmp_path: Path) -> None:
    img = _asymmetric_rgb()
    for suffix, kwargs in [(".png", {}), (".bmp", {}), (".tif", {}), (".webp", {"lossless": True})]:
        path = tmp_path / f"img{suffix}"
        Image.fromarray(img).save(path, **kwargs)
        out = load_image(path)
        assert out.dtype == np.uint8 and out.shape == (12, 20, 3), suffix
        np.testing.assert_array_equal(out, img, err_msg=suffix)


def test_load_grey(tmp_path: Path) -> None:
    grey = np.arange(60, dtype=np.uint8).reshape(6, 10) * 4
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == (6, 10, 3)
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))


def test_load_palette(tmp_path: Path) -> None:
    img = _asymmetric_rgb()
    Image.fromarray(img).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(
        tmp_path / "p.png"
    )
    out = load_image(tmp_path / "p.png")
    assert out.shape == (12, 20, 3) and out.dtype == np.uint8


def test_load_rgba_composited_over_grey(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red everywhere
    rgba[0, :, 3] = 255  # opaque top row
    rgba[1, :, 3] = 0  # transparent second row
    rgba[2:, :, 3] = 51  # 20% opaque
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png").astype(int)
    np.testing.assert_array_equal(out[0], [[255, 0, 0]] * 4)
    np.testing.assert_array_equal(out[1], [[128, 128, 128]] * 4)
    np.testing.assert_allclose(out[2:], np.broadcast_to([153, 102, 102], (2, 4, 3)), atol=1)


def test_load_16_bit_grey(tmp_path: Path) -> None:
    values = np.array([[0, 257, 257 * 100], [257 * 200, 65535, 1000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as im:
        assert im.mode.startswith("I")  # really stored as 16-bit
    out = load_image(tmp_path / "deep.png")
    np.testing.assert_array_equal(out[..., 0], [[0, 1, 100], [200, 255, 4]])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_load_cmyk(tmp_path: Path) -> None:
    Image.new("CMYK", (5, 3), (0, 255, 255, 0)).save(tmp_path / "c.tif")
    out = load_image(tmp_path / "c.tif")
    assert out.shape == (3, 5, 3)
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])


def test_load_honours_exif_orientation(tmp_path: Path) -> None:
    stored = np.zeros((40, 64, 3), dtype=np.uint8)
    stored[:16, :16] = 255  # bright block in the stored top-left corner
    stored[:, :, 1] = np.linspace(0, 200, 64, dtype=np.uint8)[None, :]
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    with Image.open(path) as im:
        raw = np.asarray(im.convert("RGB"))  # decoded pixels, orientation not applied
    out = load_image(path)
    assert out.shape == (64, 40, 3)
    np.testing.assert_array_equal(out, np.rot90(raw, k=-1))  # k=-1: clockwise
    # Independent check of the direction: the stored top-left corner is now top-right.
    assert out[:10, -10:, 0].mean() > 200 and out[:10, :10, 0].mean() < 60


@pytest.mark.parametrize(
    "name, content",
    [
        ("text.jpg", b"this is not an image\n" * 10),
        ("empty.png", b""),
    ],
)
def test_load_bad_files_raise_naming_file(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageInputError, match=name):
        load_image(path)


def _truncated_jpg(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    good = tmp_path / "good.jpg"
    Image.fromarray(noise).save(good, quality=90)
    data = good.read_bytes()
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(data[: len(data) // 2])
    return bad


def test_load_truncated_jpg_raises(tmp_path: Path) -> None:
    bad = _truncated_jpg(tmp_path)
    with pytest.raises(ImageInputError, match="truncated.jpg"):
        load_image(bad)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match="nope.png"):
        load_image(tmp_path / "nope.png")


# ---------------------------------------------------------------- scan_images


def test_scan_images_skips_bad_files(tmp_path: Path) -> None:
    Image.fromarray(_asymmetric_rgb(10, 30)).save(tmp_path / "a.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_asymmetric_rgb(10, 30)).save(tmp_path / "b.jpg", exif=exif)
    _truncated_jpg(tmp_path)
    (tmp_path / "x.jpg").write_text("not an image")
    (tmp_path / "z.png").write_bytes(b"")
    paths = list_images(tmp_path)
    with pytest.warns(ImageSkippedWarning) as record:
        result = scan_images(paths, progress=False)
    assert result.readable == [tmp_path / "a.png", tmp_path / "b.jpg", tmp_path / "good.jpg"]
    assert result.sizes == [(30, 10), (10, 30), (64, 64)]  # b.jpg: size after orientation
    skipped = [p.name for p, _ in result.skipped]
    assert skipped == ["truncated.jpg", "x.jpg", "z.png"]
    messages = [str(w.message) for w in record if issubclass(w.category, ImageSkippedWarning)]
    assert len(messages) == 3
    assert all(name in msg for name, msg in zip(skipped, messages, strict=True))


def test_scan_images_nothing_readable(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_text("not an image")
    (tmp_path / "y.png").write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImageSkippedWarning)
        with pytest.raises(ImageInputError, match="no readable image in .*2 files skipped"):
            scan_images(list_images(tmp_path), progress=False)
    with pytest.raises(ImageInputError):
        scan_images([], progress=False)


def test_scan_images_with_progress_bar(tmp_path: Path) -> None:
    img = Image.fromarray(_asymmetric_rgb(4, 4))
    paths = []
    for i in range(40):
        paths.append(tmp_path / f"{i:02d}.png")
        img.save(paths[-1])
    result = scan_images(paths, progress=True)
    assert result.readable == paths and result.sizes == [(4, 4)] * 40


# ---------------------------------------------------------------- Resize


@pytest.mark.parametrize("mode", ["squash", "letterbox"])
def test_resize_round_trip(mode: str) -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        size = int(rng.integers(8, 512))
        width, height = (int(v) for v in rng.integers(1, 3000, 2))
        resize = Resize(size, mode)  # type: ignore[arg-type]
        pts = rng.uniform(0, 1, (7, 3, 2)) * [width, height]
        model = resize.to_model(pts, width, height)
        assert model.shape == pts.shape
        np.testing.assert_allclose(resize.to_original(model, width, height), pts, atol=1e-4)
        # The whole original image maps onto the content area inside [0, size].
        corners = resize.to_model(np.array([[0.0, 0.0], [width, height]]), width, height)
        assert corners.min() >= -1e-9 and corners.max() <= size + 1e-9


def test_resize_params_letterbox_values() -> None:
    resize = Resize(100, "letterbox")
    sx, sy, ox, oy = resize.params(400, 200)
    assert (sx, sy, ox, oy) == (0.25, 0.25, 0.0, 25.0)
    sx, sy, ox, oy = resize.params(3, 1000)  # very thin: content is at least one pixel wide
    assert sx == 1 / 3 and sy == 0.1 and ox == 49.0 and oy == 0.0
    assert Resize(64, "squash").params(128, 32) == (0.5, 2.0, 0.0, 0.0)


def test_resize_validation() -> None:
    with pytest.raises(ValueError):
        Resize(0)
    with pytest.raises(ValueError):
        Resize(32, "crop")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Resize(32).to_model(np.zeros((3, 3)), 10, 10)


def _centroid(image: np.ndarray) -> np.ndarray:
    """Intensity centroid in continuous (pixel-centre) coordinates."""
    weights = image.astype(np.float64).sum(axis=2)
    ys, xs = np.indices(weights.shape)
    total = weights.sum()
    return np.array([((xs + 0.5) * weights).sum() / total, ((ys + 0.5) * weights).sum() / total])


@pytest.mark.parametrize("mode", ["squash", "letterbox"])
def test_resize_content_lands_where_to_model_says(mode: str) -> None:
    rng = np.random.default_rng(2)
    width, height, size = 1000, 620, 64
    resize = Resize(size, mode)  # type: ignore[arg-type]
    sx, sy, ox, oy = resize.params(width, height)
    left, top = int(ox), int(oy)
    new_w, new_h = round(width * sx), round(height * sy)
    for _ in range(5):
        x0 = int(rng.integers(100, width - 140))
        y0 = int(rng.integers(100, height - 140))
        bw, bh = (int(v) for v in rng.integers(15, 40, 2))
        image = np.zeros((height, width, 3), dtype=np.uint8)
        image[y0 : y0 + bh, x0 : x0 + bw] = 255
        expected = resize.to_model(np.array([x0 + bw / 2, y0 + bh / 2]), width, height)
        out = resize.apply(image)
        assert out.shape == (size, size, 3) and out.dtype == np.uint8
        content = out[top : top + new_h, left : left + new_w]
        found = _centroid(content) + [left, top]
        np.testing.assert_allclose(found, expected, atol=0.05)


def test_resize_letterbox_padding_is_grey_and_centred() -> None:
    image = np.full((50, 200, 3), 255, dtype=np.uint8)  # wide white image
    out = Resize(40, "letterbox").apply(image)
    # new size 40 x 10, pad_top = 15: rows 0..14 and 25..39 are grey, the rest white.
    np.testing.assert_array_equal(out[:15], 128)
    np.testing.assert_array_equal(out[25:], 128)
    np.testing.assert_array_equal(out[15:25], 255)
    tall = Resize(41, "letterbox").apply(np.full((100, 30, 3), 255, dtype=np.uint8))
    # new width round(30 * 41 / 100) = 12, pad_left = (41 - 12) // 2 = 14
    np.testing.assert_array_equal(tall[:, :14], 128)
    np.testing.assert_array_equal(tall[:, 14:26], 255)
    np.testing.assert_array_equal(tall[:, 26:], 128)
    assert Resize(41, "letterbox").params(30, 100)[2] == 14.0


def test_resize_squash_upsampling_maps_centres() -> None:
    # Upsampling too: a single pixel's centre maps to the centroid of its bilinear footprint.
    image = np.zeros((10, 8, 3), dtype=np.uint8)
    image[4, 3] = 255
    resize = Resize(80, "squash")
    out = resize.apply(image)
    expected = resize.to_model(np.array([3.5, 4.5]), 8, 10)
    np.testing.assert_allclose(_centroid(out), expected, atol=0.05)
