import json

import numpy as np
import pytest

from neuronlab.ensemble import EMA, Ensemble, Polyak, recompute_batchnorm
from neuronlab.layers import BatchNorm, Dropout, Linear, Sequential, mlp
from neuronlab.losses import SoftmaxCrossEntropy
from neuronlab.optim import SGD, Adam
from neuronlab.train import Checkpoint, Trainer


def _linear_model(W, b):
    W = np.asarray(W, dtype=np.float64)
    m = Sequential([Linear(W.shape[0], W.shape[1], dtype=np.float64)])
    m.set_arrays({"0.W": np.asarray(W, dtype=np.float64), "0.b": np.asarray(b, dtype=np.float64)})
    return m


def test_ensemble_averages_probabilities():
    # Two one-layer models on x = [[1, 0]]: scores are the first row of W plus b.
    a = _linear_model([[np.log(3.0), 0.0], [0.0, 0.0]], [0.0, 0.0])  # softmax([ln 3, 0]) = [3/4, 1/4]
    b = _linear_model([[0.0, 0.0], [0.0, 0.0]], [0.0, np.log(4.0)])  # softmax([0, ln 4]) = [1/5, 4/5]
    ens = Ensemble([a, b])
    x = np.array([[1.0, 0.0]])
    p = ens.predict_proba(x)
    # mean of [3/4, 1/4] and [1/5, 4/5] = [0.475, 0.525]: the ensemble picks class 1 although
    # member a is more confident about class 0 than b is about class 1 in score terms
    np.testing.assert_allclose(p, [[0.475, 0.525]])
    assert ens.predict(x).tolist() == [1]
    assert ens.score(x, np.array([1])) == 1.0
    assert ens.member_scores(x, np.array([1])) == [0.0, 1.0]
    w = Ensemble([a, b], weights=[3, 1]).predict_proba(x)  # (3·[.75,.25] + [.2,.8]) / 4
    np.testing.assert_allclose(w, [[0.6125, 0.3875]])


def test_ensemble_applies_each_members_preprocessor():
    from neuronlab.preprocessing import MeanCenter

    a = _linear_model(np.eye(2), np.zeros(2))
    pre = MeanCenter().fit(np.array([[10.0, 0.0], [10.0, 0.0]]))
    a.preprocessor = pre
    x = np.array([[11.0, 0.0]])  # centred: [1, 0] -> scores [1, 0]
    np.testing.assert_allclose(Ensemble([a]).predict_proba(x), [[np.e / (np.e + 1), 1 / (np.e + 1)]])


def test_ensemble_errors():
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])
    m = _linear_model(np.eye(2), np.zeros(2))
    with pytest.raises(ValueError, match="regression"):
        Ensemble([m], losses=["mse"])
    with pytest.raises(ValueError, match="weights"):
        Ensemble([m, m], weights=[0, 0])


def test_ensemble_accepts_array_likes_like_its_members():
    a = _linear_model([[np.log(3.0), 0.0], [0.0, 0.0]], [0.0, 0.0])
    b = _linear_model([[0.0, 0.0], [0.0, 0.0]], [0.0, np.log(4.0)])
    ens = Ensemble([a, b])
    rows = [[1.0, 0.0], [0.0, 1.0]]
    expected = ens.predict_proba(np.array(rows))
    for X in (rows, tuple(map(tuple, rows)), [[1, 0], [0, 1]]):  # lists, tuples, integer data
        np.testing.assert_allclose(ens.predict_proba(X), expected)
        assert ens.predict(X).tolist() == expected.argmax(axis=1).tolist()
        assert ens.score(X, [1, 0]) == 0.5
        assert ens.member_scores(X, [1, 0]) == [0.5, 0.5]
    np.testing.assert_allclose(expected, (a.predict_proba(rows) + b.predict_proba(rows)) / 2)
    with pytest.raises(ValueError, match="NaN"):
        ens.predict_proba([[np.nan, 0.0]])
    with pytest.raises(TypeError, match="numbers"):
        ens.predict_proba([["a", "b"]])
    with pytest.raises(ValueError, match="features"):
        ens.predict_proba([[1.0, 0.0, 0.0]])


