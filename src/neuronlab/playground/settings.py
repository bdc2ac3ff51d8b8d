"""What a playground session trains: validated settings, the 2-D data and the network.

Every setting is checked here, on the server, with the library's own validation helpers
and registries, so the page can show the library's message for a bad value
(``ValueError: lr must be > 0, got -1.0``) and nothing unchecked reaches the trainer.
"""

from __future__ import annotations

import dataclasses
import numbers
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuronlab._validation import check_number
from neuronlab.config import RunConfig
from neuronlab.data import load_dataset
from neuronlab.data.split import split_indices
from neuronlab.layers import ACTIVATIONS
from neuronlab.registry import INITIALIZERS, OPTIMIZERS

__all__ = [
    "DATASET_CLASSES",
    "LIMITS",
    "UPLOAD",
    "PlaygroundData",
    "Settings",
    "make_data",
    "minibatch_optimizers",
    "parse_settings",
    "run_config",
]

#: Classes of each playground data set (fixed, so clicked points know their choices).
DATASET_CLASSES: dict[str, int] = {"spiral": 3, "circles": 2, "moons": 2, "xor": 2, "blobs": 3}

#: The ``dataset`` of a session trained on its uploaded CSV (:mod:`.upload`).
UPLOAD = "upload"

#: Compute bounds: a forgotten tab cannot ask for more than this.
LIMITS: dict[str, float] = {
    "max_layers": 6, "max_units": 64, "min_points": 20, "max_points": 1000,
    "max_added_points": 500, "max_batch_size": 1000, "max_lr": 10.0, "max_l2": 1.0,
    "max_dropout": 0.9, "max_noise": 1.0, "max_test_fraction": 0.5,
}

#: Characters of an input value an error message quotes at most: a message names the bad
#: value without echoing a 20 MB string back.
QUOTE_CHARS = 200
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 8, 8, 8
_REPR.maxstring = _REPR.maxlong = _REPR.maxother = QUOTE_CHARS - 20

#: Half width of the square the data live in: every data set is rescaled to [-1, 1]^2 and
#: the view shows a margin around it, where clicked points may also go.
EXTENT = 1.25


def minibatch_optimizers() -> list[str]:
    """Optimizer names the playground offers: every registered rule that steps on
    minibatches (L-BFGS is full batch, one long ``minimize`` per epoch, so it is left out)."""
    return [n for n, cls in OPTIMIZERS.items() if not getattr(cls, "full_batch", False)]


