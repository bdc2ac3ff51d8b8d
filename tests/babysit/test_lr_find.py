"""The learning-rate range test: it leaves everything as it was, survives a blow-up, reads its
curves with each rule, checks its arguments, and its suggestion trains well (the acceptance
check against a grid of full runs on the digits)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.babysit.lr_find import RECOMMENDED, RULES, LRFindResult, lr_find, suggest
from neuronlab.config import RunConfig
from neuronlab.runs import build_run, prepare_run


def blobs(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return (3.0 * np.eye(3, 6)[y] + rng.standard_normal((n, 6))).astype(np.float32), y


def noisy_net(seed: int = 0) -> nl.Sequential:
    """Every kind of state a sweep could disturb: batch-norm buffers, dropout's and Gaussian
    noise's generators, Linear gradients."""
    return nl.Sequential([
        nl.GaussianNoise(0.1, rng=seed + 10),
        nl.Linear(6, 16, rng=seed),
        nl.BatchNorm(16),
        nl.ReLU(),
        nl.Dropout(0.2, rng=seed + 20),
        nl.Linear(16, 3, init="normal", rng=seed + 1),
    ])


def rng_states(model: nl.Sequential) -> list[dict]:
    return [layer.rng.bit_generator.state for layer in model.layers if hasattr(layer, "rng")]


def assert_same_arrays(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert v.dtype == b[k].dtype and np.array_equal(v, b[k]), k


def assert_same_optimizer(a: dict, b: dict) -> None:
    assert a["t"] == b["t"] and a["config"] == b["config"]
    assert a["state"].keys() == b["state"].keys()
    for name in a["state"]:
        assert_same_arrays(a["state"][name], b["state"][name])


# -- it changes nothing --------------------------------------------------------------------------
def test_weights_buffers_grads_optimizer_and_generators_are_bit_identical_after_the_sweep():
    X, y = blobs()
    model, opt = noisy_net(), nl.Adam(lr=1e-3)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), opt, monitor=False)
    trainer.fit(X, y, epochs=1, batch_size=32)  # a used optimizer: moments and t > 0
    before = {
        "params": {k: v.copy() for k, v in model.params.items()},
        "buffers": {k: v.copy() for k, v in model.buffers.items()},
        "grads": {k: v.copy() for k, v in model.grads.items()},
        "arrays": {k: id(v) for k, v in {**model.params, **model.buffers}.items()},
        "rngs": rng_states(model),
        "opt": opt.state_dict(),
    }
    result = lr_find(model, nl.SoftmaxCrossEntropy(), opt, X, y, regularizer=nl.L2(1e-3),
                     constraints=[nl.MaxNorm(3.0)], steps=40, batch_size=16, end_lr=1e3,
                     sample_weight=np.linspace(0.5, 1.5, len(y)))
    assert any(len(lr) > 5 for lr in result.lrs)  # it did train
    assert_same_arrays(model.params, before["params"])
    assert_same_arrays(model.buffers, before["buffers"])
    assert_same_arrays(model.grads, before["grads"])
    # copied back into the same arrays: anything holding them (a packed block) still sees them
    assert {k: id(v) for k, v in {**model.params, **model.buffers}.items()} == before["arrays"]
    assert rng_states(model) == before["rngs"]
    assert_same_optimizer(opt.state_dict(), before["opt"])


def test_a_fit_after_the_sweep_is_bit_identical_to_one_without_it():
    X, y = blobs()
    Xv, yv = blobs(90, seed=1)

    def fit(sweep_first: bool) -> tuple[nl.History, dict]:
        model, opt, loss = noisy_net(), nl.Momentum(lr=0.05), nl.SoftmaxCrossEntropy()
        if sweep_first:
            lr_find(model, loss, opt, X, y, steps=30, end_lr=100.0, seeds=(3, 4))
        h = nl.Trainer(model, loss, opt, monitor=False).fit(
            X, y, validation=(Xv, yv), epochs=3, batch_size=32, seed=5)
        return h, {k: v.copy() for k, v in {**model.params, **model.buffers}.items()}

    (h0, w0), (h1, w1) = fit(False), fit(True)
    assert h1.loss == h0.loss and h1.epochs == h0.epochs
    assert_same_arrays(w1, w0)


