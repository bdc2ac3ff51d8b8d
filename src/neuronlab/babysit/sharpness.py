"""Sharpness: the top eigenvalue of the loss's Hessian, against the optimizer's 2/η.

Why it matters. On a quadratic with curvature λ, gradient descent ``w ← w − η λ w`` multiplies
the error by (1 − ηλ) each step: it converges when ηλ < 2 and oscillates with growing
amplitude when ηλ > 2. A network's loss is locally a quadratic whose curvatures are the
Hessian's eigenvalues, so the largest one, the *sharpness* λ_max, decides stability: while
λ_max < 2/η the loss decreases steadily; above it the iterates bounce across the valley
along the sharpest direction and the loss oscillates or blows up. Cohen et al. (2021,
"Gradient Descent on Neural Networks Typically Occurs at the Edge of Stability") observed
that full-batch training drives λ_max up until it reaches 2/η and then hovers there.

Measuring λ_max (:func:`top_hessian_eigenvalue`). Power iteration: repeat ``v ← Hv / ‖Hv‖``;
the Rayleigh quotient ``vᵀHv`` converges to the eigenvalue of largest *magnitude*. Each
Hessian-vector product is a central difference of two gradients::

    Hv ≈ (∇L(w + h v̂) − ∇L(w − h v̂)) / (2h) · ‖v‖,      v̂ = v / ‖v‖

with h = √ε₆₄ · max(1, ‖w‖) (ε₆₄ the float64 machine epsilon): a relative step of 1.5e-8
keeps the truncation error negligible and the rounding error of the difference near 1e-8 of
the gradient. It runs on a float64 copy of the model (:func:`~.probe.float64_copy`): the
original's weights are never written, and a float32 model's estimate is not rounding noise.
The objective is the data loss plus the regulariser's penalty, in inference mode, on the given
rows (the Hessian of that minibatch's loss).

Kinks. A ReLU network's loss is piecewise smooth: its gradient jumps where a pre-activation
crosses 0 (a hinge loss's where a margin does). A kink crossed between w − hv̂ and w + hv̂ puts
a spike of size 1/h into the difference, so each layer's ``kink_state()`` (and the loss's) is
compared between the two points, and h is divided by 16 until no kink is crossed (at most
:data:`KINK_RETRIES` times, then the last difference is used). That cannot help where a
pre-activation is *exactly* 0 at w (an all-zero input row while the biases are still 0: any
h crosses it), so the Hessian is measured at a point displaced from w by a seeded random step
of norm 16·h (a relative 2.4e-7, changing λ by about as much), where no pre-activation is
exactly 0. On the smooth pieces this is the Hessian autodiff would give (ReLU'' = 0).

If the dominant eigenvalue is negative (negative curvature dominates, a saddle region), the
iteration is run again on H − sI with the shift s = that eigenvalue: H − sI is positive
semi-definite and its top eigenvalue is λ_max − s. So the function always returns the
*algebraically* largest eigenvalue λ_max, which is the one stability concerns.

The thresholds (:func:`stability_threshold`), on the quadratic ½λw² (g = λw), a = ηλ:

* SGD, ``w ← w − ηg``: w_{t+1} = (1 − a) w_t, stable iff a < 2: **λ < 2/η**.
* Momentum (this library's ``v ← μv − ηg; w ← w + v``): w_{t+1} = (1 + μ − a) w_t − μ w_{t−1}.
  The roots of z² − (1 + μ − a) z + μ lie inside the unit circle iff (Jury) μ < 1 and
  |1 + μ − a| < 1 + μ, i.e. **λ < (2 + 2μ)/η** (3.8/η at μ = 0.9).
* Nesterov (this library's ``v ← μv − ηg; w ← w + μv − ηg``): v_{t+1} = μv_t − a w_t and
  w_{t+1} = (1 − a) w_t + μ v_{t+1} give w_{t+1} = (1 + μ)(1 − a) w_t − μ(1 − a) w_{t−1}. With
  p(z) = z² + bz + c, b = −(1 + μ)(1 − a), c = μ(1 − a): p(1) = a > 0 always, |c| < 1 for
  a < 1 + 1/μ, and p(−1) = 1 + (1 + 2μ)(1 − a) > 0 iff a < (2 + 2μ)/(1 + 2μ), the binding
  one: **λ < (2 + 2μ)/((1 + 2μ)η)** (1.36/η at μ = 0.9: Nesterov is less tolerant).
* Adam / AdamW: with the preconditioner P = diag(√v̂ + ε) frozen, ``m ← β₁m + (1 − β₁)g;
  w ← w − η m/P`` is heavy-ball momentum β₁ with step η(1 − β₁) on the preconditioned
  problem, whose curvatures are the eigenvalues of P^{-1/2} H P^{-1/2} (the same as P⁻¹H).
  So the **preconditioned sharpness** must stay below **(2 + 2β₁)/((1 − β₁)η)** (38/η at
  β₁ = 0.9; Cohen et al. 2022, "Adaptive Gradient Methods at the Edge of Stability"). v̂ is
  the optimizer's state ``v / (1 − β₂ᵗ)`` after its last step (bias correction of m ignored:
  it tends to 1).
* RMSprop, ``w ← w − ηg/(√cache + ε)``: P = √cache + ε, threshold 2/η.
* Adagrad, ``w ← w − ηg/(√cache + ε)``: P = √cache + ε (the cache is a sum, so P only grows),
  threshold 2/η.
* L-BFGS: no learning rate, a line search picks each step: not applicable.

Decoupled weight decay (``w ← (1 − η·wd) w`` after the step) raises these bounds by about wd
(for SGD: (1 − η·wd)(1 − ηλ) must stay above −1, λ < 2/η + wd + O(η·wd²)) and is ignored; an
L2 regulariser is part of the objective and so of H. Clipping is ignored.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab.babysit.findings import Finding
from neuronlab.babysit.probe import float64_copy, layers_of, model_rows, run_probe
from neuronlab.babysit.runview import number
from neuronlab.optim.adagrad import Adagrad
from neuronlab.optim.adam import Adam
from neuronlab.optim.lbfgs import LBFGS
from neuronlab.optim.momentum import Momentum
from neuronlab.optim.nesterov import Nesterov
from neuronlab.optim.rmsprop import RMSprop
from neuronlab.optim.sgd import SGD
from neuronlab.threads import blas_threads, limit_blas

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "EOS_FACTOR",
    "KINK_RETRIES",
    "SHARPNESS_RECORD_KEYS",
    "edge_of_stability_rule",
    "plot_sharpness",
    "power_iteration",
    "sharpness_record",
    "stability_threshold",
    "top_hessian_eigenvalue",
]

EOS_FACTOR = 1.0
"""The rule speaks when the latest sharpness exceeds this multiple of its threshold."""
KINK_RETRIES = 3
"""Times the difference step h is divided by 16 when the two points straddle a kink."""
_KINK_SHRINK = 16.0
_JITTER = 16.0  # the measuring point's displacement, in units of the difference step h

#: The keys of the records :func:`sharpness_record` writes (``kind = "sharpness"``).
SHARPNESS_RECORD_KEYS = frozenset({"step", "kind", "layer", "type", "top_eigenvalue",
                                   "threshold", "lr", "preconditioned"})


# -- power iteration ---------------------------------------------------------------------------
def _dominant(matvec: Callable[[np.ndarray], np.ndarray], v: np.ndarray, iters: int,
              tol: float) -> float:
    """Rayleigh quotient of the dominant (largest-magnitude) eigenvector by power iteration."""
    v = v / np.linalg.norm(v)
    lam = prev = math.nan
    for _ in range(iters):
        hv = matvec(v)
        lam = float(v @ hv)
        norm = float(np.linalg.norm(hv))
        if not (norm > 0 and math.isfinite(norm)):
            return lam if math.isfinite(lam) else math.nan  # Hv = 0: v is in the null space
        v = hv / norm
        if abs(lam - prev) <= tol * abs(lam):
            break
        prev = lam
    return lam


def power_iteration(
    matvec: Callable[[np.ndarray], np.ndarray], v0: np.ndarray, *, iters: int = 20,
    tol: float = 1e-3, rng: np.random.Generator | None = None,
) -> float:
    """The algebraically largest eigenvalue λ_max of a symmetric operator.

    Power iteration ``v ← Av / ‖Av‖`` from ``v0`` until the Rayleigh quotient ``vᵀAv`` changes
    by less than ``tol`` relative (or ``iters`` products). That finds the eigenvalue of
    largest magnitude; when it is negative, the iteration is repeated on ``A − sI`` (s that
    eigenvalue), whose eigenvalues λ − s are all ≥ 0, the largest being λ_max − s, from a
    fresh start drawn from ``rng`` (the eigenvector found is orthogonal to the one wanted).
    The error of the Rayleigh quotient shrinks like (λ₂/λ₁)^{2k} after k products.

    Parameters
    ----------
    matvec : callable ndarray (d,) -> ndarray (d,)
        v ↦ Av, A symmetric.
    v0 : ndarray of shape (d,)
        Start vector (not all zero).
    iters : int
        Products at most per run (a negative dominant eigenvalue costs a second run).
    tol : float
        Relative change of the Rayleigh quotient at which to stop.
    rng : numpy Generator, optional
        For the second start; default ``np.random.default_rng(0)``.
    """
    lam = _dominant(matvec, v0, iters, tol)
    if not lam < 0:
        return lam
    s = lam
    start = (rng or np.random.default_rng(0)).standard_normal(v0.shape)
    top = _dominant(lambda v: matvec(v) - s * v, start, iters, tol)
    return top + s if math.isfinite(top) else s


# -- Hessian-vector products on a float64 twin ------------------------------------------------
class _Objective:
    """Gradients of loss + penalty of a private float64 copy of the model, as flat vectors."""

    def __init__(self, model: Any, loss: Any, X: Any, y: Any, regularizer: Any) -> None:
        self.twin = float64_copy(model)
        self.layers = layers_of(self.twin)
        self.loss = copy.deepcopy(loss)
        self.reg = None if regularizer is None else copy.deepcopy(regularizer)
        self.X = model_rows(self.twin, X)
        self.y = y
        self.arrays = [(k, p) for k, p in self.twin.params.items()]
        self.base = np.concatenate([p.reshape(-1) for _, p in self.arrays])
        self.h0 = math.sqrt(float(np.finfo(np.float64).eps)) * max(
            1.0, float(np.linalg.norm(self.base)))

    def displace(self, rng: np.random.Generator) -> None:
        """Move the measuring point by a random step of norm ``JITTER × h0`` (off any kink
        it sits exactly on; module docstring)."""
        r = rng.standard_normal(self.base.size)
        self.base = self.base + (_JITTER * self.h0 / float(np.linalg.norm(r))) * r
        self.set_weights(self.base)

    def set_weights(self, flat: np.ndarray) -> None:
        """Copy ``flat`` into the twin's parameters."""
        start = 0
        for _, p in self.arrays:
            stop = start + p.size
            p[...] = flat[start:stop].reshape(p.shape)
            start = stop

    def gradient(self) -> tuple[np.ndarray, list[Any]]:
        """The flat objective gradient at the twin's weights, and the kink states seen."""
        pr = run_probe(self.twin, self.loss, self.X, self.y, self.reg)
        grads = pr.objective_grads()
        kinks = [layer.kink_state() for layer in self.layers] + [self.loss.kink_state()]
        return np.concatenate([grads[k].reshape(-1) for k, _ in self.arrays]), kinks

    def hvp(self, d: np.ndarray) -> np.ndarray:
        """H d by a central difference along d̂, kinks avoided (see the module docstring)."""
        norm = float(np.linalg.norm(d))
        if norm == 0:
            return np.zeros_like(d)
        unit, h = d / norm, self.h0
        for attempt in range(KINK_RETRIES + 1):
            self.set_weights(self.base + h * unit)
            g_plus, k_plus = self.gradient()
            self.set_weights(self.base - h * unit)
            g_minus, k_minus = self.gradient()
            same = all((a is None and b is None) or (a is not None and b is not None
                                                     and np.array_equal(a, b))
                       for a, b in zip(k_plus, k_minus))
            if same or attempt == KINK_RETRIES:
                break
            h /= _KINK_SHRINK
        self.set_weights(self.base)  # a copy back, not a subtraction: exactly the point
        hv: np.ndarray = (g_plus - g_minus) * (norm / (2.0 * h))
        return hv


