"""Pictures of a model: first-layer weights as an image grid, decision regions of 2-D data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab._validation import check_array, check_positive_int
from neuronlab.plots._base import _axes

__all__ = ["plot_decision_regions", "plot_weight_grid", "weight_mosaic"]

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _first_weights(model_or_W: Any) -> np.ndarray:
    if isinstance(model_or_W, np.ndarray):
        W = model_or_W
    else:
        layer = next((l for l in model_or_W.layers if "W" in l.params), None)
        if layer is None:
            raise ValueError("the model has no layer with a weight matrix 'W'")
        W = layer.params["W"]
    return np.asarray(W, dtype=np.float64).reshape(W.shape[0], -1)  # Maxout: every piece a tile


def weight_mosaic(
    model_or_W: Any, image_shape: Sequence[int], *, max_units: int = 100, pad: int = 1
) -> np.ndarray:
    """Tile the first layer's weight vectors (one per hidden unit) as images.

    Each tile is scaled to [0, 1] by its own min and max; a constant tile (max == min, e.g. a
    dead unit or a zero init) becomes mid-grey instead of dividing by zero.

    Parameters
    ----------
    model_or_W : Sequential or ndarray of shape (n_in, n_units)
    image_shape : (H, W) for grey images or (C, H, W) channel-major (CIFAR rows: 3×32×32)
    max_units : int
        At most this many tiles (the first units).
    pad : int
        Background pixels between tiles.

    Returns
    -------
    ndarray of shape (rows·(H+pad)+pad, cols·(W+pad)+pad) or (..., ..., C)
        With ``cols = ceil(sqrt(k))`` and ``rows = ceil(k / cols)`` for ``k`` tiles.
    """
    W = _first_weights(model_or_W)
    shape = tuple(int(s) for s in image_shape)
    if (
        len(shape) not in (2, 3)
        or math.prod(shape) != W.shape[0]
        or (len(shape) == 3 and shape[0] not in (1, 3))
    ):
        raise ValueError(
            f"image_shape must be (H, W) or (C, H, W) with C in (1, 3) and H*W*C == n_in = {W.shape[0]}, "
            f"got {image_shape!r}"
        )
    max_units = check_positive_int("max_units", max_units)
    k = min(W.shape[1], max_units)
    tiles = W[:, :k].T.copy()  # (k, D)
    lo = tiles.min(axis=1, keepdims=True)
    span = tiles.max(axis=1, keepdims=True) - lo
    tiles -= lo
    np.divide(tiles, span, out=tiles, where=span > 0)
    tiles[np.flatnonzero(span[:, 0] == 0)] = 0.5  # integer-index: a constant tile is mid-grey
    if len(shape) == 3:  # channel-major rows -> (k, H, W, C) for imshow
        tiles = tiles.reshape(k, *shape).transpose(0, 2, 3, 1)
    else:
        tiles = tiles.reshape(k, *shape, 1)
    h, w, c = tiles.shape[1:]
    cols = math.ceil(math.sqrt(k))
    rows = -(-k // cols)
    grid = np.ones((rows * cols, h + pad, w + pad, c))  # white background
    grid[:k, :h, :w] = tiles
    grid = grid.reshape(rows, cols, h + pad, w + pad, c).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * (h + pad), cols * (w + pad), c)
    grid = np.pad(grid, ((pad, 0), (pad, 0), (0, 0)), constant_values=1.0)
    return grid[..., 0] if c == 1 else grid


def plot_weight_grid(
    model_or_W: Any, image_shape: Sequence[int], *, ax: Axes | None = None, max_units: int = 100
) -> Figure:
    """First-layer weights as an image grid (one tile per hidden unit): on image data a
    trained network shows strokes and blobs, an untrained or broken one noise.

    Parameters
    ----------
    model_or_W : Sequential or ndarray of shape (n_in, n_units)
        A model (its first layer's weights) or the weight matrix itself.
    image_shape : sequence of int
        (H, W) for grey images or (C, H, W) channel-major, with C in (1, 3) and
        H·W·C == n_in (CIFAR rows: (3, 32, 32)).
    ax : matplotlib Axes, optional
        Axes to draw on (the figure returned is then its figure); None draws on a new
        Figure.
    max_units : int, default 100
        At most this many tiles (the first units).

    Returns
    -------
    matplotlib.figure.Figure
        One AxesImage holding the mosaic (``ax.images[0].get_array()``).
    """
    mosaic = weight_mosaic(model_or_W, image_shape, max_units=max_units)
    fig, ax = _axes(ax, (5.5, 5.5))
    ax.imshow(
        mosaic,
        cmap="gray" if mosaic.ndim == 2 else None,
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
    )
    ax.set_axis_off()
    ax.set_title(
        f"First-layer weights ({min(_first_weights(model_or_W).shape[1], max_units)} units)"
    )
    return fig


# -- 2-D decision regions ----------------------------------------------------------------------


def plot_decision_regions(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    ax: Axes | None = None,
    resolution: int = 200,
    preprocess: bool = True,
) -> Figure:
    """Predicted class over the plane, with the training points on top (2-D inputs only).

    Parameters
    ----------
    model : Sequential
        Scores of shape (n, C): the class is the argmax, or ``score > 0`` when C == 1.
    X : ndarray of shape (n_samples, 2)
        Points in the original (un-preprocessed) coordinates.
    y : ndarray of shape (n_samples,)
        Integer class labels.
    ax : matplotlib Axes, optional
        Axes to draw on (the figure returned is then its figure); None draws on a new
        Figure.
    resolution : int
        Grid points per axis.
    preprocess : bool
        Apply ``model.preprocessor`` (set by ``nl.load``) to the grid before predicting.

    Returns
    -------
    matplotlib.figure.Figure
        A filled contour set of the predicted class and one scatter (PathCollection) of X.
    """
    X = check_array("X", X)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision regions need 2-D inputs of shape (n_samples, 2), got {X.shape}")
    y = np.asarray(y)
    resolution = check_positive_int("resolution", resolution)
    (x0, y0), (x1, y1) = X.min(axis=0), X.max(axis=0)
    mx, my = 0.1 * (x1 - x0) + 1e-3, 0.1 * (y1 - y0) + 1e-3
    gx, gy = np.meshgrid(
        np.linspace(x0 - mx, x1 + mx, resolution), np.linspace(y0 - my, y1 + my, resolution)
    )
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    pre = getattr(model, "preprocessor", None) if preprocess else None
    if pre is not None:
        grid = pre.transform(grid.astype(np.float32))
    grid = np.ascontiguousarray(grid, dtype=model.dtype or np.float32)
    scores = model.forward(grid, training=False)
    pred = scores.argmax(axis=1) if scores.shape[1] > 1 else (scores[:, 0] > 0).astype(np.int64)
    n_classes = max(int(scores.shape[1]) if scores.shape[1] > 1 else 2, int(y.max()) + 1)
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    # class k gets colour k of the qualitative palette, in the regions and on the points alike
    palette = colormaps["tab10" if n_classes <= 10 else "tab20"].colors
    cmap = ListedColormap([palette[k % len(palette)] for k in range(n_classes)])
    fig, ax = _axes(ax, (5.5, 5.0))
    levels = np.arange(n_classes + 1) - 0.5
    ax.contourf(
        gx,
        gy,
        pred.reshape(gx.shape),
        levels=levels,
        cmap=cmap,
        vmin=-0.5,
        vmax=n_classes - 0.5,
        alpha=0.35,
    )
    ax.scatter(
        X[:, 0],
        X[:, 1],
        c=y,
        cmap=cmap,
        vmin=-0.5,
        vmax=n_classes - 0.5,
        s=12,
        edgecolors="k",
        linewidths=0.3,
    )
    ax.set_xlabel("x₀")
    ax.set_ylabel("x₁")
    ax.set_title("Decision regions")
    return fig
