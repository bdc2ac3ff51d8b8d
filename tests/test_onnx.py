"""ONNX export: every layer type, checked against onnx's reference evaluator to 1e-5; the
probabilities output against model.predict_proba with onnxruntime."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.registry import LAYERS

onnx = pytest.importorskip("onnx")
from onnx.reference import ReferenceEvaluator

TOL = 1e-5


def randomise(model: nl.Sequential, rng: np.random.Generator) -> nl.Sequential:
    """Move every parameter and buffer off its initial value (gamma = 1, beta = 0, running
    var = 1, PReLU slope 0.25, ...) so a converter that swaps or drops one is caught."""
    for k, v in {**model.params, **model.buffers}.items():
        noise = rng.standard_normal(v.shape)
        v[...] = np.abs(noise) + 0.5 if k.endswith("running_var") else v + 0.5 * noise
    return model


def networks(dtype) -> dict[str, nl.Sequential]:
    kw = {"dtype": dtype}
    return {
        "classic": nl.Sequential(
            [
                nl.Linear(7, 9, rng=1, **kw),
                nl.ReLU(),
                nl.Linear(9, 8, rng=2, **kw),
                nl.Sigmoid(),
                nl.Linear(8, 6, rng=3, **kw),
                nl.Tanh(),
                nl.Linear(6, 4, rng=4, **kw),
            ]
        ),
        "rectifiers": nl.Sequential(
            [
                nl.Linear(7, 9, rng=1, **kw),
                nl.LeakyReLU(alpha=0.1),
                nl.Linear(9, 8, rng=2, **kw),
                nl.PReLU(8, **kw),
                nl.Linear(8, 6, rng=3, **kw),
                nl.ELU(alpha=0.7),
                nl.Linear(6, 4, rng=4, **kw),
            ]
        ),
        "normalised": nl.Sequential(
            [
                nl.GaussianNoise(0.3, rng=0),
                nl.Linear(7, 9, bias=None, rng=1, **kw),  # a Gemm without C
                nl.BatchNorm(9, eps=1e-3, **kw),
                nl.ReLU(),
                nl.Dropout(0.5, rng=0),
                nl.Maxout(9, 6, pieces=3, rng=2, **kw),
                nl.LayerNorm(6, **kw),
                nl.Linear(6, 4, rng=3, **kw),
            ]
        ),
    }


def reference(proto, x: np.ndarray) -> np.ndarray:
    (scores,) = ReferenceEvaluator(proto).run(None, {"x": x})
    return scores


def test_the_networks_cover_every_layer_type():
    # A new layer type needs a converter and a place in these networks.
    used = {type(layer).registry_name for model in networks(np.float32).values() for layer in model}
    assert used == set(LAYERS.names())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["classic", "rectifiers", "normalised"])
def test_export_matches_inference(tmp_path, rng, name, dtype):
    model = randomise(networks(dtype)[name], rng)
    path = tmp_path / f"{name}.onnx"
    proto = nl.export_onnx(model, path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    for n in (1, 13):  # the batch dimension is dynamic
        x = rng.standard_normal((n, 7)).astype(np.float32)
        got = reference(proto, x)
        assert got.dtype == np.float32 and got.shape == (n, 4)
        np.testing.assert_allclose(
            got, model.forward(x.astype(dtype), training=False), rtol=TOL, atol=TOL
        )


def test_graph_signature(tmp_path):
    model = nl.mlp(5, [4], 3, activation="maxout", batchnorm=True, dropout=0.2, rng=0)
    proto = nl.export_onnx(model, tmp_path / "m.onnx")
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "x" and out.name == "scores"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["N", 5]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N", 3]
    assert proto.opset_import[0].version == 17
    ops = [n.op_type for n in proto.graph.node]
    assert (
        "Dropout" not in ops
        and ops.count("ReduceMax") == 1
        and ops.count("BatchNormalization") == 1
    )


def test_newer_opset_uses_reduce_max_axes_input(tmp_path, rng):
    model = randomise(networks(np.float32)["normalised"], rng)
    proto = nl.export_onnx(model, tmp_path / "m.onnx", opset=18)
    x = rng.standard_normal((6, 7)).astype(np.float32)
    np.testing.assert_allclose(reference(proto, x), model.forward(x), rtol=TOL, atol=TOL)


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("mean_center", {}),
        ("standardize", {}),
        ("minmax", {}),
        ("pca", {"n_components": 4}),
        ("pca", {"whiten": True}),
        ("zca", {}),
    ],
)
def test_affine_preprocessor_becomes_the_first_nodes(tmp_path, rng, name, config):
    from neuronlab.registry import PREPROCESSORS

    # Data far from the origin, as raw pixel values are: the graph must centre before scaling.
    X = rng.standard_normal((60, 7)) @ rng.standard_normal((7, 7)) * 20 + 100
    pre = PREPROCESSORS.create(name, **config).fit(X)
    width = pre.transform(X[:1]).shape[1]
    model = randomise(nl.mlp(width, [8], 3, activation="prelu", batchnorm=True, rng=0), rng)
    model.preprocessor = pre
    proto = nl.export_onnx(model, tmp_path / "m.onnx")
    assert [
        d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim
    ] == ["N", 7]
    x = X[:9].astype(np.float32)
    expected = model.forward(pre.transform(X[:9]), training=False)
    np.testing.assert_allclose(reference(proto, x), expected, rtol=TOL, atol=TOL)
    # Without the preprocessor the graph takes already-transformed features.
    bare = nl.export_onnx(model, tmp_path / "bare.onnx", include_preprocessor=False)
    z = pre.transform(X[:9]).astype(np.float32)
    np.testing.assert_allclose(reference(bare, z), model.forward(z), rtol=TOL, atol=TOL)


class ShiftedProjection:
    """Affine but not of the (x - mean) @ A form: exported as MatMul + Add."""

    n_features_in_ = 4

    def __init__(self, rng):
        self.A = rng.standard_normal((4, 3))
        self.c = rng.standard_normal(3)

    def transform(self, X):
        return X @ self.A + self.c

    def state_dict(self):
        return {}


def test_general_affine_preprocessor(tmp_path, rng):
    pre = ShiftedProjection(rng)
    model = randomise(nl.mlp(3, [5], 2, activation="elu", rng=0), rng)
    model.preprocessor = pre
    proto = nl.export_onnx(model, tmp_path / "m.onnx")
    assert [n.op_type for n in proto.graph.node][:2] == ["MatMul", "Add"]
    x = rng.standard_normal((6, 4)).astype(np.float32)
    expected = model.forward(pre.transform(x.astype(np.float64)))
    np.testing.assert_allclose(reference(proto, x), expected, rtol=TOL, atol=TOL)


class SquashingPreprocessor:
    """Not affine (tanh), so it cannot be written as Sub/Mul/MatMul nodes."""

    n_features_in_ = 4

    def transform(self, X):
        return np.tanh(X)

    def state_dict(self):
        return {}


class Square(nl.Layer):
    """A layer with no registry name and no converter."""

    def forward(self, x, *, training=False):
        return x * x


def test_clear_errors(tmp_path):
    model = nl.Sequential([nl.Linear(4, 3, rng=0)])
    model.preprocessor = SquashingPreprocessor()
    with pytest.raises(NotImplementedError, match="not an affine map"):
        nl.export_onnx(model, tmp_path / "m.onnx")
    nl.export_onnx(model, tmp_path / "m.onnx", include_preprocessor=False)
    model.preprocessor = nl.PCA(2).fit(np.random.default_rng(0).standard_normal((10, 4)))
    with pytest.raises(ValueError, match="PCA outputs 2 features, but the model expects 4"):
        nl.export_onnx(model, tmp_path / "pca.onnx")

    with pytest.raises(
        NotImplementedError, match=r"layer 1 \(Square.*supported layer types: .*linear"
    ):
        nl.export_onnx(nl.Sequential([nl.Linear(4, 3), Square()]), tmp_path / "sq.onnx")
    with pytest.raises(ValueError, match="opset must be between 17 and"):
        nl.export_onnx(nl.Sequential([nl.Linear(4, 3)]), tmp_path / "m.onnx", opset=13)
    with pytest.raises(TypeError, match="opset must be an integer"):
        nl.export_onnx(nl.Sequential([nl.Linear(4, 3)]), tmp_path / "m.onnx", opset="17")
    with pytest.raises(ValueError, match="without a layer of fixed input width"):
        nl.export_onnx(nl.Sequential([nl.ReLU(), nl.Tanh()]), tmp_path / "r.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # failures write nothing


def test_onnx_is_imported_only_by_export():
    code = "import sys, neuronlab; print('onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- probabilities, checked with onnxruntime ---------------------------------------------
def run_ort(path, x: np.ndarray) -> dict[str, np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"x": x})))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_probabilities_match_predict_proba(tmp_path, rng, dtype):
    X = rng.standard_normal((40, 7)) * 20 + 100
    model = randomise(nl.mlp(7, [9], 4, batchnorm=True, dtype=dtype, rng=0), rng)
    model.preprocessor = nl.Standardize().fit(X)
    model.metadata = {"loss": "softmax"}  # what a training run saves and nl.load restores
    proto = nl.export_onnx(model, tmp_path / "m.onnx", probabilities=True)
    assert [o.name for o in proto.graph.output] == ["scores", "probabilities"]
    assert [n.op_type for n in proto.graph.node][-1] == "Softmax"
    x = X[:13].astype(np.float32)
    out = run_ort(tmp_path / "m.onnx", x)
    assert out["probabilities"].shape == (13, 4)
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(x), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(out["scores"], model.decision_function(x), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1, rtol=TOL)


def test_probabilities_default_to_softmax_and_take_a_loss(tmp_path, rng):
    model = randomise(nl.mlp(7, [9], 3, rng=0), rng)  # no metadata: softmax
    x = rng.standard_normal((6, 7)).astype(np.float32)
    nl.export_onnx(model, tmp_path / "d.onnx", probabilities=True)
    got = run_ort(tmp_path / "d.onnx", x)["probabilities"]
    np.testing.assert_allclose(got, model.predict_proba(x), rtol=TOL, atol=TOL)
    proto = nl.export_onnx(
        model, tmp_path / "s.onnx", probabilities=True, loss="sigmoid_cross_entropy"
    )
    assert [n.op_type for n in proto.graph.node][-1] == "Sigmoid"
    got = run_ort(tmp_path / "s.onnx", x)["probabilities"]  # three attributes
    expected = model.predict_proba(x, loss="sigmoid_cross_entropy")
    assert got.shape == expected.shape == (6, 3)
    np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL)


def test_binary_sigmoid_probabilities(tmp_path, rng):
    model = randomise(nl.mlp(7, [9], 1, activation="tanh", rng=0), rng)
    model.metadata = {"loss": "sigmoid_cross_entropy"}
    proto = nl.export_onnx(model, tmp_path / "b.onnx", probabilities=True)
    dims = [d.dim_param or d.dim_value for d in proto.graph.output[1].type.tensor_type.shape.dim]
    assert dims == ["N"]  # the positive class's probability, as predict_proba gives it
    x = rng.standard_normal((9, 7)).astype(np.float32)
    out = run_ort(tmp_path / "b.onnx", x)
    assert out["probabilities"].shape == (9,)
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(x), rtol=TOL, atol=TOL)
    (p,) = ReferenceEvaluator(proto).run(["probabilities"], {"x": x})
    np.testing.assert_allclose(p, model.predict_proba(x), rtol=TOL, atol=TOL)


def test_probabilities_refused_without_a_probabilistic_loss(tmp_path):
    model = nl.mlp(4, [5], 3, rng=0)
    model.metadata = {"loss": "multiclass_hinge"}
    with pytest.raises(ValueError, match="MulticlassHinge, which gives scores only"):
        nl.export_onnx(model, tmp_path / "h.onnx", probabilities=True)
    with pytest.raises(ValueError, match="binary SigmoidCrossEntropy reads one output"):
        nl.export_onnx(
            model, tmp_path / "h.onnx", probabilities=True, loss=nl.SigmoidCrossEntropy()
        )
    with pytest.raises(TypeError, match="probabilities must be a bool"):
        nl.export_onnx(model, tmp_path / "h.onnx", probabilities="yes")
    proto = nl.export_onnx(model, tmp_path / "h.onnx")  # scores only: fine for any loss
    assert [o.name for o in proto.graph.output] == ["scores"]


def test_cli_export_with_probabilities(tmp_path):
    """`neuronlab export --probabilities`: the ONNX graph's probabilities are the loaded model's
    predict_proba of the raw rows (its preprocessor is in the graph)."""
    import onnxruntime as ort
    from click.testing import CliRunner

    from neuronlab.cli import cli

    runs = tmp_path / "runs"
    runner = CliRunner()
    trained = runner.invoke(cli, ["train", "--data", "spiral", "--hidden", "16", "--epochs", "3",
                                  "--no-report", "--runs-dir", str(runs), "--name", "r"])
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "r.onnx"
    result = runner.invoke(cli, ["export", str(runs / "r"), "--format", "onnx", "--probabilities",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    X, _ = nl.data.spiral(n_per_class=20, n_classes=3, seed=1)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    scores, proba = session.run(None, {"x": X})
    want = nl.load(runs / "r" / "model.safetensors").predict_proba(X)
    np.testing.assert_allclose(proba, want, atol=1e-5)
    refused = runner.invoke(cli, ["export", str(runs / "r"), "--format", "npz", "--probabilities"])
    assert refused.exit_code == 2 and "only with --format onnx" in refused.stderr