def test_multilabel_members_read_scores_with_the_multilabel_loss(tmp_path):
    from sklearn.datasets import make_multilabel_classification

    from neuronlab.io import save
    from neuronlab.losses import SigmoidCrossEntropy
    from neuronlab.prediction import resolve_loss

    X, Y = make_multilabel_classification(n_samples=60, n_features=5, n_classes=3, random_state=0)
    X = X.astype(np.float64)
    paths = []
    for seed in (0, 1):
        model = mlp(5, [8], 3, rng=seed, dtype=np.float64)
        Trainer(model, SigmoidCrossEntropy(multilabel=True), Adam(lr=1e-2), monitor=False).fit(
            X, Y, epochs=2, batch_size=30)
        paths.append(tmp_path / f"m{seed}.safetensors")
        save(model, paths[-1], metadata={"loss": "sigmoid_cross_entropy"})  # as a run saves it
    ens = Ensemble.from_files(paths)
    for model, loss in zip(ens.models, ens.losses):
        single = resolve_loss(model)  # what model.predict_proba uses
        assert type(loss) is type(single) is SigmoidCrossEntropy
        assert loss.task == single.task == "multilabel"
        assert loss.get_config() == single.get_config() == {"multilabel": True}
    # the members' probabilities are each model's own, one column per attribute
    # (the binary loss refused the (n, 3) scores)
    p = ens.predict_proba(X)
    assert p.shape == Y.shape
    np.testing.assert_allclose(p, np.mean([m.predict_proba(X) for m in ens.models], axis=0))
    # labels: each attribute against 0.5 (not an argmax over the attributes); the score is
    # the fraction of rows with every attribute right (scikit-learn's subset accuracy)
    labels = ens.predict(X)
    np.testing.assert_array_equal(labels, (p >= 0.5).astype(np.int64))
    assert ens.score(X, Y) == pytest.approx(np.mean(np.all(labels == Y, axis=1)))
    members = [(m.predict_proba(X) >= 0.5) for m in ens.models]
    assert ens.member_scores(X, Y) == pytest.approx([np.mean(np.all(q == Y, axis=1)) for q in members])
    with pytest.raises(ValueError, match=r"shape \(60, 3\).*got shape \(60,\)"):
        ens.score(X, Y[:, 0])
    # explicit loss names resolve the same way
    assert all(loss.multilabel for loss in Ensemble(ens.models, losses=["sigmoid_cross_entropy"] * 2).losses)
    # and members of another task are refused, whatever their order (same output width)
    other = mlp(5, [8], 3, rng=2, dtype=np.float64)
    for models, names in (([ens.models[0], other], ["sigmoid_cross_entropy", "softmax"]),
                          ([other, ens.models[0]], ["softmax", "sigmoid_cross_entropy"])):
        with pytest.raises(ValueError, match="mix classification and multilabel members"):
            Ensemble(models, losses=names)


class _FakeTrainer:
    def __init__(self, model):
        self.model = model


def test_ema_and_polyak_golden():
    m = _linear_model([[0.0]], [0.0])
    ema, pol = EMA(decay=0.5), Polyak()
    t = _FakeTrainer(m)
    ema.on_train_begin(t)
    pol.on_train_begin(t)
    for step, w in enumerate([2.0, 4.0, 8.0]):
        m.params["0.W"][...] = w
        ema.on_batch_end(t, step, {})
        pol.on_batch_end(t, step, {})
    # EMA from a0 = 0 with decay 1/2: 0.5·0 + 0.5·2 = 1; 0.5·1 + 0.5·4 = 2.5; 0.5·2.5 + 0.5·8 = 5.25
    assert ema.averaged["0.W"][0, 0] == pytest.approx(5.25)
    # Polyak: the plain mean of the three weights after the steps, (2 + 4 + 8) / 3
    assert pol.averaged["0.W"][0, 0] == pytest.approx(14 / 3)


def test_ema_start_step_follows_weights_before():
    m = _linear_model([[0.0]], [0.0])
    ema = EMA(decay=0.5, start_step=2)
    t = _FakeTrainer(m)
    ema.on_train_begin(t)
    for step, w in enumerate([2.0, 4.0, 8.0]):
        m.params["0.W"][...] = w
        ema.on_batch_end(t, step, {})
    # steps 0, 1 copy the weights (a = 4 after step 1); step 2: 0.5·4 + 0.5·8 = 6
    assert ema.averaged["0.W"][0, 0] == pytest.approx(6.0)


