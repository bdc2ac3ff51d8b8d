"""The stability sentinel: a divergence names the layer where the first NaN/Inf appeared.

Networks are made to fail on purpose, each where the math says it must: a layer computing
log(x) of a negative input (forward NaN), weights so large that a product overflows float32
(the first layer whose output exceeds float32's largest number, found in float64), a square
root whose derivative is infinite at 0 and a learnable exponent whose gradient is 0·log 0
(backward). Each is reported with the layer and the step in the exception, in
``history.info``, in the diagnosis and, for a real ``neuronlab train`` run, in the CLI's error
line. The replay leaves no trace and never crashes, and healthy training is unchanged.
"""

from __future__ import annotations

import copy
import math
import pickle
import re
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import neuronlab as nl
from neuronlab.babysit.runview import RunView
from neuronlab.babysit.sentinel import SPIKE_FACTOR, locate, trend, update_spike_rule
from neuronlab.cli import EXIT_DIVERGED, cli
from neuronlab.layers.base import Layer

F32_MAX = float(np.finfo(np.float32).max)


# -- layers that fail where the math says ----------------------------------------------------
class Log(Layer):
    """y = log(x): NaN for x < 0, -Inf at 0."""

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        self._x = x
        return np.log(x)

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        return dout / self._x


class Log1p(Layer):
    """y = log(1 + x): NaN for x < -1 only."""

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        self._x = x
        return np.log1p(x)

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        return dout / (1 + self._x)


class Sqrt(Layer):
    """y = √x: finite for x >= 0, but dy/dx = 1 / (2√x) is infinite at x = 0."""

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        self._y = np.sqrt(x)
        return self._y

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        return dout / (2 * self._y)


class Power(Layer):
    """y = x^p with a learnable exponent p: dL/dp = Σ dout·y·log x, which is 0·(-∞) = NaN
    wherever x = 0 (a dead ReLU unit), although y and dx are finite there for p >= 1."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.add_param("p", np.array([p], dtype=np.float32))

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        self._x, self._y = x, x ** self.params["p"][0]
        return self._y

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        p = self.params["p"][0]
        self.grads["p"] += np.sum(dout * self._y * np.log(self._x))
        return dout * p * self._x ** (p - 1)


def _blobs(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 1.0, (n, 5)).astype(np.float32)
    return X, (X[:, 0] > 0.5).astype(np.int64)


class _Orders(nl.Callback):
    """Keeps each epoch's shuffled order (``trainer.state.order``), to find a row's step."""

    def __init__(self) -> None:
        self.orders: list[np.ndarray] = []

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        self.orders.append(trainer.state.order.copy())

    def step_of(self, row: int, epoch: int, batch_size: int, steps_per_epoch: int) -> int:
        pos = int(np.flatnonzero(self.orders[epoch] == row)[0])
        return epoch * steps_per_epoch + pos // batch_size


# -- forward: log of a negative input --------------------------------------------------------------
def _log_net() -> nl.Sequential:
    """Linear(5, 16), weights ≥ 0 → ReLU → Linear(16, 8), weights ≤ 0, bias 5 → Log →
    Linear. Inputs in [0, 1] give Log inputs near 5 - 0.5; a row of 20s about 5 - 10 < 0."""
    rng = np.random.default_rng(1)
    model = nl.Sequential([nl.Linear(5, 16, rng=0), nl.ReLU(), nl.Linear(16, 8, bias=5.0, rng=1),
                           Log(), nl.Linear(8, 2, rng=2)])
    model.layers[0].params["W"][...] = 0.1 * np.abs(rng.standard_normal((5, 16)))
    model.layers[2].params["W"][...] = -0.1 * np.abs(rng.standard_normal((16, 8)))
    return model


class _PoisonAfterEpoch0(nl.Callback):
    """Turns row 7 of the training data (the trainer holds a reference) into 20s after the
    first epoch: the second epoch's step with that row is the first that can diverge."""

    def __init__(self, X: np.ndarray) -> None:
        self.X = X

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        if epoch == 0:
            self.X[7] = 20.0