@dataclass(frozen=True)
class Settings:
    """One session's data, network and optimizer settings (all validated)."""

    dataset: str = "spiral"
    noise: float = 0.2
    n_points: int = 300
    test_fraction: float = 0.2
    hidden: tuple[int, ...] = (16, 16)
    activation: str = "relu"
    init: str = "he"
    l2: float = 0.0
    dropout: float = 0.0
    batchnorm: bool = False
    optimizer: str = "adam"
    lr: float = 0.01
    batch_size: int = 32
    seed: int = 0
    points: tuple[tuple[float, float, int], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["points"] = [list(p) for p in self.points]
        return d


def _quote(value: Any) -> str:
    """``repr(value)`` for an error message, at most about :data:`QUOTE_CHARS` characters:
    long strings, numbers and lists are cut in the middle with ``...`` (:mod:`reprlib`,
    which never builds the whole repr of a long string or list)."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int past the int-to-str digit limit (4300 digits)
        text = f"<an integer of {value.bit_length()} bits>"
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS - 3] + "..."


def _choice(name: str, value: Any, choices: list[str] | tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}: {_quote(value)}")
    key = value.strip().lower().replace("-", "_")
    if key not in choices:
        raise ValueError(f"unknown {name} {_quote(value)}; choose one of: {', '.join(choices)}")
    return key


def _int_in(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}: {_quote(value)}")
    number = int(value)  # NumPy integers too
    # Python compares integers of any size exactly, so a 400-digit value is simply out of range
    if low >= 1 and number <= 0:
        raise ValueError(f"{name} must be > 0, got {_quote(value)}")
    if not low <= number <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {_quote(value)}")
    return number


def _real(name: str, value: Any, *, low: float, high: float, low_inclusive: bool = True) -> float:
    """:func:`check_number` for a setting from the page: the type is checked first (so the
    message quotes a long string only in part), and an integer too large for a float
    (``1`` and 400 zeros) is refused as out of range instead of overflowing ``float()``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a real number, got {type(value).__name__}: {_quote(value)}")
    if isinstance(value, numbers.Integral) and abs(int(value)) > 2**53:  # past every bound here
        op, bound = ("<=", high) if int(value) > 0 else (">=" if low_inclusive else ">", low)
        raise ValueError(f"{name} must be {op} {bound}, got {_quote(value)}")
    return check_number(name, value, low=low, high=high, low_inclusive=low_inclusive)


def parse_settings(raw: Mapping[str, Any] | None, base: Settings | None = None, *,
                   upload_classes: int | None = None) -> Settings:
    """Validate ``raw`` (JSON from the page) over ``base`` (defaults when None).

    Unknown keys are refused (a typo must not be silently ignored). Raises ValueError or
    TypeError naming the setting and the value. ``dataset`` may be ``"upload"`` only for a
    session holding an uploaded CSV, whose number of classes is ``upload_classes``.
    """
    base = base or Settings()
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise TypeError(f"settings must be a JSON object, got {type(raw).__name__}")
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {_quote(unknown)}; valid settings: {sorted(known)}")
    s = {**dataclasses.asdict(base), **raw}
    lim = LIMITS
    names = (*DATASET_CLASSES, UPLOAD) if upload_classes is not None else tuple(DATASET_CLASSES)
    if s["dataset"] == UPLOAD and upload_classes is None:
        raise ValueError(f"dataset {UPLOAD!r} needs a CSV uploaded in this tab (upload one); "
                         f"choose one of: {', '.join(DATASET_CLASSES)}")
    dataset = _choice("dataset", s["dataset"], names)
    n_classes = upload_classes if dataset == UPLOAD else DATASET_CLASSES[dataset]
    assert n_classes is not None  # "upload" is a choice only with upload_classes
    hidden = s["hidden"]
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (list, tuple)):
        raise TypeError(f"hidden must be a list of layer widths, got {_quote(hidden)}")
    if len(hidden) > lim["max_layers"]:
        raise ValueError(f"hidden must have at most {lim['max_layers']} layers, got {len(hidden)}")
    hidden = tuple(_int_in(f"hidden[{i}]", h, 1, int(lim["max_units"])) for i, h in enumerate(hidden))
    if not isinstance(s["batchnorm"], bool):
        raise TypeError(f"batchnorm must be a bool, got {_quote(s['batchnorm'])}")
    points = _parse_points(s["points"], n_classes)
    out = Settings(
        dataset=dataset,
        noise=_real("noise", s["noise"], low=0, high=lim["max_noise"]),
        n_points=_int_in("n_points", s["n_points"], int(lim["min_points"]), int(lim["max_points"])),
        test_fraction=_real("test_fraction", s["test_fraction"], low=0,
                            high=lim["max_test_fraction"]),
        hidden=hidden,
        activation=_choice("activation", s["activation"], ACTIVATIONS),
        init=_choice("init", s["init"], INITIALIZERS.names()),
        l2=_real("l2", s["l2"], low=0, high=lim["max_l2"]),
        dropout=_real("dropout", s["dropout"], low=0, high=lim["max_dropout"]),
        batchnorm=s["batchnorm"],
        optimizer=_choice("optimizer", s["optimizer"], minibatch_optimizers()),
        lr=_real("lr", s["lr"], low=0, high=lim["max_lr"], low_inclusive=False),
        batch_size=_int_in("batch_size", s["batch_size"], 1, int(lim["max_batch_size"])),
        seed=_int_in("seed", s["seed"], 0, 2**31 - 1),
        points=points,
    )
    return out


