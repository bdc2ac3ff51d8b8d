"""diagnose(): every rule fires on a real run that provokes it and stays quiet on a healthy run.

The runs (tests/_runs.py) are small: digits with an MLP, or 2-D spirals, 80-160 steps each,
a monitor sampling every 5 steps. Each is built once per module.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _runs import deep, digits_split, healthy, train

import neuronlab as nl
from neuronlab.babysit.diagnose import RULES


def _spiral_halves() -> tuple[np.ndarray, ...]:
    X, y = nl.data.spiral()
    return X[::2], y[::2], X[1::2], y[1::2]


# name -> how to provoke it (every run is seeded)
PROVOKE = {
    # SGD at lr = 10: the output overflows within a few steps
    "lr_too_high": lambda: train(nl.mlp(64, [64, 64], 10, rng=0), nl.SGD(lr=10.0)),
    # SGD at 0.01 raised to 2.0 at step 40: the update ratios jump at step 40, the loss after
    "update_spike": lambda: train(nl.mlp(64, [64, 64], 10, rng=0), nl.SGD(lr=0.01),
                                  schedule=lambda s: 0.01 if s < 40 else 2.0),
    # L2 strength 1: the penalty outweighs the data loss and holds the weights near 0
    "regularization_too_strong": lambda: train(nl.mlp(64, [64, 64], 10, rng=0), nl.Adam(lr=1e-3),
                                               regularizer=nl.L2(1.0), epochs=10),
    # a tanh net at SGD 0.1 whose last step runs at 5.0: a sharpness of ~2.7 against 2/5 = 0.4
    "edge_of_stability": lambda: train(
        nl.mlp(64, [64, 64], 10, activation="tanh", init="glorot", rng=0), nl.SGD(lr=0.1),
        schedule=lambda s: 0.1 if s < 79 else 5.0, sharpness_every=79),
    # one full batch of 1000 rows against a gradient noise scale B_simple of ~60
    "noise_scale": lambda: train(nl.mlp(64, [64, 64], 10, rng=0), nl.Adam(lr=1e-3),
                                 batch_size=1000, epochs=20, noise_every=5),
    # SGD at lr = 1e-7: ratios around 1e-8, the loss does not move
    "lr_too_low": lambda: train(nl.mlp(64, [64, 64], 10, rng=0), nl.SGD(lr=1e-7)),
    # sigmoid net with Glorot weights x8: confident wrong scores from the start (loss ~11)
    "initial_loss": lambda: train(deep("sigmoid", 5, 50, init="glorot", factor=8), nl.SGD(lr=0.1)),
    # 60 training digits, 200 hidden units, 30 epochs: memorised (100%) vs ~70% validation
    "overfitting": lambda: train(nl.mlp(64, [200], 10, rng=0), nl.Adam(lr=1e-3),
                                 data=digits_split(60, 500), epochs=30, batch_size=20),
    # a linear classifier on spirals: ~50% on both splits, flat
    "underfitting": lambda: train(nl.mlp(2, [], 3, rng=0), nl.Adam(lr=1e-2), data=_spiral_halves(),
                                  epochs=20, batch_size=30),
    # Adam at lr = 0.1 pushes most second-layer ReLUs below 0 for every input
    "dead_relu": lambda: train(nl.mlp(64, [64, 64], 10, rng=0), nl.Adam(lr=0.1)),
    # the same huge sigmoid net: most outputs pinned near 0 or 1
    "saturation": lambda: train(deep("sigmoid", 5, 50, init="glorot", factor=8), nl.SGD(lr=0.1)),
    # six sigmoid layers with std-0.01 weights: each layer multiplies the signal by ~0.01·0.25
    "vanishing_gradients": lambda: train(deep("sigmoid", 6, 50, init="normal"), nl.SGD(lr=0.1)),
    # eight ReLU layers with He weights x2.5: the backward signal grows ~2x per layer
    "exploding_gradients": lambda: train(deep("relu", 8, 50, init="he", factor=2.5), nl.SGD(lr=1e-7)),
    # tanh with std-0.01 weights (the notes' example): activations shrink ~14x per layer
    "activations_collapsing": lambda: train(deep("tanh", 6, 50, init="normal"), nl.SGD(lr=0.1)),
    # the same x2.5 ReLU net: activations grow ~2.5x per layer
    "activations_exploding": lambda: train(deep("relu", 8, 50, init="he", factor=2.5), nl.SGD(lr=1e-7)),
}


@pytest.fixture(scope="module")
def runs() -> dict[str, nl.Trainer]:
    cache: dict[str, nl.Trainer] = {}

    class Lazy(dict):
        def __missing__(self, key: str) -> nl.Trainer:
            cache[key] = (healthy if key == "healthy" else PROVOKE[key])()
            self[key] = cache[key]
            return cache[key]

    return Lazy()


def test_there_are_at_least_eight_rules_and_each_has_a_provoking_run():
    assert len(RULES) >= 8 and set(PROVOKE) == set(RULES)


@pytest.mark.parametrize("rule", list(PROVOKE))
def test_rule_fires_on_its_provoking_run(runs, rule):
    findings = nl.diagnose(runs[rule].history)
    names = [f.rule for f in findings]
    assert rule in names, nl.format_findings(findings)
    f = findings[names.index(rule)]
    assert f.message and f.action and f.severity in ("error", "warning", "info")
    assert "steps" in f.evidence or "epochs" in f.evidence
    json.dumps(f.to_dict(), allow_nan=False)  # evidence is plain JSON numbers


@pytest.mark.parametrize("rule", list(PROVOKE))
def test_rule_is_quiet_on_the_healthy_run(runs, rule):
    findings = nl.diagnose(runs["healthy"].history)
    assert rule not in [f.rule for f in findings], nl.format_findings(findings)


def test_healthy_run_is_healthy(runs):
    h = runs["healthy"].history
    assert h.epochs[-1]["val_acc"] > 0.9 and nl.diagnose(h) == []
    assert nl.format_findings([]) == "Diagnosis: no problems found."


def test_evidence_numbers(runs):
    """Spot checks that the evidence states the numbers the rule read."""
    (high,) = [f for f in nl.diagnose(runs["lr_too_high"].history) if f.rule == "lr_too_high"]
    tr = runs["lr_too_high"]
    assert high.severity == "error" and high.evidence["diverged_step"] == tr.diverged.step
    (low,) = [f for f in nl.diagnose(runs["lr_too_low"].history) if f.rule == "lr_too_low"]
    assert max(low.evidence["median_update_ratio"].values()) < 1e-5
    (init,) = [f for f in nl.diagnose(runs["initial_loss"].history) if f.rule == "initial_loss"]
    assert init.evidence["expected_initial_loss"] == pytest.approx(np.log(10))
    assert init.evidence["initial_loss"] == runs["initial_loss"].history.loss[0]  # no regulariser
    (over,) = [f for f in nl.diagnose(runs["overfitting"].history) if f.rule == "overfitting"]
    last = runs["overfitting"].history.epochs[-1]
    assert over.evidence["gap"] == pytest.approx(last["acc"] - last["val_acc"])


def test_underfitting_defers_to_the_learning_rate(runs):
    """The lr = 1e-7 run has low, flat accuracies too, but its cause is the learning rate."""
    names = [f.rule for f in nl.diagnose(runs["lr_too_low"].history)]
    assert "lr_too_low" in names and "underfitting" not in names


def test_diagnose_reads_a_json_round_trip_and_orders_errors_first(runs):
    h = runs["lr_too_high"].history
    findings = nl.diagnose(h)
    again = nl.diagnose(json.loads(json.dumps(h.to_dict())))
    assert [f.to_dict() for f in again] == [f.to_dict() for f in findings]
    assert findings[0].severity == "error"
    assert [f.severity for f in findings] == sorted((f.severity for f in findings),
                                                    key=["error", "warning", "info"].index)


def test_text_output(runs):
    findings = nl.diagnose(runs["saturation"].history)
    text = nl.format_findings(findings)
    assert text.startswith(f"Diagnosis: {len(findings)} findings")
    assert "1. [warning]" in text and "try: " in text
    one = str(findings[0])
    assert one.startswith(f"[{findings[0].severity}] {findings[0].rule}: ") and "\n  try: " in one


def test_empty_and_monitorless_histories():
    assert nl.diagnose(nl.History()) == []
    with pytest.raises(TypeError, match="history must be a History"):
        nl.diagnose([1, 2, 3])
    # without a monitor only the loss-based rules can speak: a NaN loss is still caught
    h = nl.History()
    h.loss = [2.3, 5.0, float("nan")]
    (f,) = nl.diagnose(h)
    assert f.rule == "lr_too_high" and f.evidence["first_non_finite_step"] == 2


def test_lr_too_low_under_lbfgs_speaks_of_its_iterations_not_a_learning_rate(runs):
    """L-BFGS has no learning rate (a line search sizes each step): with a tolerance it meets
    at once (tol=0.5) it leaves the weights where they are, and the finding says so in its
    terms; the SGD run's finding keeps the learning-rate text."""
    lb = train(nl.mlp(64, [64, 64], 10, rng=0), nl.LBFGS(max_iter=5, tol=0.5), epochs=5, every=1)
    assert lb.history.info["batch_size"] is None  # what the Monitor records for a full batch
    for h in (lb.history, json.loads(json.dumps(lb.history.to_dict()))):  # also from its JSON
        (f,) = [f for f in nl.diagnose(h) if f.rule == "lr_too_low"]
        assert f.evidence["full_batch"] is True
        assert f.message.startswith("L-BFGS hardly moves the weights") and "learning rate" not in f.message
        assert "tol=" in f.action and "max_iter=" in f.action and "more epochs" in f.action
        assert "raise the learning rate (" not in f.action
    (sgd,) = [f for f in nl.diagnose(runs["lr_too_low"].history) if f.rule == "lr_too_low"]
    assert "full_batch" not in sgd.evidence and sgd.message.startswith("update/weight ratios are below")
    assert sgd.action == "raise the learning rate (try 10x larger) until ratios are near 1e-3"