def _fit_log_net(guard: bool) -> tuple[nl.Trainer, nl.DivergenceError, int]:
    X, y = _blobs()
    orders = _Orders()
    callbacks = [orders, _PoisonAfterEpoch0(X)] + ([nl.NonFiniteGuard()] if guard else [])
    tr = nl.Trainer(_log_net(), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.01), callbacks=callbacks,
                    monitor=nl.Monitor(every=2))
    with pytest.raises(nl.DivergenceError) as err:
        tr.fit(X, y, epochs=3, batch_size=32)
    return tr, err.value, orders.step_of(7, 1, 32, 8)


@pytest.mark.parametrize("guard", [True, False])
def test_log_of_a_negative_input_is_named_in_error_info_and_diagnosis(guard: bool) -> None:
    tr, err, expected_step = _fit_log_net(guard)
    assert err.step == expected_step >= 8  # the poisoned row's step in the second epoch
    assert (err.layer, err.layer_type, err.direction, err.param) == (3, "Log", "forward", None)
    msg = str(err)
    assert msg.startswith(f"training diverged at step {expected_step}: layer 3 (Log) produced NaN "
                          "in the forward pass"), msg
    # the input it names is the real one: the model's Log layer still caches the failing
    # step's input (the replay ran on a copy), whose minimum is negative
    x_in = tr.model.layers[3]._x
    assert x_in.min() < 0 and f"min {x_in.min():.3g}" in msg
    assert f"max |x| {np.abs(x_in).max():.3g}" in msg
    assert "so the network's output is nan" in msg  # what the step saw, as before
    # the Monitor's records before it: the weights feeding the Log layer, over 3 measurements
    assert "before that, the update/weight ratio of 2.W" in msg and "last 3 measurements" in msg
    info = tr.history.info
    assert (info["diverged_step"], info["diverged_layer"], info["diverged_layer_type"],
            info["diverged_direction"]) == (expected_step, 3, "Log", "forward")
    assert info["diverged_origin"] in msg and info["diverged_context"] in msg
    (high,) = [f for f in nl.diagnose(tr.history) if f.rule == "lr_too_high"]
    assert high.severity == "error"
    assert "layer 3 (Log) produced NaN in the forward pass" in high.message
    assert high.evidence["diverged_layer"] == 3 and "layer 3 (Log)" in high.action
    assert f"step {expected_step}" in high.message


# -- forward: overflow from a huge initialisation --------------------------------------------------
def test_huge_init_names_the_first_layer_whose_output_overflows_float32() -> None:
    """All weights × 1e15. In float64 (no overflow) the activations grow ~1e15 per weight
    layer: the first layer whose float64 output exceeds float32's largest value is the one
    whose float32 output is the first non-finite one; the layers before it stay far below."""
    model = nl.Sequential([nl.Linear(5, 32, rng=0), nl.ReLU(), nl.Linear(32, 32, rng=1), nl.ReLU(),
                           nl.Linear(32, 3, init="he", rng=2)])
    for layer in model.layers:
        if "W" in layer.params:
            layer.params["W"] *= np.float32(1e15)
    X, y = _blobs(64)
    h, expected = X.astype(np.float64), None
    for i, layer in enumerate(copy.deepcopy(model).astype(np.float64).layers):
        h = layer.forward(h)
        if np.abs(h).max() > F32_MAX:
            expected = i
            break
        assert np.abs(h).max() < F32_MAX / 1e6  # well inside float32: no rounding luck
    assert expected == 4  # 1e15 → 1e30 → 1e45: the output layer
    tr = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1),
                    callbacks=[nl.NonFiniteGuard()])
    with pytest.raises(nl.DivergenceError) as err:
        tr.fit(X, y, epochs=1, batch_size=32)
    e = err.value
    assert (e.step, e.name, e.layer, e.layer_type, e.direction) == (
        0, "scores", 4, "Linear", "forward")
    # ±Inf products summed by the GEMM: Inf, or NaN where the BLAS kernel adds +Inf and -Inf
    assert "layer 4 (Linear) produced" in str(e) and ("Inf" in e.origin or "NaN" in e.origin)
    x_max = float(re.search(r"max \|x\| ([0-9.e+]+)", str(e)).group(1))
    assert 1e28 < x_max < F32_MAX  # its input: finite, ~1e30
    assert tr.history.info["diverged_layer"] == 4