# -- blow-ups ------------------------------------------------------------------------------------
def test_a_sweep_into_nan_keeps_its_curve_and_still_suggests():
    X, y = blobs()
    result = lr_find(nl.mlp(6, [32], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), X, y,
                     start_lr=1e-4, end_lr=1e12, steps=60, diverge_factor=1e30)
    assert all(result.diverged)
    for lr, loss, s in zip(result.lrs, result.losses, result.smoothed):
        assert 5 < len(lr) < 60 and len(loss) == len(s) == len(lr)  # stopped, curve kept
        assert np.isfinite(loss).all() and np.isfinite(s).all()
    assert math.isfinite(result.suggestion) and 1e-4 <= result.suggestion <= 1e12
    json.dumps(result.to_dict(), allow_nan=False)


def rigged(x_scale: float, w_scale: float = 1.0) -> tuple[nl.Sequential, np.ndarray, np.ndarray]:
    """A linear model fed inputs ``x_scale`` times too large (weights ``w_scale`` times): its
    gradients are huge, so its scores overflow to Inf after a step or two, or at once."""
    X, y = blobs()
    model = nl.mlp(6, [], 3, rng=0)
    model.layers[0].params["W"] *= np.float32(w_scale)
    return model, X * np.float32(x_scale), y


def test_a_model_rigged_to_overflow_within_a_few_steps_falls_back_to_minimum_over_10():
    model, X, y = rigged(1e20)
    w0 = {k: v.copy() for k, v in model.params.items()}
    result = lr_find(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), X, y, steps=8,
                     diverge_factor=1e30)  # only the non-finite scores stop it
    assert all(result.diverged) and all(2 <= len(lr) < 8 for lr in result.lrs)
    assert math.isnan(result.suggestions["valley"][0])  # a rising stub has no valley...
    assert result.rule == "minimum/10" and math.isfinite(result.suggestion)  # ...but a minimum
    assert_same_arrays(model.params, w0)
    assert result.plot() is not None


def test_a_model_that_overflows_at_once_returns_empty_curves_without_raising():
    model, X, y = rigged(1e30, 1e10)
    result = lr_find(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), X, y, steps=20)
    assert all(result.diverged) and all(len(lr) == 0 for lr in result.lrs)
    assert all(math.isnan(v) for v in result.initial_loss)
    assert math.isnan(result.suggestion)
    d = result.to_dict()
    assert d["suggestion"] is None
    json.dumps(d, allow_nan=False)
    fig = result.plot()  # says so instead of failing
    assert "no finite loss" in " ".join(t.get_text() for t in fig.axes[0].texts)


# -- the rules -----------------------------------------------------------------------------------
def synthetic(n: int = 121) -> tuple[np.ndarray, np.ndarray]:
    """A plateau at 2 until 1e-4, a logistic fall to 0.2 centred on 1e-2 (two decades wide)
    and a blow-up past 1."""
    lg = np.linspace(-6, 0.4, n)
    fall = 1.8 / (1 + np.exp(-(lg + 2) * 3.0))
    return 10.0 ** lg, 2.0 - fall + np.where(lg > 0, 20 * lg**2, 0.0)


def test_each_rule_reads_a_synthetic_curve_where_it_should():
    lrs, s = synthetic()
    m = int(np.argmin(s))
    assert suggest(lrs, s, "minimum/10") == pytest.approx(lrs[m] / 10)
    # the logistic falls fastest at its centre
    assert suggest(lrs, s, "steepest") == pytest.approx(1e-2, rel=0.15)
    # the valley: rim at 10% of the fall (log lr -2 - ln 9 / 3), floor at 90% (-2 + ln 9 / 3)
    rim, floor = -2 - math.log(9) / 3, -2 + math.log(9) / 3
    expected = 10 ** (rim + 0.1 * (floor - rim))
    assert suggest(lrs, s, "valley") == pytest.approx(expected, rel=0.15)
    assert suggest(lrs, s) == suggest(lrs, s, RECOMMENDED)


