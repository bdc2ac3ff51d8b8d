import numpy as np
import pytest

import neuronlab as nl

from ._numgrad import numgrad, rel_error


def _types(model):
    return [type(layer).__name__ for layer in model]


# -- summary() of the notes' example networks -------------------------------------------------
def test_summary_of_the_notes_3_4_2_network():
    # neurons 4 + 2 = 6; weights 3·4 + 4·2 = 20; biases 4 + 2 = 6; params 26
    s = nl.Sequential([nl.Linear(3, 4), nl.ReLU(), nl.Linear(4, 2)]).summary()
    assert (s.neurons, s.weights, s.biases, s.params) == (6, 20, 6, 26)
    assert [c["params"] for _, c in s.rows] == [16, 0, 10]
    assert str(s).splitlines()[-1].split() == ["total", "6", "20", "6", "26"]


def test_summary_of_the_notes_3_4_4_1_network():
    # neurons 4 + 4 + 1 = 9; weights 12 + 16 + 4 = 32; biases 9; params 41
    s = nl.mlp(3, [4, 4], 1, activation="sigmoid").summary()
    assert (s.neurons, s.weights, s.biases, s.params) == (9, 32, 9, 41)


# -- structure --------------------------------------------------------------------------------
def test_structure_plain_and_linear_classifier():
    assert _types(nl.mlp(64, [100, 50], 10)) == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert _types(nl.mlp(5, [], 3)) == ["Linear"]
    m = nl.mlp(64, [100, 50], 10)
    assert (m.n_in, m.n_out) == (64, 10)
    assert [(l.n_in, l.n_out) for l in m if isinstance(l, nl.Linear)] == [
        (64, 100),
        (100, 50),
        (50, 10),
    ]


def test_structure_batchnorm_before_activation_then_dropout():
    m = nl.mlp(8, [6, 4], 3, activation="tanh", batchnorm=True, dropout=0.5)
    assert _types(m) == [
        "Linear", "BatchNorm", "Tanh", "Dropout",
        "Linear", "BatchNorm", "Tanh", "Dropout",
        "Linear",
    ]  # fmt: skip
    assert m[3].rate == 0.5 and m[1].n_features == 6
    # batch norm's beta is the bias: the Linear layers before it have none; the output has one
    assert "b" not in m[0].params and "b" not in m[4].params and "b" in m[8].params
    assert "b" in nl.mlp(8, [6], 3)[0].params


@pytest.mark.parametrize(
    ("activation", "cls"),
    [
        ("relu", nl.ReLU),
        ("leaky_relu", nl.LeakyReLU),
        ("prelu", nl.PReLU),
        ("elu", nl.ELU),
        ("tanh", nl.Tanh),
        ("sigmoid", nl.Sigmoid),
        ("Leaky-ReLU", nl.LeakyReLU),
    ],
)
def test_every_activation(activation, cls):
    m = nl.mlp(4, [5], 2, activation=activation)
    assert isinstance(m[1], cls)
    if cls is nl.PReLU:
        assert m[1].n_units == 5


def test_maxout_network():
    m = nl.mlp(4, [5, 3], 2, activation="maxout", pieces=3, batchnorm=True)
    assert _types(m) == ["Maxout", "BatchNorm", "Maxout", "BatchNorm", "Linear"]
    assert m[0].pieces == 3 and m[0].params["W"].shape == (4, 5, 3)
    assert m.summary().neurons == 5 + 3 + 2


def test_options_reach_the_layers():
    m = nl.mlp(4, [5], 2, init="glorot", dtype=np.float64)
    assert m[0].init == "glorot" and m[-1].init == "normal" and m.dtype == np.float64
    assert all(v.dtype == np.float64 for v in m.params.values())
    assert nl.mlp(4, [5], 2, out_init="he")[-1].init == "he"
    with pytest.raises(ValueError, match="unknown initializer 'hee'"):
        nl.mlp(4, [5], 2, out_init="hee")