def _flat_preconditioner(arrays: list[tuple[str, np.ndarray]],
                         preconditioner: dict[str, Any]) -> np.ndarray:
    missing = sorted({k for k, _ in arrays} - set(preconditioner))
    if missing:
        raise ValueError(f"preconditioner has no entry for parameters {missing}")
    parts = []
    for k, p in arrays:
        d = np.broadcast_to(np.asarray(preconditioner[k], dtype=np.float64), p.shape)
        if not (np.isfinite(d).all() and (d > 0).all()):
            raise ValueError(f"preconditioner[{k!r}] must be positive and finite")
        parts.append(d.reshape(-1))
    return np.concatenate(parts)


def top_hessian_eigenvalue(
    model: Any, loss: Any, X: Any, y: Any, regularizer: Any = None, *, iters: int = 20,
    tol: float = 1e-3, seed: int = 0, preconditioner: dict[str, Any] | None = None,
) -> float:
    """The largest eigenvalue λ_max of the Hessian of loss + penalty on rows ``X``, ``y``.

    Power iteration on finite-difference Hessian-vector products on a float64 copy of the model
    in inference mode (module docstring): the model, its gradients and every random generator
    are left untouched. Cost: 2 gradient evaluations on the rows per product, at most
    ``iters`` products (twice that when negative curvature dominates), plus kink retries.

    Parameters
    ----------
    model : Sequential
    loss : Loss
    X : ndarray of shape (n, n_features)
    y : ndarray of shape (n,) or (n, n_outputs)
    regularizer : object with ``loss(model)`` and ``add_grad(model)``, optional
    iters : int, default 20
        Hessian-vector products at most.
    tol : float, default 1e-3
        Stop when the Rayleigh quotient changes by less than this, relative.
    seed : int, default 0
        Seeds the start vector (its own ``np.random.default_rng(seed)``).
    preconditioner : dict of str to ndarray, optional
        A positive diagonal P per parameter (dotted names, each broadcastable to the
        parameter's shape). Then the result is λ_max(P^{-1/2} H P^{-1/2}), which has the
        eigenvalues of P⁻¹H: the sharpness an adaptive optimizer with that P feels.

    Returns
    -------
    float
        λ_max (algebraically largest; NaN if the gradients are not finite).
    """
    if isinstance(iters, bool) or not isinstance(iters, (int, np.integer)) or iters < 1:
        raise ValueError(f"iters must be a positive integer, got {iters!r}")
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(f"tol must be > 0, got {tol!r}")
    obj = _Objective(model, loss, X, y, regularizer)
    rng = np.random.default_rng(seed)
    v0 = rng.standard_normal(obj.base.size)
    obj.displace(rng)
    matvec: Callable[[np.ndarray], np.ndarray] = obj.hvp
    if preconditioner is not None:
        scale = 1.0 / np.sqrt(_flat_preconditioner(obj.arrays, preconditioner))

        def preconditioned(u: np.ndarray) -> np.ndarray:  # P^{-1/2} H P^{-1/2} u
            out: np.ndarray = scale * obj.hvp(scale * u)
            return out

        matvec = preconditioned

    # the thread policy of a fit also outside one: BLAS threads spinning on these small
    # products made a 64-64-10 estimate 100x slower on a busy machine
    with np.errstate(all="ignore"), limit_blas(blas_threads(model, len(obj.X))):
        return power_iteration(matvec, v0, iters=iters, tol=tol, rng=rng)