def _parse_points(points: Any, n_classes: int) -> tuple[tuple[float, float, int], ...]:
    if not isinstance(points, (list, tuple)):
        raise TypeError(f"points must be a list of [x, y, label], got {type(points).__name__}")
    if len(points) > LIMITS["max_added_points"]:
        raise ValueError(f"points: at most {LIMITS['max_added_points']} added points, got {len(points)}")
    out = []
    for i, p in enumerate(points):
        if not isinstance(p, (list, tuple)) or len(p) != 3:
            raise ValueError(f"points[{i}] must be [x, y, label], got {_quote(p)}")
        x = _real(f"points[{i}].x", p[0], low=-EXTENT, high=EXTENT)
        y = _real(f"points[{i}].y", p[1], low=-EXTENT, high=EXTENT)
        label = _int_in(f"points[{i}].label", p[2], 0, n_classes - 1)
        out.append((x, y, label))
    return tuple(out)


@dataclass
class PlaygroundData:
    """Training and test arrays (X float32 (n, 2) in [-EXTENT, EXTENT]^2, y int64 (n,))."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int


def make_data(s: Settings, upload: Any = None) -> PlaygroundData:
    """Generate the data set, rescale it into [-1, 1]^2 (one scale for both axes, so shapes
    keep their proportions), split it (stratified) and append the clicked points to the
    training part. For ``dataset="upload"`` the points are ``upload``'s (an
    :class:`~neuronlab.playground.upload.Upload`, rescaled already): noise and n_points do
    not apply."""
    if s.dataset == UPLOAD:
        if upload is None:
            raise ValueError("dataset 'upload' needs an uploaded CSV")
        X, y, k = upload.X, upload.y, upload.n_classes
    else:
        X, y = _generate(s)
        k = DATASET_CLASSES[s.dataset]
        centre = (X.max(axis=0) + X.min(axis=0)) / 2
        X = (X - centre) / max(float(np.abs(X - centre).max()), 1e-12)
    parts = split_indices(y, val_size=0.0, test_size=s.test_fraction, seed=s.seed)
    X_train, y_train = X[parts.train], y[parts.train]
    if s.points:
        P = np.array([p[:2] for p in s.points], dtype=np.float32)
        X_train = np.concatenate([X_train, P])
        y_train = np.concatenate([y_train, np.array([p[2] for p in s.points], dtype=np.int64)])
    return PlaygroundData(np.ascontiguousarray(X_train, dtype=np.float32), y_train,
                          np.ascontiguousarray(X[parts.test], dtype=np.float32), y[parts.test], k)


def _generate(s: Settings) -> tuple[np.ndarray, np.ndarray]:
    noise, n, k = s.noise, s.n_points, DATASET_CLASSES[s.dataset]
    if s.dataset == "spiral":
        return load_dataset("spiral", n_per_class=max(1, n // k), n_classes=k, noise=noise,
                            seed=s.seed)
    if s.dataset == "blobs":
        # blob centres lie in [-10, 10]^2: noise 0..1 maps to a cluster std of 0.5..5.5
        return load_dataset("blobs", n=n, n_classes=k, std=0.5 + 5.0 * noise, seed=s.seed)
    return load_dataset(s.dataset, n=n, noise=noise, seed=s.seed)


def run_config(s: Settings) -> RunConfig:
    """The session's network, optimizer and regulariser as a run config: the playground builds
    them with :func:`neuronlab.runs.build_run`, the code ``neuronlab train`` uses (an ``mlp``
    from 2 inputs to softmax scores, the chosen update rule, L2 when ``l2 > 0``)."""
    return RunConfig.from_dict({
        "model": {"hidden": list(s.hidden), "activation": s.activation, "init": s.init,
                  "dropout": s.dropout, "batchnorm": s.batchnorm, "loss": "softmax"},
        "optim": {"optimizer": s.optimizer, "lr": s.lr},
        "regularization": {"l2": s.l2},
        "train": {"batch_size": s.batch_size, "seed": s.seed},
    }, source="the playground settings")
