"""The BLAS thread policy (neuronlab.threads) and the Trainer's ``threads``: which limit a
network gets, that it is in force during fit / evaluate / predict (read back through
threadpoolctl, never timed) and that the previous limits come back afterwards."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import scipy.linalg.cython_blas  # noqa: F401  SciPy's BLAS (the engine's): blas() lists it from the start
from threadpoolctl import threadpool_info, threadpool_limits

import neuronlab as nl
from neuronlab import prediction
from neuronlab.threads import (
    SMALL_GEMM_FLOPS,
    blas_threads,
    check_threads,
    largest_gemm_flops,
    limit_blas,
)
from neuronlab.train import trainer as trainer_module


def blas() -> list[int]:
    """The thread limit of every loaded BLAS (NumPy's, SciPy's)."""
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


class Spy(nl.Callback):
    """Records the BLAS limits at the start of the fit and after every step."""

    def __init__(self) -> None:
        self.seen: list[list[int]] = []

    def on_train_begin(self, trainer) -> None:
        self.seen.append(blas())

    def on_batch_end(self, trainer, step, logs) -> None:
        self.seen.append(blas())


def data(n_in: int, n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n_in)).astype(np.float32), rng.integers(0, 3, n)


def fit(model, threads=None, *, batch_size=32, callbacks=()):
    tr = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.01), monitor=False,
                    callbacks=callbacks, threads=threads)
    tr.fit(*data(model.n_in), epochs=1, batch_size=batch_size)
    return tr


@pytest.fixture
def two_threads():
    """Run the test with two BLAS threads where the library allows them (restored after)."""
    with threadpool_limits(limits=2, user_api="blas"):
        yield blas()


# -- the policy ------------------------------------------------------------------------------
def test_largest_product_in_flops():
    model = nl.mlp(64, [256], 10, rng=0)  # the digits MLP: 64x256 is the largest weight
    assert largest_gemm_flops(model, 32) == 2 * 32 * 64 * 256  # 1.05 MFLOP
    assert largest_gemm_flops(model.astype(np.float64), 32) == 2 * 2 * 32 * 64 * 256
    assert largest_gemm_flops(nl.Sequential([nl.ReLU()]), 32) == 0


@pytest.mark.parametrize(
    "sizes, rows, expected",
    [
        ((64, [256], 10), 32, 1),  # digits: 1 MFLOP per GEMM
        ((64, [128], 10), 32, 1),  # the benchmark's small network
        ((3072, [512, 512], 10), 256, None),  # CIFAR's first layer: 805 MFLOP, threads pay
        ((3072, [512], 10), 2, 1),  # the same weights on two rows
    ],
)
def test_policy(sizes, rows, expected):
    model = nl.mlp(*sizes, rng=0)
    assert blas_threads(model, rows) == expected
    assert blas_threads(model, rows, 3) == 3  # the user's number wins
    assert (largest_gemm_flops(model, rows) < SMALL_GEMM_FLOPS) == (expected == 1)


@pytest.mark.parametrize("bad, err", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                      (True, TypeError), ("2", TypeError)])
def test_bad_threads(bad, err):
    with pytest.raises(err, match="threads must be"):
        check_threads(bad)
    with pytest.raises(err, match="threads must be"):
        nl.Trainer(nl.mlp(4, [3], 2, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1),
                   threads=bad)
    assert check_threads(None) is None and check_threads(np.int64(4)) == 4


# -- the limits in force, and restored -------------------------------------------------------
def test_small_network_fits_on_one_thread_and_restores(two_threads):
    spy = Spy()
    fit(nl.mlp(64, [256], 3, rng=0), callbacks=[spy])
    assert len(spy.seen) == 3  # train begin and two steps
    assert all(set(s) == {1} for s in spy.seen)
    assert blas() == two_threads


def test_large_network_keeps_blas_as_it_is(two_threads):
    spy = Spy()
    fit(nl.mlp(3072, [512], 3, rng=0), batch_size=64, callbacks=[spy])  # 201 MFLOP per GEMM
    assert all(s == two_threads for s in spy.seen)
    assert blas() == two_threads


def test_threads_given_win_over_the_policy(two_threads):
    spy = Spy()
    fit(nl.mlp(3072, [512], 3, rng=0), threads=1, batch_size=64, callbacks=[spy])
    assert all(set(s) == {1} for s in spy.seen)
    assert blas() == two_threads
    spy = Spy()  # a small network where the user asks for more than the policy's one
    fit(nl.mlp(64, [256], 3, rng=0), threads=max(two_threads), callbacks=[spy])
    assert all(s == two_threads for s in spy.seen)


def test_limits_restored_when_fit_raises(two_threads):
    class Boom(nl.Callback):
        def on_batch_end(self, trainer, step, logs):
            assert set(blas()) == {1}
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        fit(nl.mlp(64, [256], 3, rng=0), callbacks=[Boom()])
    assert blas() == two_threads


def test_evaluate_and_predict_run_under_the_limit(two_threads, monkeypatch):
    tr = fit(nl.mlp(64, [256], 3, rng=0), threads=1)
    seen = []
    real_eval, real_pred, real_proba = (trainer_module.evaluate, prediction.predict,
                                        prediction.predict_proba)

    def spy(fn):
        return lambda *a, **k: seen.append(blas()) or fn(*a, **k)

    monkeypatch.setattr(trainer_module, "evaluate", spy(real_eval))
    monkeypatch.setattr(prediction, "predict", spy(real_pred))
    monkeypatch.setattr(prediction, "predict_proba", spy(real_proba))
    X, y = data(64, seed=1)
    tr.evaluate(X, y)
    tr.predict(X)
    tr.predict_proba(X)
    assert len(seen) == 3 and all(set(s) == {1} for s in seen)
    assert blas() == two_threads


@pytest.mark.parametrize("first", ["main", "worker"])
def test_overlapping_blocks_in_threads_restore_the_original(first):
    """Fits in two threads (the playground) that overlap and end in either order leave the
    limits as they were before both; while one holds the limit, the other runs under it.
    (No ``two_threads`` here: threadpoolctl lets only the thread inside a ``threadpool_limits``
    block change OpenBLAS's limits while that block runs.)"""
    before = blas()
    entered, leave = threading.Event(), threading.Event()
    seen = []

    def worker():
        if first == "worker":
            with limit_blas(1):
                entered.set()
                leave.wait(10)
        else:
            entered.wait(10)
            with limit_blas(1):
                seen.append(blas())
                leave.set()
                time.sleep(0.05)  # ends after the main thread's block

    t = threading.Thread(target=worker)
    t.start()
    with limit_blas(1):
        if first == "main":
            entered.set()
            assert leave.wait(10)
        else:
            assert entered.wait(10)
            assert set(blas()) == {1}
            leave.set()
    t.join(10)
    assert not t.is_alive()
    assert all(set(s) == {1} for s in seen)
    assert blas() == before
    with limit_blas(None):  # None changes nothing
        assert blas() == before
    with limit_blas(1):  # and the next block sets the limit again
        assert set(blas()) == {1}
    assert blas() == before


_LATER_BLAS = """
import json, numpy
from threadpoolctl import threadpool_info
from neuronlab.threads import limit_blas

def blas():
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

out = {}
with limit_blas(1):
    out["numpy only"] = blas()
import scipy.linalg  # SciPy's own OpenBLAS, loaded after the first block
out["loaded"] = blas()
with limit_blas(1):
    out["both"] = blas()
out["after"] = blas()
print(json.dumps(out))
"""


def test_a_blas_loaded_after_the_first_block_is_limited_too():
    """The handles on the BLAS libraries are kept between blocks (finding them costs ~1 ms)
    and found again after imports: SciPy's OpenBLAS, loaded after a first block, is limited
    in the next one. In a fresh process, where SciPy is not loaded yet."""
    import json
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _LATER_BLAS], capture_output=True, text=True,
                       timeout=120, check=True)
    out = json.loads(r.stdout)
    assert set(out["numpy only"].values()) == {1}
    new = set(out["loaded"]) - set(out["numpy only"])
    if not new:
        pytest.skip("SciPy shares NumPy's BLAS here: no second library to find")
    assert set(out["both"]) == set(out["loaded"]) and set(out["both"].values()) == {1}
    assert out["after"] == out["loaded"]  # and the previous limits came back