# -- thresholds --------------------------------------------------------------------------------
def _bound(optimizer: Any, lr: float) -> tuple[float | None, dict[str, np.ndarray] | None, bool]:
    """(threshold, preconditioner, adaptive): adaptive rules have a preconditioner; None for it
    before their first step (no state yet)."""
    eta = float(lr)
    if not (eta >= 0 and math.isfinite(eta)):
        raise ValueError(f"lr must be >= 0 and finite, got {lr!r}")

    def over(c: float) -> float:
        return c / eta if eta > 0 else math.inf

    if isinstance(optimizer, LBFGS):
        return None, None, False
    if isinstance(optimizer, Nesterov):
        mu = float(optimizer.momentum)
        return over((2 + 2 * mu) / (1 + 2 * mu)), None, False
    if isinstance(optimizer, Momentum):
        return over(2 + 2 * float(optimizer.momentum)), None, False
    if isinstance(optimizer, SGD):
        return over(2.0), None, False
    if isinstance(optimizer, (Adam, RMSprop, Adagrad)):
        slot = "v" if isinstance(optimizer, Adam) else "cache"
        state, t = optimizer.state, int(optimizer.t)
        if t < 1 or not state or any(slot not in s for s in state.values()):
            return None, None, True
        eps = float(optimizer.eps)
        if isinstance(optimizer, Adam):
            b1 = float(optimizer.beta1)
            correction = 1.0 - float(optimizer.beta2) ** t
            pre = {k: np.sqrt(s["v"].astype(np.float64) / correction) + eps
                   for k, s in state.items()}
            return over((2 + 2 * b1) / (1 - b1)), pre, True
        pre = {k: np.sqrt(s["cache"].astype(np.float64)) + eps for k, s in state.items()}
        return over(2.0), pre, True
    return None, None, False