def test_without_the_guard_the_weights_an_update_poisoned_are_named() -> None:
    """MSE at lr = 1e4 without NonFiniteGuard: the loss overflows at some step, its Inf/NaN
    gradient is applied, and the next forward starts from NaN weights. The sentinel names
    the first layer holding them, not a layer's arithmetic."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 2)).astype(np.float32)
    tr = nl.Trainer(nl.mlp(2, [16], 1, rng=0), nl.MeanSquaredError(), nl.SGD(lr=1e4))
    with pytest.raises(nl.DivergenceError) as err, np.errstate(all="ignore"):
        tr.fit(X, X.sum(axis=1), epochs=2, batch_size=16)
    e = err.value
    assert (e.name, e.direction, e.layer, e.param) == ("scores", "parameters", 0, "0.W")
    assert not np.isfinite(tr.model.params["0.W"]).any()
    assert not math.isfinite(tr.history.loss[e.step - 1])  # the step whose update wrote them
    assert "layer 0 (Linear) holds NaN in its parameter 0.W" in str(e)


# -- backward --------------------------------------------------------------------------------------
def _dead_unit_net(last: Layer) -> nl.Sequential:
    """Linear → ReLU (some units 0 on every row: negative biases) → ``last`` → Linear."""
    model = nl.Sequential([nl.Linear(5, 8, bias=0.0, rng=0), nl.ReLU(), last,
                           nl.Linear(8, 2, rng=1)])
    model.layers[0].params["b"][:4] = -100.0  # units 0-3 dead: their ReLU output is exactly 0
    return model


def test_infinite_derivative_is_named_in_the_backward_pass_not_where_the_guard_saw_it() -> None:
    """√x at x = 0 (dead ReLU units): the forward is finite, the backward of Sqrt is
    dout / 0 = ±Inf, and ReLU's backward turns 0·Inf into NaN in 0.W, the array the guard
    checks first. The origin is layer 2 (Sqrt), its input gradient."""
    X, y = _blobs(64)
    tr = nl.Trainer(_dead_unit_net(Sqrt()), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1),
                    callbacks=[nl.NonFiniteGuard()])
    with pytest.raises(nl.DivergenceError) as err:
        tr.fit(X, y, epochs=1, batch_size=32)
    e = err.value
    assert (e.step, e.name) == (0, "0.W")  # the guard's view: the first array it checks
    assert (e.layer, e.layer_type, e.direction, e.param) == (2, "Sqrt", "backward", None)
    assert "layer 2 (Sqrt) produced" in str(e)
    assert "in the backward pass, in its input gradient" in str(e)
    assert "so the gradient of parameter '0.W' is nan" in str(e)
    assert tr.history.info["diverged_direction"] == "backward"
    (high,) = [f for f in nl.diagnose(tr.history) if f.rule == "lr_too_high"]
    assert "layer 2 (Sqrt)" in high.message and "backward pass" in high.message


@pytest.mark.parametrize("p, guard_name", [(1.5, "2.p"), (0.5, "0.W")])
def test_a_non_finite_parameter_gradient_names_the_parameter(p: float, guard_name: str) -> None:
    """x^p with learnable p on dead units: dL/dp = Σ dout·y·log x has 0·(-∞) = NaN. With
    p = 1.5 dx = p·x^0.5 is finite and the guard sees 2.p too; with p = 0.5 dx is infinite too,
    NaN reaches 0.W (the guard's first array), but the origin is still layer 2's 2.p."""
    X, y = _blobs(64)
    tr = nl.Trainer(_dead_unit_net(Power(p)), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1),
                    callbacks=[nl.NonFiniteGuard()])
    with pytest.raises(nl.DivergenceError) as err:
        tr.fit(X, y, epochs=1, batch_size=32)
    e = err.value
    assert (e.step, e.name) == (0, guard_name)
    assert (e.layer, e.layer_type, e.direction, e.param) == (2, "Power", "backward", "2.p")
    assert ("layer 2 (Power) produced NaN in the backward pass, in the gradient of parameter "
            "'2.p'") in str(e)
    assert tr.history.info["diverged_param"] == "2.p"


# -- stochastic layers -----------------------------------------------------------------------------
def test_dropout_in_the_failing_network_reproduces_with_the_same_mask() -> None:
    """Dropout(0.9) before log(1 + x); one input element is -5, NaN only when the mask keeps
    it (10x-scaled, -50): 1 time in 10. The first step where it is kept diverges; the replay
    reuses that step's mask and finds exactly that one NaN."""
    X, y = _blobs(64)
    X[5, 2] = -5.0
    model = nl.Sequential([nl.Dropout(0.9, rng=3), Log1p(), nl.Linear(5, 2, rng=0)])
    tr = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.01),
                    callbacks=[nl.NonFiniteGuard()])
    with pytest.raises(nl.DivergenceError) as err:
        tr.fit(X, y, epochs=50, batch_size=16)
    e = err.value
    assert e.step > 0  # not the first time the row was seen: masks decide
    assert (e.layer, e.layer_type, e.direction) == (1, "Log1p", "forward")
    assert "produced NaN in the forward pass (1 of 80 values" in str(e)
    # the real Dropout still holds the failing step's mask (the replay used a copy)
    assert model.layers[1]._x.min() == pytest.approx(-50.0)
    # a replay without that mask draws a new one (from a copy of the generator) and here
    # misses the NaN: it says so instead of guessing
    fresh = copy.deepcopy(model)
    fresh.layers[0]._mask = None
    b = e.step % 4  # 4 batches of 16 per epoch; the failing one is in the current order
    rows = np.sort(tr.state.order[16 * b : 16 * (b + 1)])
    origin = locate(fresh, nl.SoftmaxCrossEntropy(), X[rows], y[rows])
    assert not origin.reproduced and "layer 0 (Dropout) drew new noise" in origin.note