_FIRST_FIT = """
import json
import numpy as np
import neuronlab as nl
from threadpoolctl import threadpool_info

def blas():
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

class Spy(nl.Callback):
    seen = []
    def on_train_begin(self, trainer):
        self.seen.append(blas())
    def on_batch_end(self, trainer, step, logs):
        self.seen.append(blas())

rng = np.random.default_rng(0)
X, y = rng.standard_normal((64, 64)).astype(np.float32), rng.integers(0, 3, 64)
before = blas()
tr = nl.Trainer(nl.mlp(64, [256], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.01),
                monitor=False, callbacks=[Spy()])
tr.fit(X, y, epochs=1, batch_size=32)
print(json.dumps({"before": before, "seen": Spy.seen, "after": blas(), "engine": tr.engine_used}))
"""


def test_the_first_fit_of_a_process_limits_the_engine_blas_too():
    """The compiled engine's products go through SciPy's BLAS, which a process loads for its
    first fit: it is loaded before the fit sets its limits, so the engine's products of a
    small network run on one thread from the first step on (a fresh process: every
    ``neuronlab train``)."""
    import json
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _FIRST_FIT], capture_output=True, text=True,
                       timeout=300, check=True)
    out = json.loads(r.stdout)
    if out["engine"] != "compiled":
        pytest.skip(f"no compiled engine here: {out['engine']}")
    libraries = set(out["seen"][0])
    assert len(out["seen"]) == 3  # the fit's start and its two steps
    assert all(set(s) == libraries and set(s.values()) == {1} for s in out["seen"]), out
    assert all(out["after"][k] == v for k, v in out["before"].items())  # restored


# -- the command line --------------------------------------------------------------------------
def test_cli_threads_reaches_the_trainer(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import neuronlab.train as train_pkg
    from neuronlab.cli import cli

    seen = []
    real = train_pkg.Trainer

    class Recording(real):
        def __init__(self, *args, threads=None, **kwargs):
            seen.append(threads)
            super().__init__(*args, threads=threads, **kwargs)

    monkeypatch.setattr(train_pkg, "Trainer", Recording)
    args = ["train", "--data", "spiral", "--hidden", "8", "--epochs", "1", "--no-report",
            "--no-progress", "--runs-dir", str(tmp_path)]
    result = CliRunner().invoke(cli, [*args, "--threads", "1", "--name", "one"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, [*args, "--name", "policy"])
    assert result.exit_code == 0, result.output
    assert seen == [1, None]
    assert "threads" not in (tmp_path / "one" / "config.toml").read_text()  # not the run's
    result = CliRunner().invoke(cli, [*args, "--threads", "0", "--name", "zero"])
    assert result.exit_code == 2 and "--threads" in result.output
    assert not (tmp_path / "zero").exists()