def test_recompute_batchnorm_gives_the_data_statistics(rng):
    model = Sequential([Linear(3, 4, dtype=np.float64, rng=0), BatchNorm(4, dtype=np.float64), Dropout(0.5, rng=1)])
    X = rng.normal(size=(100, 3)) * 3 + 1
    recompute_batchnorm(model, X, batch_size=25)
    h = X @ model.params["0.W"] + model.params["0.b"]
    bn = model[1]
    # four equal batches: the mean of the batch means is the data mean; the running variance is
    # the mean of the biased within-batch variances
    np.testing.assert_allclose(bn.buffers["running_mean"], h.mean(axis=0), rtol=1e-12)
    expected_var = np.mean([h[i : i + 25].var(axis=0) for i in range(0, 100, 25)], axis=0)
    np.testing.assert_allclose(bn.buffers["running_var"], expected_var, rtol=1e-12)
    assert bn.momentum == 0.9 and model[2].noise_off is False  # restored


def test_recompute_batchnorm_weights_unequal_batches(rng):
    model = Sequential([BatchNorm(2, dtype=np.float64)])
    X = rng.normal(size=(30, 2))
    recompute_batchnorm(model, X, batch_size=20)  # batches of 20 and 10: weights 2/3, 1/3
    np.testing.assert_allclose(model[0].buffers["running_mean"], X.mean(axis=0), rtol=1e-12)


def test_ema_in_training_with_batchnorm(rng):
    from neuronlab.data import blobs

    X, y = blobs(n=300, seed=0)
    model = mlp(X.shape[1], [16], int(y.max()) + 1, batchnorm=True, rng=0)
    ema = EMA(decay=0.9)
    tr = Trainer(model, SoftmaxCrossEntropy(), Adam(lr=1e-2), callbacks=[ema], monitor=False)
    tr.fit(X, y, epochs=5, batch_size=32)
    avg = ema.averaged_model(model, X)
    assert set(avg.params) == set(model.params)
    assert not np.allclose(avg.params["0.W"], model.params["0.W"])  # averaged, not a copy
    assert model.params["0.W"] is not avg.params["0.W"]
    acc = float(np.mean(SoftmaxCrossEntropy().predict(avg.forward(X)) == y))
    assert acc > 0.9


def test_snapshot_ensemble_from_checkpoints(tmp_path):
    from neuronlab.data import blobs

    X, y = blobs(n=200, seed=0)
    model = mlp(X.shape[1], [8], int(y.max()) + 1, rng=0)
    Trainer(model, SoftmaxCrossEntropy(), SGD(lr=0.1), callbacks=[Checkpoint(tmp_path, every_epochs=1)],
            monitor=False).fit(X, y, epochs=4, batch_size=50)
    ens = Ensemble.from_checkpoints(tmp_path, last=3)
    assert len(ens) == 3
    assert [n.split("-step")[0] for n in ens.names] == ["epoch-0001", "epoch-0002", "epoch-0003"]
    # the last snapshot is the trained model itself
    np.testing.assert_allclose(ens.models[-1].params["0.W"], model.params["0.W"])
    assert ens.score(X, y) > 0.8


def test_from_search_takes_the_top_k(tmp_path):
    from neuronlab.config import RunConfig
    from neuronlab.search import TrainObjective, run_search

    base = RunConfig().with_overrides({"model": {"hidden": [8]}, "train": {"epochs": 1, "batch_size": 128}})
    r = run_search(TrainObjective(base), {"lr": "loguniform(1e-3, 1e-1)"}, n_trials=4, workers=0,
                   directory=tmp_path, pruner=None, plots=False)
    ens = Ensemble.from_search(tmp_path, top_k=2)
    ranked = sorted(r.records, key=lambda t: (-t["value"], t["val_loss"], t["number"]))
    assert ens.names == [f"trial {t['number']}" for t in ranked[:2]]
    with pytest.raises(ValueError, match="top_k"):
        Ensemble.from_search(tmp_path, top_k=0)
    # the same trials from a study that minimised: its best are the lowest values
    spec = json.loads((tmp_path / "search.json").read_text())
    (tmp_path / "search.json").write_text(json.dumps({**spec, "direction": "minimize"}))
    ens = Ensemble.from_search(tmp_path, top_k=2)
    ranked = sorted(r.records, key=lambda t: (t["value"], t["val_loss"], t["number"]))
    assert ens.names == [f"trial {t['number']}" for t in ranked[:2]]