def stability_threshold(
    optimizer: Any, lr: float
) -> tuple[float | None, dict[str, np.ndarray] | None]:
    """The edge-of-stability bound on the (preconditioned) sharpness for ``optimizer`` at
    learning rate ``lr``, and the preconditioner it applies to.

    ===================  =====================================  ================================
    optimizer            threshold                               preconditioner P (diagonal)
    ===================  =====================================  ================================
    SGD                  2/η                                     None
    Momentum (μ)         (2 + 2μ)/η                              None
    Nesterov (μ)         (2 + 2μ)/((1 + 2μ)η)                    None
    Adam, AdamW (β₁)     (2 + 2β₁)/((1 − β₁)η)  (38/η at 0.9)    √(v/(1 − β₂ᵗ)) + ε
    RMSprop              2/η                                     √cache + ε
    Adagrad              2/η                                     √cache + ε
    L-BFGS, others       None (not applicable)                   None
    ===================  =====================================  ================================

    Derivations on a quadratic in the module docstring. ``lr = 0`` gives ``math.inf``. An
    adaptive optimizer before its first step has no preconditioner yet: (None, None).

    Parameters
    ----------
    optimizer : Optimizer
        The run's optimizer; an adaptive one is read at its current state.
    lr : float
        The learning rate η of the step (>= 0, finite).

    Returns
    -------
    threshold : float or None
    preconditioner : dict of str to ndarray (float64, by parameter name) or None

    Raises
    ------
    ValueError
        If ``lr`` is negative or not finite.

    Examples
    --------
    >>> from neuronlab.optim import SGD, Momentum
    >>> stability_threshold(SGD(lr=0.1), 0.1)
    (20.0, None)
    >>> round(stability_threshold(Momentum(lr=0.1, momentum=0.9), 0.1)[0], 6)  # (2 + 2·0.9) / 0.1
    38.0
    """
    threshold, pre, _ = _bound(optimizer, lr)
    return threshold, pre