def test_a_failure_the_replay_cannot_reproduce_is_said_not_guessed() -> None:
    class Once(Layer):  # NaN on its 3rd call only: a replay (4th call) is clean
        calls = 0

        def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
            Once.calls += 1
            return x * np.nan if Once.calls == 3 else x

        def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
            return dout

    X, y = _blobs(64)
    tr = nl.Trainer(nl.Sequential([nl.Linear(5, 4, rng=0), Once(), nl.Linear(4, 2, rng=1)]),
                    nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), callbacks=[nl.NonFiniteGuard()],
                    monitor=False)
    with pytest.raises(nl.DivergenceError) as err:
        tr.fit(X, y, epochs=1, batch_size=16)
    e = err.value
    assert (e.step, e.name, e.layer, e.direction) == (2, "scores", None, None)
    assert str(e).startswith("training diverged at step 2: the network's output is nan")
    assert "could not reproduce where it started" in str(e) and "finite" in e.context
    info = tr.history.info
    assert info["diverged_layer"] is None and "could not reproduce" in info["diverged_context"]


def test_a_replay_that_raises_never_hides_the_divergence() -> None:
    class Fragile(Layer):  # NaN on the 2nd call, raises on any later one
        calls = 0

        def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
            Fragile.calls += 1
            if Fragile.calls > 2:
                raise RuntimeError("called again")
            return x * np.nan if Fragile.calls == 2 else x

        def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
            return dout

    X, y = _blobs(64)
    tr = nl.Trainer(nl.Sequential([nl.Linear(5, 2, rng=0), Fragile()]), nl.SoftmaxCrossEntropy(),
                    nl.SGD(lr=0.1), monitor=False)
    with pytest.raises(nl.DivergenceError) as err:
        tr.fit(X, y, epochs=1, batch_size=16)
    assert err.value.step == 1 and err.value.layer is None
    assert "layer 1 (Fragile) raised RuntimeError in the replay: called again" in str(err.value)


