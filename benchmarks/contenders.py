"""The three contenders, each set up the way its users would write it.

* neuronlab: ``nl.mlp`` + ``nl.Trainer`` with its default settings (monitors on unless asked),
  ``Trainer.fit(..., epochs=1)`` per timed unit.
* PyTorch CPU: ``torch.nn.Sequential`` and a plain training loop (randperm, index, zero_grad,
  forward, loss, backward, step), the same threads as NumPy's BLAS.
* scikit-learn: ``MLPClassifier.partial_fit`` (one epoch over the data per call) on float32.

Every training factory returns a zero-argument callable that trains one epoch and returns the
samples it processed; every inference factory one that labels a whole array. The same network,
batch size, optimizer and hyperparameters are used throughout; L2 penalties are off everywhere.
torch and scikit-learn are imported inside the functions, so the neuronlab side runs without them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

import neuronlab as nl

__all__ = [
    "OPTIMIZERS",
    "OptSpec",
    "TargetReached",
    "neuronlab_epoch",
    "neuronlab_predict",
    "neuronlab_to_target",
    "random_data",
    "sklearn_epoch",
    "sklearn_predict",
    "sklearn_to_target",
    "torch_epoch",
    "torch_predict",
    "torch_to_target",
]


@dataclass(frozen=True)
class OptSpec:
    """An update rule and its hyperparameters, as each library spells them."""

    name: str  # "momentum" or "adam"
    lr: float
    momentum: float = 0.9

    def neuronlab(self) -> Any:
        if self.name == "momentum":
            return nl.Momentum(lr=self.lr, momentum=self.momentum)
        return nl.Adam(lr=self.lr)

    def torch(self, params: Any) -> Any:
        import torch

        if self.name == "momentum":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum)
        return torch.optim.Adam(params, lr=self.lr)

    def sklearn(self) -> dict[str, Any]:
        if self.name == "momentum":
            return {"solver": "sgd", "momentum": self.momentum, "nesterovs_momentum": False,
                    "learning_rate": "constant", "learning_rate_init": self.lr}
        return {"solver": "adam", "learning_rate_init": self.lr}


OPTIMIZERS = {"momentum": OptSpec("momentum", 0.01), "adam": OptSpec("adam", 1e-3)}


def random_data(n: int, d: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal float32 features (what preprocessed CIFAR looks like to the network)
    and uniform integer labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    return X, rng.integers(0, classes, n).astype(np.int64)


# -- neuronlab ------------------------------------------------------------------------------
def _nl_trainer(sizes: Sequence[int], opt: OptSpec, *, monitor: bool, seed: int,
                callbacks: Sequence[Any] = ()) -> Any:
    model = nl.mlp(sizes[0], list(sizes[1:-1]), sizes[-1], activation="relu", rng=seed)
    if monitor:  # the Trainer's default: leave the argument out, as a user would
        return nl.Trainer(model, nl.SoftmaxCrossEntropy(), opt.neuronlab(), callbacks=callbacks)
    return nl.Trainer(model, nl.SoftmaxCrossEntropy(), opt.neuronlab(), callbacks=callbacks,
                      monitor=False)


def neuronlab_epoch(X: np.ndarray, y: np.ndarray, sizes: Sequence[int], batch: int,
                    opt: OptSpec, *, monitor: bool = True, seed: int = 0) -> Callable[[], int]:
    """One ``Trainer.fit(X, y, epochs=1)`` per call (the model keeps learning across calls)."""
    trainer = _nl_trainer(sizes, opt, monitor=monitor, seed=seed)
    count = [0]

    def run() -> int:
        count[0] += 1
        trainer.fit(X, y, epochs=1, batch_size=batch, seed=count[0])
        return X.shape[0]

    run.trainer = trainer  # type: ignore[attr-defined]
    return run


def neuronlab_predict(X: np.ndarray, sizes: Sequence[int], *, seed: int = 0) -> Callable[[], int]:
    """``Trainer.predict`` (inference mode, batches of 1024) over all of X."""
    trainer = _nl_trainer(sizes, OPTIMIZERS["momentum"], monitor=False, seed=seed)

    def run() -> int:
        trainer.predict(X, batch_size=1024)
        return X.shape[0]

    return run


# -- PyTorch --------------------------------------------------------------------------------
def _torch_model(sizes: Sequence[int], seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    layers: list[Any] = []
    for a, b in pairwise(sizes):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def torch_epoch(X: np.ndarray, y: np.ndarray, sizes: Sequence[int], batch: int, opt: OptSpec,
                *, seed: int = 0) -> Callable[[], int]:
    """A plain PyTorch training loop over one shuffled epoch per call."""
    import torch

    model = _torch_model(sizes, seed)
    optimizer = opt.torch(model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    n = X.shape[0]

    def run() -> int:
        model.train()
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            xb, yb = Xt[idx], yt[idx]
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
        return n

    run.model = model  # type: ignore[attr-defined]  (time-to-target evaluates it)
    return run


def torch_predict(X: np.ndarray, sizes: Sequence[int], *, seed: int = 0) -> Callable[[], int]:
    """Labels for all of X under ``torch.inference_mode``, batches of 1024."""
    import torch

    model = _torch_model(sizes, seed).eval()
    Xt = torch.from_numpy(X)

    def run() -> int:
        with torch.inference_mode():
            for s in range(0, X.shape[0], 1024):
                model(Xt[s:s + 1024]).argmax(dim=1).numpy()
        return X.shape[0]

    return run


# -- scikit-learn ---------------------------------------------------------------------------
def _sk_model(sizes: Sequence[int], batch: int, opt: OptSpec, seed: int, **kw: Any) -> Any:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), activation="relu", alpha=0.0,
                         batch_size=batch, shuffle=True, random_state=seed, **opt.sklearn(), **kw)


def sklearn_epoch(X: np.ndarray, y: np.ndarray, sizes: Sequence[int], batch: int, opt: OptSpec,
                  *, seed: int = 0) -> Callable[[], int]:
    """``MLPClassifier.partial_fit``: one shuffled epoch in minibatches per call."""
    clf = _sk_model(sizes, batch, opt, seed)
    classes = np.arange(sizes[-1])

    def run() -> int:
        clf.partial_fit(X, y, classes=classes)
        return X.shape[0]

    return run


def sklearn_predict(X: np.ndarray, y: np.ndarray, sizes: Sequence[int], *,
                    seed: int = 0) -> Callable[[], int]:
    """``MLPClassifier.predict`` over all of X (fitted for one epoch on (X, y) first: a
    classifier must be fitted before it predicts)."""
    clf = _sk_model(sizes, 256, OPTIMIZERS["momentum"], seed)
    clf.partial_fit(X[:1024], y[:1024], classes=np.arange(sizes[-1]))

    def run() -> int:
        clf.predict(X)
        return X.shape[0]

    return run


# -- time to a test accuracy ----------------------------------------------------------------
@dataclass(frozen=True)
class TargetReached:
    """Wall time (training and the per-epoch test evaluations) to reach a test accuracy."""

    seconds: float
    epochs: int
    accuracy: float
    reached: bool


class _StopAt(nl.Callback):
    def __init__(self, target: float) -> None:
        self.target = target

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        if logs["val_acc"] >= self.target:
            trainer.stop_training = True


def neuronlab_to_target(data: tuple[np.ndarray, ...], sizes: Sequence[int], batch: int,
                        opt: OptSpec, *, target: float, max_epochs: int,
                        seed: int) -> TargetReached:
    """``Trainer.fit`` with the test set as validation and a callback that stops at target."""
    Xtr, ytr, Xte, yte = data
    t0 = time.perf_counter()
    trainer = _nl_trainer(sizes, opt, monitor=True, seed=seed, callbacks=[_StopAt(target)])
    history = trainer.fit(Xtr, ytr, validation=(Xte, yte), epochs=max_epochs, batch_size=batch,
                          seed=seed)
    dt = time.perf_counter() - t0
    acc = history.epochs[-1]["val_acc"]
    return TargetReached(dt, trainer.epoch + 1, float(acc), float(acc) >= target)


def torch_to_target(data: tuple[np.ndarray, ...], sizes: Sequence[int], batch: int,
                    opt: OptSpec, *, target: float, max_epochs: int, seed: int) -> TargetReached:
    import torch

    Xtr, ytr, Xte, yte = data
    t0 = time.perf_counter()
    run = torch_epoch(Xtr, ytr, sizes, batch, opt, seed=seed)
    model = run.model  # type: ignore[attr-defined]
    Xt = torch.from_numpy(Xte)
    acc = 0.0
    for epoch in range(1, max_epochs + 1):
        run()
        model.eval()
        with torch.inference_mode():
            acc = float((model(Xt).argmax(dim=1).numpy() == yte).mean())
        if acc >= target:
            break
    return TargetReached(time.perf_counter() - t0, epoch, acc, acc >= target)


def sklearn_to_target(data: tuple[np.ndarray, ...], sizes: Sequence[int], batch: int,
                      opt: OptSpec, *, target: float, max_epochs: int,
                      seed: int) -> TargetReached:
    Xtr, ytr, Xte, yte = data
    t0 = time.perf_counter()
    clf = _sk_model(sizes, batch, opt, seed)
    classes = np.arange(sizes[-1])
    acc = 0.0
    for epoch in range(1, max_epochs + 1):
        clf.partial_fit(Xtr, ytr, classes=classes)
        acc = float((clf.predict(Xte) == yte).mean())
        if acc >= target:
            break
    return TargetReached(time.perf_counter() - t0, epoch, acc, acc >= target)



def monitor_share(X: np.ndarray, y: np.ndarray, sizes: Sequence[int], batch: int,
                  opt: OptSpec, *, steps: int = 1000, seed: int = 0) -> float:
    """The default Monitor's own cost as a fraction of the rest of training, timed from the
    inside: every hook of the monitor is wrapped with a clock, over one ``fit`` of at least 3
    epochs and ``steps`` steps (so its sampling — every 100 steps, gradient noise every 1000,
    spectra after epochs 1, 2, 4, ... — runs at its real rate, as in a run of that length).

    A difference of two noisy throughputs (monitors on vs off) swings by the machine's noise;
    the time spent inside the monitor's hooks does not."""
    import time

    spent = [0.0]

    class _Timed(nl.Monitor):
        pass

    for hook in ("on_train_begin", "on_epoch_begin", "on_before_update", "on_batch_end",
                 "on_epoch_end"):
        inner = getattr(nl.Monitor, hook)

        def timed(self: Any, *args: Any, _inner: Any = inner) -> None:
            t0 = time.perf_counter()
            _inner(self, *args)
            spent[0] += time.perf_counter() - t0

        setattr(_Timed, hook, timed)
    model = nl.mlp(sizes[0], list(sizes[1:-1]), sizes[-1], activation="relu", rng=seed)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), opt.neuronlab(), monitor=_Timed())
    epochs = max(3, -(-steps // -(-len(X) // batch)))
    t0 = time.perf_counter()
    trainer.fit(X, y, epochs=epochs, batch_size=batch, seed=seed)
    total = time.perf_counter() - t0
    return spent[0] / (total - spent[0])