def _lbfgs_run(folder) -> nl.Trainer:
    """L-BFGS (50 iterations per epoch) on the digits, 3 epochs, with the default Monitor (as
    ``neuronlab train`` has it: one measurement, the first epoch's), logged to
    ``folder/metrics.jsonl``."""
    X, y, Xv, yv = digits_split()
    tr = nl.Trainer(nl.mlp(64, [32], 10, rng=0), nl.SoftmaxCrossEntropy(), nl.LBFGS(max_iter=50),
                    monitor=nl.Monitor(),
                    callbacks=[nl.JSONLLogger(folder)])
    tr.fit(X, y, validation=(Xv, yv), epochs=3)
    return tr


def test_a_healthy_lbfgs_run_is_not_told_to_lower_a_learning_rate_nor_about_its_initial_loss(tmp_path):
    """L-BFGS measures one update ratio per epoch (a whole minimize call: ratios of 1-100 are
    normal) and records its first loss after that call, not at the initial weights: neither is
    a sign of a learning rate too high or of a bad initialisation. The diagnosis reads the same
    from the History, its JSON and its metrics.jsonl."""
    from neuronlab.babysit.runview import RunView
    from neuronlab.babysit.update_ratio import HIGH_RATIO
    from neuronlab.plots import as_records
    from neuronlab.train.loggers import read_metrics

    tr = _lbfgs_run(tmp_path)
    h = tr.history
    # what fooled the rules: large per-epoch ratios, a first loss far below ln 10
    info = h.info
    assert info["batch_size"] is None and info["initial_loss"] is None
    assert h.loss[0] < info["expected_initial_loss"] / 2 == pytest.approx(np.log(10) / 2)
    ratios = RunView(h).weight_ratios()  # {array: (median ratio, steps)}
    assert len(ratios) == 2 and min(m for m, _ in ratios.values()) > HIGH_RATIO, ratios
    assert h.epochs[-1]["val_acc"] > 0.9
    from_jsonl = as_records(read_metrics(tmp_path)).to_history()
    assert from_jsonl.info["batch_size"] is None and from_jsonl.info["initial_loss"] is None
    for hist in (h, json.loads(json.dumps(h.to_dict())), from_jsonl):
        names = [f.rule for f in nl.diagnose(hist)]
        assert "lr_too_high" not in names and "initial_loss" not in names, names