# -- no trace --------------------------------------------------------------------------------------
def _state(model: nl.Sequential) -> dict[str, Any]:
    out: dict[str, Any] = {f"p:{k}": v.copy() for k, v in model.params.items()}
    out.update({f"g:{k}": v.copy() for k, v in model.grads.items()})
    out.update({f"b:{k}": v.copy() for k, v in model.buffers.items()})
    for i, layer in enumerate(model.layers):
        if hasattr(layer, "rng"):
            out[f"rng:{i}"] = layer.rng.bit_generator.state
        for k, v in vars(layer).items():  # the caches a backward would read
            if isinstance(v, np.ndarray):
                out[f"c:{i}.{k}"] = v.copy()
    return out


def test_the_replay_leaves_no_trace() -> None:
    """The same diverging run (batch norm, dropout, a regulariser) with and without the
    sentinel: parameters, gradients, buffers, generators, layer caches and history agree."""
    def run(sentinel: bool) -> tuple[nl.Trainer, nl.DivergenceError]:
        X, y = _blobs()
        model = nl.Sequential([nl.Linear(5, 16, rng=0), nl.BatchNorm(16), nl.ReLU(),
                               nl.Dropout(0.2, rng=4), nl.Linear(16, 2, rng=1)])
        tr = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=1e4), regularizer=nl.L2(1e-3),
                        callbacks=[nl.NonFiniteGuard()], monitor=nl.Monitor(every=1))
        tr.sentinel = sentinel
        with pytest.raises(nl.DivergenceError) as err, np.errstate(all="ignore"):
            tr.fit(X, y, epochs=5, batch_size=32)
        return tr, err.value

    (on, e_on), (off, e_off) = run(True), run(False)
    assert e_on.layer is not None and e_off.layer is None  # the sentinel ran in one only
    assert (e_on.step, e_on.name, str(e_on.value)) == (e_off.step, e_off.name, str(e_off.value))
    a, b = _state(on.model), _state(off.model)
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert np.array_equal(a[k], b[k], equal_nan=True), k
        else:
            assert a[k] == b[k], k
    h_on, h_off = on.history.to_dict(), off.history.to_dict()
    located = {"diverged_layer", "diverged_layer_type", "diverged_direction", "diverged_param",
               "diverged_origin", "diverged_context"}
    assert {k: v for k, v in h_on["info"].items() if k not in located} == \
        {k: v for k, v in h_off["info"].items() if k not in located}
    assert {**h_on, "info": None} == {**h_off, "info": None}


def test_a_healthy_run_is_bit_identical_to_the_step_written_out() -> None:
    """Dropout, a Monitor and the guard on a healthy run: losses and weights equal, bit for
    bit, the step written out by hand (the sentinel's hook does no work per step)."""
    X, y = _blobs(200, seed=3)
    def net() -> nl.Sequential:
        return nl.Sequential([nl.Linear(5, 16, rng=0), nl.ReLU(), nl.Dropout(0.3, rng=5),
                              nl.Linear(16, 3, rng=2)])
    model, ref = net(), net()
    loss, opt, ref_opt = nl.SoftmaxCrossEntropy(), nl.Momentum(lr=0.05), nl.Momentum(lr=0.05)
    tr = nl.Trainer(model, loss, opt, callbacks=[nl.NonFiniteGuard()], monitor=nl.Monitor(every=3))
    tr.fit(X, y, epochs=3, batch_size=32, seed=4)

    rng, losses = np.random.default_rng(4), []
    for _ in range(3):
        perm = rng.permutation(len(X))
        for b in range(0, len(X), 32):
            idx = np.sort(perm[b : b + 32])
            ref.zero_grad()
            value = loss.forward(ref.forward(X[idx], training=True), y[idx])
            ref.backward(loss.backward(), input_grad=False)
            ref_opt.step(ref.params, ref.grads, lr=0.05, decay_keys=ref.weight_keys)
            losses.append(value)
    assert tr.history.loss == losses
    for k, v in model.params.items():
        assert np.array_equal(v, ref.params[k]), k
    assert "diverged_step" not in tr.history.info


