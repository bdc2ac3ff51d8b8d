"""Export a model's inference graph to ONNX with the ``onnx.helper`` API.

The graph takes ``x`` of shape [N, n_in] (N dynamic) in float32 and returns ``scores`` of
shape [N, n_out]; with ``probabilities=True`` a second output ``probabilities`` reads them as
the loss does (``Softmax`` for softmax cross-entropy, ``Sigmoid`` for sigmoid cross-entropy),
equal to ``model.predict_proba``. Each layer type has one small converter that appends ONNX
nodes; dropout and Gaussian noise are the identity at inference and emit nothing. A fitted
preprocessor that is an affine map (mean-centring, standardising, min-max, PCA, whitening)
becomes the first nodes.

``onnx`` is an optional dependency (``pip install neuronlab[onnx]``); it is imported inside
:func:`export_onnx` so the rest of the library does not need it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from neuronlab._validation import check_positive_int
from neuronlab.io.atomic import atomic_write_bytes
from neuronlab.layers.base import Layer
from neuronlab.layers.sequential import Sequential
from neuronlab.losses import Loss, SigmoidCrossEntropy, SoftmaxCrossEntropy
from neuronlab.prediction import has_probabilities, resolve_loss

__all__ = ["export_onnx"]

MIN_OPSET = 17  # LayerNormalization first appears in opset 17


class _Graph:
    """Collects nodes and initialisers, naming every tensor uniquely by layer index."""

    def __init__(self, helper: Any, numpy_helper: Any, opset: int) -> None:
        self.helper = helper
        self.numpy_helper = numpy_helper
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.n_model_in = 0  # the network's own input width, after any preprocessor

    def const(self, name: str, value: np.ndarray, dtype: Any = np.float32) -> str:
        # float64 models are exported in float32: the graph's input type.
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output


# -- converters: (graph, layer, input name, prefix) -> output name -----------------------
Converter = Callable[[_Graph, Layer, str, str], str]


def _linear(g: _Graph, layer: Layer, x: str, p: str) -> str:
    inputs = [x, g.const(f"{p}.W", layer.params["W"])]
    if "b" in layer.params:
        inputs.append(g.const(f"{p}.b", layer.params["b"].reshape(-1)))
    return g.node("Gemm", inputs, f"{p}.out")


def _unary(op: str, **attr_from_config: str) -> Converter:
    """Converter for an elementwise op whose attributes come from the layer's config."""

    def convert(g: _Graph, layer: Layer, x: str, p: str) -> str:
        cfg = layer.get_config()
        attrs = {onnx_name: float(cfg[key]) for onnx_name, key in attr_from_config.items()}
        return g.node(op, [x], f"{p}.out", **attrs)

    return convert


def _prelu(g: _Graph, layer: Layer, x: str, p: str) -> str:
    # One learned slope per unit: shape (n,) broadcasts over [N, n] (ONNX unidirectional).
    (name,) = layer.params
    slope = layer.params[name].reshape(-1)
    return g.node("PRelu", [x, g.const(f"{p}.slope", slope)], f"{p}.out")


def _batchnorm(g: _Graph, layer: Layer, x: str, p: str) -> str:
    # Inference mode: normalise with the running statistics, as forward(training=False) does.
    eps = float(layer.get_config()["eps"])
    ins = [
        x,
        g.const(f"{p}.gamma", layer.params["gamma"].reshape(-1)),
        g.const(f"{p}.beta", layer.params["beta"].reshape(-1)),
        g.const(f"{p}.running_mean", layer.buffers["running_mean"].reshape(-1)),
        g.const(f"{p}.running_var", layer.buffers["running_var"].reshape(-1)),
    ]
    return g.node("BatchNormalization", ins, f"{p}.out", epsilon=eps)


def _layernorm(g: _Graph, layer: Layer, x: str, p: str) -> str:
    eps = float(layer.get_config()["eps"])
    ins = [
        x,
        g.const(f"{p}.gamma", layer.params["gamma"].reshape(-1)),
        g.const(f"{p}.beta", layer.params["beta"].reshape(-1)),
    ]
    return g.node("LayerNormalization", ins, f"{p}.out", axis=-1, epsilon=eps)


def _maxout(g: _Graph, layer: Layer, x: str, p: str) -> str:
    # W is (n_in, n_out, pieces): one GEMM for all pieces, then the max over the last axis.
    w = layer.params["W"]
    n_in, n_out, pieces = w.shape
    z = g.node("MatMul", [x, g.const(f"{p}.W", w.reshape(n_in, n_out * pieces))], f"{p}.z")
    z = g.node("Add", [z, g.const(f"{p}.b", layer.params["b"].reshape(-1))], f"{p}.zb")
    # Shape value 0 copies the (dynamic) batch dimension.
    shape = g.const(f"{p}.shape", np.array([0, n_out, pieces]), dtype=np.int64)
    z = g.node("Reshape", [z, shape], f"{p}.pieces")
    if g.opset >= 18:  # ReduceMax takes its axes as an input from opset 18 on
        axes = g.const(f"{p}.axes", np.array([2]), dtype=np.int64)
        return g.node("ReduceMax", [z, axes], f"{p}.out", keepdims=0)
    return g.node("ReduceMax", [z], f"{p}.out", axes=[2], keepdims=0)