def _history(loss, *, batch_size, ratio=None, **info) -> dict:
    """A history dict as the Monitor leaves it: ``batch_size`` None for full batch, one weight
    array (``ratio``: its update ratio at every step) and its bias."""
    monitor = [] if ratio is None else [
        {"step": s, "kind": "param", "layer": "0", "type": "Linear", "param": p, "role": role,
         "update_ratio": ratio}
        for s in range(len(loss)) for p, role in (("0.W", "weight"), ("0.b", "bias"))]
    return {"loss": list(loss), "epochs": [], "monitor": monitor,
            "info": {"loss": "SoftmaxCrossEntropy", "n_outputs": 10, "batch_size": batch_size,
                     "expected_initial_loss": float(np.log(10)), "initial_loss": None, **info}}


def _one(history: dict, rule: str):
    found = [f for f in nl.diagnose(history) if f.rule == rule]
    assert len(found) <= 1
    return found[0] if found else None


LR_HIGH_WARNING = "lower the learning rate (by 3-10x) until update/weight ratios are near 1e-3"
LR_HIGH_NAN = ("lower the learning rate (try 10x smaller), clip gradients, check the data for "
               "extreme values; NonFiniteGuard stops a run at the first bad step")


def test_lr_too_high_under_lbfgs_reads_the_loss_not_the_update_ratios():
    """Ratios of 0.5 fire lr_too_high for a minibatch run (text unchanged) and not for a full
    batch one; a growing or non-finite loss still fires for L-BFGS, with L-BFGS's remedies and
    no learning rate to lower, while the minibatch texts stay as they were."""
    flat = [1.0] * 25
    sgd = _one(_history(flat, batch_size=64, ratio=0.5), "lr_too_high")
    assert sgd.action == LR_HIGH_WARNING and "full_batch" not in sgd.evidence
    assert sgd.message.startswith("update/weight ratios are above 0.03 in 1 of 1 weight arrays")
    assert _one(_history(flat, batch_size=None, ratio=0.5), "lr_too_high") is None

    growing = list(np.linspace(1.0, 3.0, 25))
    sgd = _one(_history(growing, batch_size=64), "lr_too_high")
    assert sgd.action == LR_HIGH_WARNING and sgd.message.startswith("the loss grew from")
    lb = _one(_history(growing, batch_size=None, ratio=0.5), "lr_too_high")
    assert lb.severity == "warning" and lb.evidence["full_batch"] is True
    assert lb.message.startswith("L-BFGS: the loss grew from") and "ratio" not in lb.message
    assert "median_update_ratio" not in lb.evidence
    assert lb.action.startswith("L-BFGS has no learning rate to lower")
    assert "nl.gradcheck" in lb.action and "lower the learning rate (" not in lb.action

    nan = [2.3, 1.0, float("nan")]
    sgd = _one(_history(nan, batch_size=64), "lr_too_high")
    assert sgd.severity == "error" and sgd.action == LR_HIGH_NAN
    lb = _one(_history(nan, batch_size=None), "lr_too_high")
    assert lb.severity == "error" and lb.evidence["full_batch"] is True
    assert lb.message == sgd.message and lb.action.startswith("L-BFGS has no learning rate")
    for hist in (_history(nan, batch_size=None), _history(growing, batch_size=None)):
        again = nl.diagnose(json.loads(json.dumps(hist)))
        assert [f.to_dict() for f in again] == [f.to_dict() for f in nl.diagnose(hist)]