# -- the error value -------------------------------------------------------------------------------
def test_divergence_error_keeps_its_old_constructor_and_pickles_its_fields() -> None:
    old = nl.DivergenceError(3, "2.W", float("nan"))
    assert str(old) == ("training diverged at step 3: the gradient of parameter '2.W' is nan "
                        "(the update was not applied); lower the learning rate, clip gradients "
                        "or check the data")
    e = nl.DivergenceError(412, "loss", float("nan"), 3, "Log", "forward", None,
                           "layer 3 (Log) produced NaN in the forward pass (its input had "
                           "min -2.1)",
                           "before that, the update/weight ratio of 2.W rose 0.001 → 0.4")
    assert str(e).startswith("training diverged at step 412: layer 3 (Log) produced NaN in the "
                             "forward pass (its input had min -2.1), so the loss is nan (the "
                             "update was not applied); before that, the update/weight ratio of "
                             "2.W rose 0.001 → 0.4; lower")
    back = pickle.loads(pickle.dumps(e))
    assert str(back) == str(e) and back.info() == e.info() and back.layer_type == "Log"
    old.locate(layer=2, layer_type="Linear", direction="backward", param="2.W",
               origin="layer 2 (Linear) produced NaN in the backward pass")
    assert str(old).startswith("training diverged at step 3: layer 2 (Linear) produced NaN in "
                               "the backward pass (the update")


def test_info_keys_pass_the_resumed_history_check() -> None:
    from neuronlab.babysit.monitor import INFO_KEYS, check_records

    h = nl.History()
    h.info.update(nl.DivergenceError(1, "loss", math.nan).info())
    assert set(h.info) <= INFO_KEYS
    check_records(h)  # no CheckpointError


# -- the CLI ---------------------------------------------------------------------------------------
def test_cli_error_line_names_the_layer_of_a_run_made_to_diverge(tmp_path) -> None:
    """`neuronlab train --lr 1e6` (SGD) on the default 64-256-10 ReLU MLP. Each step multiplies
    the weights' scale by ~1e6, so within a few steps the products overflow. Layer 0's output
    goes through ReLU, which cannot create Inf from finite numbers; the message states that the
    input of the layer it names is finite, so the first non-finite output must be where it
    says: layer 2, the output Linear, in the forward pass."""
    result = CliRunner().invoke(cli, ["train", "--no-report", "--optimizer", "sgd", "--lr", "1e6",
                                      "--epochs", "2", "--runs-dir", str(tmp_path),
                                      "--name", "boom"])
    assert result.exit_code == EXIT_DIVERGED, result.output
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    m = re.match(r"error: training diverged at step (\d+): layer 2 \(Linear\) produced .* in the "
                 r"forward pass \(.*its input had max \|x\| ([0-9.e+]+) and min 0\)", line)
    assert m, line
    step, x_max = int(m.group(1)), float(m.group(2))
    assert step > 0 and 1.0 < x_max < F32_MAX  # ReLU's output: finite, non-negative, huge
    assert "no checkpoint was written" in line
    # the diagnosis printed before the error line quotes the same layer
    assert (f"lr_too_high: training diverged at step {step}: layer 2 (Linear) produced"
            in result.stderr)


# -- update spikes ---------------------------------------------------------------------------------
def _history(ratios: dict[str, list[float]], loss: list[float], every: int = 10) -> dict[str, Any]:
    monitor = [{"step": i * every, "kind": "param", "layer": name.split(".")[0], "type": "Linear",
                "param": name, "role": "weight", "size": 10, "weight_norm": 1.0, "grad_norm": 0.1,
                "update_norm": r, "update_ratio": r}
               for name, rs in ratios.items() for i, r in enumerate(rs)]
    return {"loss": loss, "lr": [0.1] * len(loss), "epochs": [], "monitor": monitor, "info": {}}