def test_the_valley_ignores_noise_that_a_single_point_rule_sees():
    lrs, s = synthetic()
    clean = suggest(lrs, s, "valley")
    rng = np.random.default_rng(0)
    for _ in range(20):
        noisy = s + rng.normal(0, 0.02, s.shape)
        assert suggest(lrs, noisy, "valley") == pytest.approx(clean, rel=0.3)


def test_rules_without_a_fall_give_nan():
    lrs = np.logspace(-5, 0, 30)
    rising = np.linspace(1.0, 3.0, 30)
    assert math.isnan(suggest(lrs, rising, "valley"))
    assert math.isnan(suggest(lrs, rising, "steepest"))
    assert suggest(lrs, rising, "minimum/10") == pytest.approx(1e-6)
    assert math.isnan(suggest([], [], "valley"))
    with pytest.raises(ValueError, match="rule"):
        suggest(lrs, rising, "fastest")


# -- the result ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blobs_result() -> LRFindResult:
    X, y = blobs()
    return lr_find(nl.mlp(6, [32], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.Adam(lr=1e-3), X, y,
                   steps=60)


def test_the_result_holds_one_curve_per_seed_and_each_rule_with_its_spread(blobs_result):
    r = blobs_result
    assert r.seeds == (0, 1, 2) and len(r.lrs) == len(r.losses) == len(r.smoothed) == 3
    for i in range(3):
        n = len(r.lrs[i])
        assert 5 < n <= 60 and r.losses[i].shape == r.smoothed[i].shape == (n,)
        np.testing.assert_allclose(r.lrs[i], 1e-7 * (1e8) ** (np.arange(n) / 59))
    assert set(r.suggestions) == set(RULES) and r.rule == RECOMMENDED
    for rule, (med, lo, hi) in r.suggestions.items():
        assert lo <= med <= hi and sorted(r.per_seed[rule])[1] == pytest.approx(med)
    assert r.suggestion == r.suggestions["valley"][0] and r.spread == r.suggestions["valley"][1:]
    assert "valley" in r.summary() and "recommended" in r.summary()


def test_to_dict_is_json_and_round_trips(blobs_result):
    d = json.loads(json.dumps(blobs_result.to_dict(), allow_nan=False))
    back = LRFindResult.from_dict(d)
    assert back.suggestion == blobs_result.suggestion and back.rule == blobs_result.rule
    for a, b in zip(back.smoothed, blobs_result.smoothed):
        np.testing.assert_array_equal(a, b)
    assert back.settings["steps"] == 60
    with pytest.raises(ValueError, match="not an lr_find result"):
        LRFindResult.from_dict({"sweeps": 3})


def test_plot_draws_each_seed_on_a_log_axis_and_labels_every_rule(blobs_result):
    from matplotlib.figure import Figure

    fig = blobs_result.plot()
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for rule in RULES:
        assert any(label.startswith(f"{rule}: ") for label in labels), labels
    assert sum(label.startswith("seed") for label in labels) == 3
    other = Figure()
    ax2 = other.add_subplot()
    assert blobs_result.plot(ax=ax2) is other  # draws into the given axes


def test_progress_counts_every_step_even_of_a_sweep_that_stopped_early():
    X, y = blobs()
    calls: list[int] = []
    r = lr_find(nl.mlp(6, [8], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), X, y,
                steps=40, seeds=(0, 1), end_lr=1e6, progress=calls.append)
    assert any(r.diverged) and sum(calls) == 80


# -- arguments -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, match", [
    ({"start_lr": 0.0}, ValueError, "start_lr"),
    ({"start_lr": math.nan}, ValueError, "start_lr"),
    ({"end_lr": "10"}, TypeError, "end_lr"),
    ({"start_lr": 1.0, "end_lr": 0.5}, ValueError, "end_lr must be > start_lr"),
    ({"steps": 4}, ValueError, "steps"),
    ({"steps": 10.0}, TypeError, "steps"),
    ({"steps": True}, TypeError, "steps"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"seeds": ()}, ValueError, "seeds"),
    ({"seeds": 3}, TypeError, "seeds"),
    ({"seeds": (1, 2.5)}, TypeError, r"seeds\[1\]"),
    ({"seeds": (-1,)}, ValueError, r"seeds\[0\]"),
    ({"smoothing": 1.0}, ValueError, "smoothing"),
    ({"smoothing": -0.1}, ValueError, "smoothing"),
    ({"diverge_factor": 1.0}, ValueError, "diverge_factor"),
    ({"sample_weight": np.ones(5)}, ValueError, "sample_weight"),
    ({"regularizer": "l2"}, TypeError, "regularizer"),
    ({"constraints": [3.0]}, TypeError, r"constraints\[0\]"),
    ({"progress": 5}, TypeError, "progress"),
])
def test_bad_arguments_are_refused_naming_the_argument(kwargs, error, match):
    X, y = blobs(60)
    with pytest.raises(error, match=match):
        lr_find(nl.mlp(6, [4], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), X, y,
                **kwargs)