def test_lr_too_high_keeps_its_text_on_a_diverged_minibatch_run(runs):
    (f,) = [f for f in nl.diagnose(runs["lr_too_high"].history) if f.rule == "lr_too_high"]
    assert "full_batch" not in f.evidence
    assert f.action.endswith("lower the learning rate (try 10x smaller), clip gradients "
                             "(clip_norm), check the data for extreme values")


def test_initial_loss_compares_only_a_loss_at_the_initial_weights(runs):
    """A full-batch run's first recorded loss comes after its first L-BFGS iterations: without
    a measured initial loss the rule stays quiet; a minibatch run's first loss (taken before
    its first update) is still read, with the same text."""
    low_first = [0.1] * 5
    assert _one(_history(low_first, batch_size=None), "initial_loss") is None
    sgd = _one(_history(low_first, batch_size=64), "initial_loss")
    assert sgd.evidence["initial_loss"] == 0.1
    assert sgd.action == ("check the initialisation scale (weights too large make confident "
                          "wrong scores), the preprocessing and the loss; run nl.sanity_check")
    # a full-batch history that does hold a loss measured at the initial weights is checked
    measured = _one(_history(low_first, batch_size=None, initial_loss=25.0), "initial_loss")
    assert measured.evidence["initial_loss"] == 25.0 and measured.action == sgd.action
    (f,) = [f for f in nl.diagnose(runs["initial_loss"].history) if f.rule == "initial_loss"]
    assert f.message.startswith("the initial loss ") and f.action == sgd.action
