"""Pictures for the playground: a tiny PNG encoder, the decision-region image and the
hidden units' response heatmaps, all computed with the model's own forward pass.

Images are small (64x64 regions, 24x24 units) and sent to the page as ``data:`` URLs, so the
page needs no image library and the server needs none either (PNG is zlib + CRC32, both in
the standard library).
"""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import numpy as np

__all__ = ["CLASS_COLORS", "grid", "hidden_outputs", "png_data_url", "png_rgb", "region_image",
           "unit_images"]

#: One RGB colour per class (colour-blind friendly: Okabe–Ito), reused for points on the page.
CLASS_COLORS: np.ndarray = np.array(
    [[230, 159, 0], [86, 180, 233], [0, 158, 115], [204, 121, 167],
     [213, 94, 0], [0, 114, 178], [240, 228, 66], [120, 120, 120]],
    dtype=np.float64,
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_rgb(img: np.ndarray) -> bytes:
    """Encode an RGB image as PNG bytes.

    Parameters
    ----------
    img : ndarray of shape (height, width, 3), uint8
        Row 0 is the top of the picture.

    Returns
    -------
    bytes
        8-bit truecolour PNG, every scanline with filter type 0 (none).
    """
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"img must be uint8 of shape (h, w, 3), got {img.dtype} {img.shape}")
    h, w, _ = img.shape
    raw = np.empty((h, 1 + 3 * w), dtype=np.uint8)
    raw[:, 0] = 0  # each scanline starts with its filter byte
    raw[:, 1:] = img.reshape(h, 3 * w)
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # depth 8, colour type 2 (RGB)
    return (_PNG_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + _chunk(b"IEND", b""))


def png_data_url(img: np.ndarray) -> str:
    """``data:image/png;base64,...`` for an RGB uint8 image of shape (h, w, 3)."""
    return "data:image/png;base64," + base64.b64encode(png_rgb(img)).decode("ascii")


def grid(extent: float, size: int, dtype: Any = np.float32) -> np.ndarray:
    """Pixel centres of a ``size`` x ``size`` image covering [-extent, extent]^2.

    Returns
    -------
    ndarray of shape (size * size, 2)
        Row-major from the top-left pixel: x grows to the right, y grows upwards (so row 0
        holds the largest y, as a plot's top edge does).
    """
    step = 2.0 * extent / size
    xs = -extent + step * (np.arange(size) + 0.5)
    gx, gy = np.meshgrid(xs, xs[::-1])
    return np.column_stack([gx.ravel(), gy.ravel()]).astype(dtype)


def region_image(proba: np.ndarray, size: int) -> np.ndarray:
    """Colour each pixel by its class probabilities: the probability-weighted mix of the
    class colours, faded towards white where the network is unsure.

    Parameters
    ----------
    proba : ndarray of shape (size * size, n_classes)
        Rows sum to 1 (softmax of the scores).
    size : int

    Returns
    -------
    ndarray of shape (size, size, 3), uint8
    """
    k = proba.shape[1]
    colors = CLASS_COLORS[np.arange(k) % len(CLASS_COLORS)]
    mix = proba @ colors  # (n, 3)
    # confidence 1/k (uniform) -> white, 1 -> 70% colour: regions stay light under the points
    conf = (proba.max(axis=1, keepdims=True) - 1.0 / k) * (k / (k - 1.0)) if k > 1 else 1.0
    alpha = 0.25 + 0.45 * np.clip(conf, 0.0, 1.0)
    out = 255.0 + alpha * (mix - 255.0)
    img: np.ndarray = np.clip(out, 0, 255).astype(np.uint8).reshape(size, size, 3)
    return img


def unit_images(acts: np.ndarray, size: int) -> list[str]:
    """One heatmap per hidden unit: blue for negative, white for 0, orange for positive
    responses, each unit scaled by its own largest magnitude over the grid.

    Parameters
    ----------
    acts : ndarray of shape (size * size, n_units)
        The layer's output at the grid points.
    size : int

    Returns
    -------
    list of str
        ``n_units`` PNG data URLs.
    """
    a = np.nan_to_num(np.asarray(acts, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    scale = np.abs(a).max(axis=0)
    a = a / np.where(scale > 0, scale, 1.0)  # in [-1, 1] per unit
    pos = np.array([230.0, 120.0, 0.0])
    neg = np.array([0.0, 110.0, 200.0])
    urls = []
    for j in range(a.shape[1]):
        v = a[:, j : j + 1]
        target = np.where(v >= 0, pos, neg)
        img = 255.0 + np.abs(v) * (target - 255.0)
        urls.append(png_data_url(np.clip(img, 0, 255).astype(np.uint8).reshape(size, size, 3)))
    return urls


def hidden_outputs(model: Any, x: np.ndarray) -> list[np.ndarray]:
    """Each hidden layer's output at ``x``: the input of every width-fixed layer (Linear,
    Maxout) after the first, i.e. after its activation (and batch norm / dropout, which are
    the identity or fixed in inference mode)."""
    outs = []
    for i, layer in enumerate(model.layers):
        if i > 0 and getattr(layer, "n_in", None) is not None:
            outs.append(x)
        x = layer.forward(x, training=False)
    return outs