CONVERTERS: dict[str, Converter | None] = {
    "linear": _linear,
    "relu": _unary("Relu"),
    "sigmoid": _unary("Sigmoid"),
    "tanh": _unary("Tanh"),
    "leaky_relu": _unary("LeakyRelu", alpha="alpha"),
    "prelu": _prelu,
    "elu": _unary("Elu", alpha="alpha"),
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "maxout": _maxout,
    # identity at inference: nothing to emit
    "dropout": None,
    "gaussian_noise": None,
}


# -- preprocessor -----------------------------------------------------------------------
def _affine_map(pre: Any, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Recover (A, c) with ``pre.transform(x) == x @ A + c`` by probing with the unit vectors,
    and verify the map on random points; a non-affine transform raises."""
    probe = np.vstack([np.zeros((1, n_features)), np.eye(n_features)])
    out = np.asarray(pre.transform(probe), dtype=np.float64)
    c = out[0]
    a = out[1:] - c
    test = np.random.default_rng(0).standard_normal((4, n_features))
    got = np.asarray(pre.transform(test), dtype=np.float64)
    if not np.allclose(got, test @ a + c, rtol=1e-6, atol=1e-8):
        raise NotImplementedError(
            f"cannot export preprocessor {type(pre).__name__} to ONNX: it is not an affine map; "
            "export without it (include_preprocessor=False) and apply it before inference"
        )
    return a, c


def _preprocessor_nodes(g: _Graph, pre: Any, x: str, n_features: int) -> str:
    a, c = _affine_map(pre, n_features)
    offset: np.ndarray | None = c
    if a.shape[1] != g.n_model_in:
        raise ValueError(
            f"preprocessor {type(pre).__name__} outputs {a.shape[1]} features, but the model "
            f"expects {g.n_model_in}"
        )
    # Every shipped preprocessor is (x - shift) @ A with shift its first fitted vector (mean
    # or centre). Subtracting first, as transform does, avoids the float32 cancellation of
    # x @ A + c when the data sit far from the origin (pixel values around 100, say).
    shift = next(iter(pre.state_dict().values()), None)
    if (
        isinstance(shift, np.ndarray)
        and shift.shape == (n_features,)
        and np.allclose(-shift @ a, c, rtol=1e-9, atol=1e-12 * (1 + np.abs(c).max()))
    ):
        x = g.node("Sub", [x, g.const("preprocessor.shift", shift)], "preprocessor.centred")
        offset = None
    square = a.shape[0] == a.shape[1]
    if square and np.allclose(a, np.eye(a.shape[0]), rtol=0, atol=1e-12):
        y = x  # mean-centring only (the probe's 1 - m + m can be off by an ulp)
    elif square and np.count_nonzero(a - np.diag(np.diag(a))) == 0:
        # Elementwise (mean-centre, standardise, min-max): Mul, no GEMM.
        y = g.node("Mul", [x, g.const("preprocessor.scale", np.diag(a))], "preprocessor.scaled")
    else:
        y = g.node("MatMul", [x, g.const("preprocessor.A", a)], "preprocessor.projected")
    if offset is None:
        return y
    return g.node("Add", [y, g.const("preprocessor.offset", offset)], "preprocessor.out")


def _n_features_in(pre: Any) -> int:
    for attr in ("n_features_in_", "n_features_in"):
        n = getattr(pre, attr, None)
        if isinstance(n, (int, np.integer)):
            return int(n)
    for v in pre.state_dict().values():
        if isinstance(v, np.ndarray) and v.ndim >= 1:
            return int(v.shape[0])  # the fitted mean / scale / components have D rows
    raise ValueError(f"cannot tell the input width of preprocessor {type(pre).__name__}")


def _input_width(model: Sequential) -> int:
    """The input width: that of the first layer with a fixed one. The layers before it
    (activations, noise) are elementwise, so they keep the width."""
    for layer in model.layers:
        for attr in ("n_in", "n_features", "n_units"):
            n = getattr(layer, attr, None)
            if isinstance(n, (int, np.integer)):
                return int(n)
    raise ValueError("cannot export a model without a layer of fixed input width (n_in)")


# -- probabilities ----------------------------------------------------------------------
def _probability_nodes(g: _Graph, loss: Loss, scores: str) -> tuple[str, list[Any]]:
    """Nodes turning ``scores`` into the loss's probabilities; returns the output name and
    its shape (as ``loss.predict_proba`` gives it)."""
    if isinstance(loss, SoftmaxCrossEntropy):
        return g.node("Softmax", [scores], "probabilities", axis=-1), ["N", "n_out"]
    if isinstance(loss, SigmoidCrossEntropy):
        if loss.multilabel:
            return g.node("Sigmoid", [scores], "probabilities"), ["N", "n_out"]
        p = g.node("Sigmoid", [scores], "probabilities.column")
        flat = g.const("probabilities.shape", np.array([-1]), dtype=np.int64)
        return g.node("Reshape", [p, flat], "probabilities"), ["N"]  # (N,), as predict_proba
    raise NotImplementedError(
        f"cannot export the probabilities of {type(loss).__name__} to ONNX; supported: "
        "SoftmaxCrossEntropy, SigmoidCrossEntropy"
    )


def _probability_loss(model: Sequential, loss: Loss | str | None) -> Loss:
    reader = resolve_loss(model, loss)
    if not has_probabilities(reader):
        raise ValueError(
            f"probabilities=True needs a loss with probabilities ('softmax' or "
            f"'sigmoid_cross_entropy'); the loss is {type(reader).__name__}, which "
            "gives scores only: export without probabilities"
        )
    n_out = model.n_out
    if isinstance(reader, SigmoidCrossEntropy) and not reader.multilabel and n_out not in (None, 1):
        raise ValueError(
            f"a binary SigmoidCrossEntropy reads one output, but the model has {n_out}; "
            "pass SigmoidCrossEntropy(multilabel=True) for attributes"
        )
    return reader


# -- entry point ------------------------------------------------------------------------
def export_onnx(
    model: Sequential,
    path: str | os.PathLike[str],
    *,
    opset: int = 17,
    include_preprocessor: bool = True,
    probabilities: bool = False,
    loss: Loss | str | None = None,
) -> Any:
    """Write the inference graph of ``model`` to an ONNX file.

    Parameters
    ----------
    model : Sequential
        Layers supported: linear, relu, sigmoid, tanh, leaky_relu, prelu, elu, batchnorm
        (running statistics), layernorm, maxout; dropout and gaussian_noise are skipped.
    path : str or os.PathLike
        Destination ``.onnx`` file, written atomically.
    opset : int, default 17
        ONNX opset (>= 17, for LayerNormalization).
    include_preprocessor : bool, default True
        If ``model.preprocessor`` is set (and affine), put it in front of the network so the
        graph takes raw features. Non-affine preprocessors raise NotImplementedError.
    probabilities : bool, default False
        Add a second output ``probabilities`` after ``scores``: ``Softmax`` over the classes
        (float32 [N, n_out]) for softmax cross-entropy, ``Sigmoid`` for sigmoid cross-entropy
        ([N] binary, [N, n_out] multi-label), as ``model.predict_proba`` gives them. A loss
        without probabilities (hinge, regression) raises ValueError.
    loss : Loss or str, optional
        The loss that reads the scores, for ``probabilities``; default ``model.metadata["loss"]``
        (what ``nl.load`` restores), else softmax cross-entropy
        (:func:`neuronlab.prediction.resolve_loss`).

    Returns
    -------
    onnx.ModelProto
        The checked model (input ``x``: float32 [N, n_features], outputs ``scores``: float32
        [N, n_out] and, with ``probabilities``, ``probabilities``), also written to ``path``.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a neuronlab Sequential, got {type(model).__name__}")
    opset = check_positive_int("opset", opset)
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be between {MIN_OPSET} and {newest}, got {opset!r}")
    if not isinstance(probabilities, bool):
        raise TypeError(f"probabilities must be a bool, got {type(probabilities).__name__}")
    reader = _probability_loss(model, loss) if probabilities else None
    n_in = _input_width(model)

    g = _Graph(helper, numpy_helper, opset)
    g.n_model_in = n_in
    x = "x"
    n_features = n_in
    pre = getattr(model, "preprocessor", None) if include_preprocessor else None
    if pre is not None:
        n_features = _n_features_in(pre)
        x = _preprocessor_nodes(g, pre, x, n_features)
    for i, layer in enumerate(model.layers):
        name = type(layer).registry_name
        if name not in CONVERTERS:
            supported = ", ".join(sorted(CONVERTERS))
            raise NotImplementedError(
                f"cannot export layer {i} ({type(layer).__name__}, {name!r}) to ONNX; "
                f"supported layer types: {supported}"
            )
        convert = CONVERTERS[name]
        if convert is not None:
            x = convert(g, layer, x, f"layer{i}")
    g.node("Identity", [x], "scores")

    n_out = model.n_out or "n_out"
    outputs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", n_out])]
    if reader is not None:
        name, shape = _probability_nodes(g, reader, "scores")
        shape = [n_out if d == "n_out" else d for d in shape]
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    graph = helper.make_graph(
        g.nodes,
        "neuronlab",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_features])],
        outputs,
        initializer=g.initializers,
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="neuronlab"
    )
    # The oldest IR version that carries this opset, so older runtimes can read the file.
    proto.ir_version = helper.find_min_ir_version_for(list(proto.opset_import))
    # full_check also runs strict shape inference, which catches a wrong Reshape or GEMM size.
    onnx.checker.check_model(proto, full_check=True)
    atomic_write_bytes(path, proto.SerializeToString())
    return proto