def test_update_spike_before_the_loss_grows_is_named() -> None:
    flat = [1e-3, 1.2e-3, 0.9e-3, 1.1e-3, 1e-3]
    h = _history({"0.W": flat + [1e-3, 1e-3], "2.W": flat + [0.05, 0.08]}, [1.0] * 70)
    f = update_spike_rule(RunView(h))
    assert f is not None and f.rule == "update_spike" and f.severity == "warning"
    assert f.evidence["param"] == "2.W" and f.evidence["step"] == 50
    assert f.evidence["factor"] == pytest.approx(50.0) and f.evidence["factor"] > SPIKE_FACTOR
    assert "2.W" in f.message and "step 50" in f.message


@pytest.mark.parametrize("case", ["loss_grew", "small_jump", "too_little_history"])
def test_update_spike_rule_stays_quiet(case: str) -> None:
    flat = [1e-3, 1.2e-3, 0.9e-3, 1.1e-3, 1e-3]
    loss = [1.0] * 70
    ratios = flat + [0.05]
    if case == "loss_grew":  # the loss spiked already: no early warning to give
        loss[41:51] = [5.0] * 10
    elif case == "small_jump":
        ratios = flat + [5e-3]
    else:
        ratios = [1e-3, 1e-3, 0.05]
    assert update_spike_rule(RunView(_history({"2.W": ratios}, loss))) is None


def _digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = nl.data.digits()
    X = ((X - X.mean(axis=0)) / (X.std(axis=0) + 1e-3)).astype(np.float32)
    return X[:1000], y[:1000]


def test_update_spike_precedes_the_loss_spike_in_a_real_run() -> None:
    """SGD at 0.01, raised to 2.0 at step 40 (a multiple of the monitor's 5): the update ratios
    jump at step 40, when the loss (measured before that update) has not moved yet; the loss
    spikes over the next steps."""
    X, y = _digits()
    tr = nl.Trainer(nl.mlp(64, [64, 64], 10, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.01),
                    schedule=lambda s: 0.01 if s < 40 else 2.0, monitor=nl.Monitor(every=5))
    with np.errstate(all="ignore"):
        tr.fit(X, y, epochs=4, batch_size=64)
    f = update_spike_rule(RunView(tr.history))
    assert f is not None and f.evidence["step"] == 40 and f.evidence["param"].endswith(".W")
    loss = np.array(tr.history.loss)
    assert loss[41:].max() > 5 * loss[:40].max()  # the loss spike came after


def test_update_spike_rule_is_quiet_on_healthy_runs() -> None:
    X, y = _digits()
    for opt in (nl.Adam(lr=1e-3), nl.SGD(lr=0.1), nl.Momentum(lr=0.05)):
        tr = nl.Trainer(nl.mlp(64, [64, 64], 10, rng=0), nl.SoftmaxCrossEntropy(), opt,
                        monitor=nl.Monitor(every=5))
        tr.fit(X, y, epochs=5, batch_size=64)
        assert update_spike_rule(RunView(tr.history)) is None, type(opt).__name__


def test_trend_quotes_the_weights_feeding_a_parameterless_layer() -> None:
    h = _history({"0.W": [1e-3, 2e-3, 3e-3], "2.W": [1e-3, 0.02, 0.4]}, [1.0] * 30)
    words, ev = trend(h["monitor"], layer=3, direction="forward", before=25)
    assert words == ("before that, the update/weight ratio of 2.W rose 0.001 → 0.02 → 0.4 and "
                     "its gradient norm stayed at 0.1 over the last 3 measurements (steps 0-20)")
    assert ev["param"] == "2.W"
    # backward: the gradient a layer receives comes from the layer after it
    assert trend(h["monitor"], layer=1, direction="backward")[1]["param"] == "2.W"
    assert trend(h["monitor"], layer=1, direction="forward")[1]["param"] == "0.W"
    assert trend([], layer=1) == ("", {})