def sharpness_record(
    model: Any, loss: Any, optimizer: Any, lr: float, X: Any, y: Any, regularizer: Any = None,
    step: int = 0, *, iters: int = 20, tol: float = 1e-3, seed: int = 0,
) -> dict[str, Any]:
    """Measure the sharpness the optimizer feels and its threshold, as one flat record::

        {"step": 400, "kind": "sharpness", "layer": "", "type": "", "top_eigenvalue": 41.3,
         "threshold": 38.0, "lr": 0.05, "preconditioned": false}

    ``top_eigenvalue`` is λ_max of the objective's Hessian on the rows, preconditioned by the
    optimizer's P when it has one (``"preconditioned": true``, Adam/RMSprop/Adagrad); it is
    compared with ``threshold`` from :func:`stability_threshold`. ``None`` for what is not
    defined: the threshold of L-BFGS; both for an adaptive optimizer before its first step
    (no preconditioner yet, nothing comparable to measure); non-finite numbers.

    Parameters
    ----------
    model : Sequential
        The network, at the weights to measure (left untouched).
    loss : Loss
        The data loss.
    optimizer : Optimizer
        The run's optimizer: its rule gives the threshold and, for an adaptive one, the
        preconditioner.
    lr : float
        The learning rate of the step (>= 0, finite).
    X : ndarray of shape (n, n_features)
        The rows the Hessian is measured on.
    y : ndarray of shape (n,) or (n, n_outputs)
        Their targets.
    regularizer : object with ``loss(model)`` and ``add_grad(model)``, optional
        Its penalty is part of the objective.
    step : int, default 0
        The step written into the record.
    iters : int, default 20
        Hessian-vector products at most (:func:`top_hessian_eigenvalue`).
    tol : float, default 1e-3
        Relative change of the Rayleigh quotient at which the iteration stops.
    seed : int, default 0
        Seeds the start vector.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        If ``lr`` is negative or not finite, or ``iters`` / ``tol`` is invalid.
    """
    threshold, pre, adaptive = _bound(optimizer, lr)
    top: float | None = None
    if not (adaptive and pre is None):
        top = top_hessian_eigenvalue(model, loss, X, y, regularizer, iters=iters, tol=tol,
                                     seed=seed, preconditioner=pre)
    return {"step": int(step), "kind": "sharpness", "layer": "", "type": "",
            "top_eigenvalue": number(top), "threshold": number(threshold), "lr": number(float(lr)),
            "preconditioned": bool(adaptive)}


