"""One example through the network, forward and backward, for the page's step-through view.

:func:`trace_example` runs the model's own layers on one point in inference mode (dropout
is the identity, batch norm uses its running statistics, no random number is drawn), then
the loss and each layer's ``backward`` in reverse, and records what each layer computed:
its output, the gradient arriving at that output (dL/d output), and its parameters with
their gradients. The model's gradients are saved before and restored after, so the training
run sees nothing; the caller runs it where the model is quiet (:mod:`.jobs`).

:func:`parse_trace_request` validates what the page asks for: ``{"point": [x, y, label]}``
(a clicked point) or ``{"index": i}`` (the i-th training example).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from neuronlab.playground.settings import EXTENT, _int_in, _quote, _real

__all__ = ["FORMULAS", "parse_trace_request", "trace_example"]

#: Per layer type: (forward formula, backward formula), as the page's hover shows them.
#: x is the layer's input and y its output; dL/dy is the gradient arriving at the output.
FORMULAS: dict[str, tuple[str, str]] = {
    "linear": ("y = x·W + b",
               "dL/dW = xᵀ·dL/dy;  dL/db = dL/dy;  dL/dx = dL/dy·Wᵀ"),
    "relu": ("y = max(0, x)", "dL/dx = dL/dy · [x > 0]"),
    "leaky_relu": ("y = max(α·x, x)", "dL/dx = dL/dy · (1 if x > 0 else α)"),
    "prelu": ("y = x if x > 0 else α_j·x  (α learned)",
              "dL/dx = dL/dy · (1 if x > 0 else α_j);  dL/dα_j = dL/dy · min(x, 0)"),
    "elu": ("y = x if x > 0 else α·(eˣ − 1)", "dL/dx = dL/dy · (1 if x > 0 else y + α)"),
    "tanh": ("y = tanh(x)", "dL/dx = dL/dy · (1 − y²)"),
    "sigmoid": ("y = σ(x) = 1 / (1 + e⁻ˣ)", "dL/dx = dL/dy · y·(1 − y)"),
    "maxout": ("y_j = max_k (x·W[:, j, k] + b[j, k])",
               "only the winning piece k* of unit j gets dL/dy_j: dL/dW[:, j, k*] = xᵀ·dL/dy_j"),
    "batchnorm": ("y = γ·(x − μ) / √(σ² + ε) + β  (inference: running μ and σ²)",
                  "dL/dx = dL/dy · γ / √(σ² + ε);  dL/dγ = dL/dy · x̂;  dL/dβ = dL/dy"),
    "layernorm": ("y = γ·(x − mean x) / √(var x + ε) + β",
                  "dL/dx = (g − mean g − x̂·mean(g·x̂)) / √(var x + ε),  g = γ·dL/dy"),
    "dropout": ("y = x  (the identity at inference; in training x·mask / (1 − rate))",
                "dL/dx = dL/dy"),
    "gaussian_noise": ("y = x  (the identity at inference; in training x + std·ε)",
                       "dL/dx = dL/dy"),
}
LOSS_FORMULAS: dict[str, tuple[str, str]] = {
    "softmax": ("p = softmax(s);  L = −log p_label", "dL/ds = p − onehot(label)"),
}


def parse_trace_request(raw: Mapping[str, Any], n_classes: int, n_train: int
                        ) -> tuple[float, float, int, int | None]:
    """``(x, y, label, index)`` from the page's request; raises ValueError or TypeError
    naming the field. ``index`` is None for a clicked point."""
    unknown = sorted(set(raw) - {"point", "index"})
    if unknown:
        raise ValueError(f"unknown field(s) {_quote(unknown)}; send either point or index")
    if ("point" in raw) == ("index" in raw):
        raise ValueError("send either point: [x, y, label] or index: a training example's number")
    if "index" in raw:
        return (0.0, 0.0, 0, _int_in("index", raw["index"], 0, n_train - 1))
    p = raw["point"]
    if not isinstance(p, (list, tuple)) or len(p) != 3:
        raise ValueError(f"point must be [x, y, label], got {_quote(p)}")
    return (_real("point.x", p[0], low=-EXTENT, high=EXTENT),
            _real("point.y", p[1], low=-EXTENT, high=EXTENT),
            _int_in("point.label", p[2], 0, n_classes - 1), None)


def _plain(a: Any) -> Any:
    """An array as nested lists of floats, None for NaN or infinity (JSON has neither)."""
    a = np.asarray(a, dtype=np.float64)
    ok = np.isfinite(a)
    if ok.all():
        return a.tolist()
    out = a.astype(object)
    out[~ok] = None
    return out.tolist()


def _kind(layer: Any) -> str:
    name = type(layer).registry_name
    if name == "maxout":
        return "maxout"
    if "W" in layer.params and layer.params["W"].ndim == 2:
        return "dense"
    return "elementwise"


def trace_example(model: Any, loss: Any, x: np.ndarray, label: int) -> dict[str, Any]:
    """Forward and backward of one example through ``model`` (see the module docstring).

    Parameters
    ----------
    model : Sequential
    loss : Loss
        Its class and config are used (a fresh instance: the trainer's own keeps its caches).
    x : ndarray of shape (1, n_in)
    label : int

    Returns
    -------
    dict
        ``{"layers": [{"index", "type", "name", "kind", "formula", "backward", "n_out",
        "output", "grad", "params": {name: {"value", "grad"}}, ("winner")}], "scores",
        "proba", "loss", "loss_formula", "loss_backward", "grad_input", "prediction"}``;
        ``output`` and ``grad`` are lists of n_out numbers (the layer's output and
        dL/d output), ``params`` nested lists in the parameter's shape.
    """
    grads = model.grads
    saved = {k: g.copy() for k, g in grads.items()}
    reader = type(loss).from_config(loss.get_config())
    layers = model.layers
    try:
        model.zero_grad()
        outputs = []
        h = x
        with np.errstate(all="ignore"):  # a diverged network is refused below, by name
            for layer in layers:
                h = layer.forward(h, training=False)
                outputs.append(h)
        if not np.isfinite(h).all():
            raise ValueError("the network's scores for this point are not finite (its weights "
                             "have diverged): reset it")
        y = np.array([label])
        value = reader.forward(h, y)
        proba = reader.predict_proba(h)
        arriving: list[np.ndarray] = [np.empty(0)] * len(layers)
        dout = reader.backward()
        for i in range(len(layers) - 1, -1, -1):
            arriving[i] = dout
            dout = layers[i].backward(dout)
        records = []
        for i, layer in enumerate(layers):
            name = type(layer).registry_name
            forward, backward = FORMULAS.get(name, (type(layer).__name__, ""))
            cfg = layer.get_config()
            if "alpha" in cfg:
                forward = forward.replace("α", f"α ({cfg['alpha']:g})", 1)
            rec: dict[str, Any] = {
                "index": i, "type": name, "name": type(layer).__name__, "kind": _kind(layer),
                "formula": forward, "backward": backward, "n_out": int(outputs[i].shape[1]),
                "output": _plain(outputs[i][0]), "grad": _plain(arriving[i][0]),
                "params": {k: {"value": _plain(v), "grad": _plain(layer.grads[k])}
                           for k, v in layer.params.items()},
            }
            if name == "maxout":
                rec["winner"] = np.asarray(layer.kink_state())[0].astype(int).tolist()
            records.append(rec)
        loss_fwd, loss_bwd = LOSS_FORMULAS.get(type(loss).registry_name, (type(loss).__name__, ""))
        scores = outputs[-1][0]
        return {
            "layers": records, "scores": _plain(scores), "proba": _plain(np.asarray(proba)[0]),
            "loss": _plain(value), "loss_formula": loss_fwd, "loss_backward": loss_bwd,
            "grad_input": _plain(np.asarray(dout)[0]), "prediction": int(np.argmax(scores)),
        }
    finally:
        for k, g in grads.items():
            g[...] = saved[k]