def test_data_that_do_not_fit_the_model_are_refused():
    X, y = blobs(60)
    with pytest.raises(ValueError, match="features"):
        lr_find(nl.mlp(5, [4], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), X, y)
    with pytest.raises(ValueError, match="samples"):
        lr_find(nl.mlp(6, [4], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), X, y[:10])


def test_a_full_batch_optimizer_is_refused():
    X, y = blobs(60)
    with pytest.raises(ValueError, match="full batch"):
        lr_find(nl.mlp(6, [4], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.LBFGS(), X, y)


# -- acceptance: the suggestion trains as well as the best of a grid of full runs -----------------
def grid_best(optimizer: str, grid: np.ndarray) -> tuple[float, list[float]]:
    """The rate of ``grid`` whose 30-epoch run of the default digits config ends with the lowest
    validation loss, and every run's final validation loss."""
    cfg = RunConfig().with_overrides({"optim": {"optimizer": optimizer}})
    run = prepare_run(cfg)
    losses = []
    for lr in grid:
        c = cfg.with_overrides({"optim": {"lr": float(lr)}})
        parts = build_run(c, run.train[0].shape[1], run.n_outputs, len(run.train[1]))
        trainer = nl.Trainer(parts["model"], parts["loss"], parts["optimizer"], monitor=False)
        with np.errstate(all="ignore"):
            try:
                h = trainer.fit(*run.train, validation=run.val, epochs=c.train.epochs,
                                batch_size=c.train.batch_size, seed=c.train.seed)
                losses.append(float(h.epochs[-1]["val_loss"]))
            except nl.DivergenceError:
                losses.append(math.inf)
    best = int(np.nanargmin(np.where(np.isfinite(losses), losses, np.nan)))
    assert 0 < best < len(grid) - 1, losses  # the best is inside the grid, not at its edge
    return float(grid[best]), losses


def suggested(optimizer: str) -> LRFindResult:
    run = prepare_run(RunConfig().with_overrides({"optim": {"optimizer": optimizer}}))
    return lr_find(run.model, run.loss, run.optimizer, *run.train)


@pytest.mark.parametrize("optimizer, grid", [
    ("adam", np.logspace(-4, -2, 5)),
    ("momentum", np.logspace(-3, -1, 5)),
])
def test_the_suggestion_is_within_3x_of_the_best_of_a_half_decade_grid(optimizer, grid):
    best, losses = grid_best(optimizer, grid)
    lr = suggested(optimizer).suggestion
    assert best / 3 <= lr <= best * 3, (lr, best, losses)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer, grid", [
    ("adam", np.logspace(-4, -1, 10)),
    ("momentum", np.logspace(-3, 0, 10)),
])
def test_the_suggestion_is_within_3x_of_the_best_of_a_ten_run_grid(optimizer, grid):
    best, losses = grid_best(optimizer, grid)
    result = suggested(optimizer)
    assert best / 3 <= result.suggestion <= best * 3, (result.suggestion, best, losses)
    lo, hi = result.spread
    assert hi / lo < 3  # and the seeds agree