def test_untrained_network_guesses_uniformly():
    """The small output layer (N(0, 0.01²)) makes every score about 0, so the softmax loss of
    the untrained network is about ln C (the notes' sanity check); He weights there too give
    scores of std ≈ sqrt(256 · 2/256 · E[h²]) ≈ 1.4 on standardised inputs, and a far larger loss."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((2000, 64)), rng.integers(0, 10, 2000)
    loss = nl.SoftmaxCrossEntropy()
    small = loss.forward(nl.mlp(64, [256], 10, rng=0, dtype=np.float64).forward(X), y)
    he = loss.forward(nl.mlp(64, [256], 10, out_init="he", rng=0, dtype=np.float64).forward(X), y)
    assert small == pytest.approx(np.log(10), abs=0.02)
    assert he > 1.25 * np.log(10)


# -- determinism --------------------------------------------------------------------------------
def test_same_seed_same_network_and_masks():
    x = np.ones((4, 6), np.float32)
    a = nl.mlp(6, [8, 8], 3, dropout=0.5, rng=42)
    b = nl.mlp(6, [8, 8], 3, dropout=0.5, rng=42)
    c = nl.mlp(6, [8, 8], 3, dropout=0.5, rng=43)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert not np.array_equal(a.params["0.W"], c.params["0.W"])
    np.testing.assert_array_equal(a.forward(x, training=True), b.forward(x, training=True))
    # every seeded layer (3 Linear, 2 Dropout) gets its own seed
    assert len({layer.get_config()["rng"] for layer in a if "rng" in layer.get_config()}) == 5


def test_config_round_trip_rebuilds_the_same_network():
    m = nl.mlp(6, [5], 3, batchnorm=True, dropout=0.2, activation="prelu", rng=0)
    again = nl.Sequential.from_config(m.get_config())
    assert _types(again) == _types(m)
    assert again.get_config() == m.get_config()
    for k in m.params:
        np.testing.assert_array_equal(again.params[k], m.params[k])


# -- whole-network checks ---------------------------------------------------------------------
def test_whole_network_gradcheck_float64(rng):
    model = nl.mlp(
        5, [6, 4], 3, activation="tanh", batchnorm=True, dropout=0.3, rng=0, dtype=np.float64
    )
    for layer in model:
        layer.noise_off = layer.stochastic  # gradient checks switch dropout off
    x = rng.standard_normal((7, 5))
    r = rng.standard_normal((7, 3))

    def loss() -> float:
        return float(np.sum(r * model.forward(x, training=True)))

    model.zero_grad()
    model.forward(x, training=True)
    dx = model.backward(r.copy())
    analytic = {k: g.copy() for k, g in model.grads.items()}
    assert rel_error(dx, numgrad(loss, x)) < 1e-7
    for k, p in model.params.items():
        num = numgrad(loss, p)
        if k in ("0.b", "4.b"):
            # a bias right before batch norm is cancelled by the mean subtraction: its true
            # gradient is 0, so both sides are rounding noise and compared absolutely
            assert np.abs(analytic[k]).max() < 1e-12 and np.abs(num).max() < 1e-9, k
        else:
            assert rel_error(analytic[k], num) < 1e-7, k


def test_first_layer_gets_no_input_grad_request(rng):
    model = nl.mlp(5, [4], 2, rng=0, dtype=np.float64)
    model.forward(rng.standard_normal((3, 5)), training=True)
    assert model.backward(np.ones((3, 2)), input_grad=False) is None
    assert np.abs(model.grads["0.W"]).sum() > 0


def _softmax_xent(scores, y):
    # The test's own loss (losses.py belongs to another engineer): mean cross-entropy.
    z = scores - scores.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.log(p[np.arange(n), y]).mean()
    p[np.arange(n), y] -= 1
    return loss, p / n


def _train_xor(hidden, activation, dtype):
    # Four Gaussian blobs at the corners of a square, opposite corners share a class: not
    # linearly separable, so reaching high accuracy needs the hidden layer.
    gen = np.random.default_rng(0)
    centers = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=float)
    labels = np.array([0, 0, 1, 1])
    pick = gen.integers(0, 4, 400)
    X = (centers[pick] + 0.25 * gen.standard_normal((400, 2))).astype(dtype)
    y = labels[pick]
    model = nl.mlp(
        2, hidden, 2, activation=activation, batchnorm=True, dropout=0.1, rng=1, dtype=dtype
    )
    losses = []
    for step in range(150):
        batch = gen.integers(0, 400, 64)
        model.zero_grad()
        loss, dscores = _softmax_xent(model.forward(X[batch], training=True), y[batch])
        model.backward(dscores.astype(dtype), input_grad=False)
        for k, g in model.grads.items():
            model.params[k] -= 0.5 * g
        losses.append(loss)
    assert all(v.dtype == dtype for v in model.params.values())
    return losses, (model.forward(X).argmax(axis=1) == y).mean()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "maxout"])
def test_end_to_end_training_learns_xor_like_data(dtype, activation):
    losses, accuracy = _train_xor([16], activation, dtype)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    assert accuracy > 0.95
    _, linear_accuracy = _train_xor([], activation, dtype)  # control: a linear classifier cannot
    assert linear_accuracy < 0.8


# -- bad arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (
            {"activation": "swish"},
            ValueError,
            "unknown activation 'swish'; choose one of: relu, leaky_relu",
        ),
        ({"activation": None}, TypeError, "activation must be a str"),
        (
            {"init": "uniformish"},
            ValueError,
            "unknown initializer 'uniformish'; choose one of: .*he",
        ),
        ({"dropout": 1.0}, ValueError, "dropout must be < 1.0, got 1.0"),
        ({"dropout": -0.5}, ValueError, "dropout must be >= 0.0, got -0.5"),
        ({"hidden": [4, 0]}, ValueError, r"hidden\[1\] must be > 0, got 0"),
        ({"hidden": "10"}, TypeError, "hidden must be a list of layer widths"),
        ({"hidden": 10}, TypeError, "hidden must be a list of layer widths"),
        ({"n_in": 0}, ValueError, "n_in must be > 0, got 0"),
        ({"n_out": -2}, ValueError, "n_out must be > 0, got -2"),
        ({"batchnorm": "yes"}, TypeError, "batchnorm must be a bool"),
        ({"pieces": 0}, ValueError, "pieces must be > 0, got 0"),
        ({"dtype": np.float16}, TypeError, "dtype must be float32 or float64"),
    ],
)
def test_bad_args(kwargs, exc, match):
    args = {"n_in": 4, "hidden": [3], "n_out": 2, **kwargs}
    with pytest.raises(exc, match=match):
        nl.mlp(args.pop("n_in"), args.pop("hidden"), args.pop("n_out"), **args)


def test_bad_input_through_the_model():
    model = nl.mlp(4, [3], 2, rng=0)
    with pytest.raises(ValueError, match="x has 5 features per sample, but the model expects 4"):
        model.forward(np.ones((2, 5), np.float32))
    x = np.ones((2, 4), np.float32)
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.forward(x)