def _sharpness_records(obj: Any) -> list[dict[str, Any]]:
    if isinstance(obj, dict) or hasattr(obj, "epochs"):
        from neuronlab.plots._base import as_records

        obj = as_records(obj).monitor
    if not isinstance(obj, Iterable):
        raise TypeError(f"expected monitor records or a History, got {type(obj).__name__}")
    return sorted((r for r in obj if isinstance(r, dict) and r.get("kind") == "sharpness"),
                  key=lambda r: int(r["step"]))


# -- the rule ----------------------------------------------------------------------------------
def edge_of_stability_rule(records: Any) -> Finding | None:
    """A warning when the latest measured sharpness exceeds :data:`EOS_FACTOR` × its threshold.

    Parameters
    ----------
    records : list of dict, History or history dict
        Monitor records; ``kind = "sharpness"`` ones are read.
    """
    recs = [r for r in _sharpness_records(records)
            if r.get("top_eigenvalue") is not None and r.get("threshold") is not None]
    if not recs:
        return None
    last = recs[-1]
    lam, thr, lr = float(last["top_eigenvalue"]), float(last["threshold"]), last.get("lr")
    if not (thr > 0 and lam > EOS_FACTOR * thr):
        return None
    above = [int(r["step"]) for r in recs
             if float(r["top_eigenvalue"]) > EOS_FACTOR * float(r["threshold"])]
    what = "preconditioned sharpness λ_max(P⁻¹H)" if last.get("preconditioned") else \
        "sharpness (top Hessian eigenvalue)"
    evidence: dict[str, Any] = {"top_eigenvalue": lam, "threshold": thr, "ratio": lam / thr,
                                "lr": lr, "preconditioned": bool(last.get("preconditioned")),
                                "steps_above": above,
                                "steps": [int(recs[0]["step"]), int(last["step"])]}
    action = "lower the learning rate"
    if lr is not None:
        safe = float(lr) * thr / lam  # every threshold scales as 1/lr
        evidence["lr_below"] = safe
        action += f" below {safe:.3g} (the threshold scales as 1/lr, so lr·{thr:.3g}/{lam:.3g})"
    action += ("; or use a warmup and a decaying schedule, or more momentum (for SGD it raises "
               "the bound to (2+2μ)/lr); batch norm and a smaller initialisation lower the "
               "sharpness")
    return Finding(
        "edge_of_stability", "warning",
        f"at step {last['step']} the {what} is {lam:.3g}, {lam / thr:.3g}x the stability "
        f"threshold {thr:.3g} for lr {lr}: along the sharpest direction each step overshoots "
        f"the valley, so the loss oscillates or grows (the learning rate is too high for this "
        f"curvature); above the threshold at {len(above)} of {len(recs)} measurements",
        evidence, action)


# -- the plot ----------------------------------------------------------------------------------
def plot_sharpness(records: Any, *, ax: Axes | None = None) -> Figure:
    """The top Hessian eigenvalue over steps with the stability threshold (log y).

    The threshold is drawn as a dashed step line (it moves with a learning-rate schedule).
    Negative or missing eigenvalues are not drawn.

    Parameters
    ----------
    records : list of dict, History or history dict
        Monitor records; ``kind = "sharpness"`` ones are drawn.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from neuronlab.plots._base import _axes, _empty, _marks

    recs = _sharpness_records(records)
    fig, ax = _axes(ax)
    pts = [(int(r["step"]), float(r["top_eigenvalue"])) for r in recs
           if r.get("top_eigenvalue") is not None and float(r["top_eigenvalue"]) > 0]
    thr = [(int(r["step"]), float(r["threshold"])) for r in recs if r.get("threshold") is not None]
    pre = any(r.get("preconditioned") for r in recs)
    if pts:
        s, v = zip(*pts)
        ax.plot(s, v, color="C0", label="λ_max(P⁻¹H)" if pre else "λ_max(H)", **_marks(len(s)))
    if thr:
        s, v = zip(*thr)
        ax.step(s, v, where="post", color="C3", ls="--", lw=1.0, label="stability threshold")
    ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("step")
    ax.set_ylabel("top Hessian eigenvalue")
    ax.set_title("Sharpness vs. the stability threshold")
    if pts or thr:
        ax.legend(loc="best", fontsize="x-small")
    else:
        _empty(ax, "no sharpness measurements")
    return fig
