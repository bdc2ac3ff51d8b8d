"""The benchmark suite must not rot: run a tiny configuration of its neuronlab side (no
PyTorch or JAX needed; the JAX contenders in a test of their own, skipped where JAX is not
installed) and check the arithmetic its tables rest on. Speed is never asserted."""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench
from _reports import children
from ceiling import Ceiling, best_ceiling, gemm_ceiling
from report import Row, ratio, targets
from timing import interleave

TINY = replace(
    bench.QUICK,
    reps=2,
    large_rows=96,
    small_rows=128,
    large_infer_rows=64,
    small_infer_rows=256,
    digits_seeds=1,
    digits_max_epochs=2,
    memmap_gib=None,
    ceiling_tries=1,
    peers=(),
    sections=("ceiling", "train", "infer", "digits"),
    sizes={"large": (48, 16, 16, 3), "small": (64, 8, 10)},
    batch={"large": 32, "small": 16},
)


def test_tiny_run_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    result = bench.run_benchmark(TINY, out=out)
    rows = result["rows"]
    sections = {r.section for r in rows}
    assert sections == {"train large momentum", "train large adam", "train small momentum",
                        "train small adam", "infer large", "infer small", "digits to 97%"}
    for r in rows:  # the GEMMs-alone loop runs beside neuronlab where numba is installed
        assert r.contender.startswith("neuronlab") or r.contender == bench.GEMM_LOOP
        assert math.isfinite(r.rate) and r.rate > 0
    # training rows are compared with the training ceiling of their network
    large = next(r for r in rows if r.section == "train large momentum")
    assert large.ceiling == pytest.approx(result["ceilings"]["large"].train_rate)
    text = out.read_text()
    assert "## GEMM-only loop" in text and "48-16-16-3" in text
    assert "| *GEMM-only loop (np.matmul)* |" in text
    assert result["machine"]["cpu"] in text
    # without peers, the targets left are the monitors' costs and the ceiling's share
    names = [t for t, _, _ in targets(result)]
    assert sum("monitors cost" in n for n in names) == 4
    assert not any("PyTorch" in n or "scikit-learn" in n or "JAX" in n for n in names)
    assert sum("GEMM-only loop" in n for n in names) == 2  # 85%, both large sections


def test_l2_under_load_row(tmp_path: Path) -> None:
    """The L2 row: both fits timed with a busy process beside them, which is stopped after."""
    before = children()
    cfg = replace(TINY, sections=("l2",), l2_epochs=1, l2_reps=1, l2_busy=1)
    out = tmp_path / "RESULTS.md"
    result = bench.run_benchmark(cfg, out=out)
    l2 = result["l2"]
    for kind in ("wall", "cpu"):
        assert set(l2[kind]) == {"l2", "no l2"}
        assert all(math.isfinite(v) and v > 0 for v in l2[kind].values())
    ratio_ = l2["wall"]["l2"] / l2["wall"]["no l2"]
    assert [(t, v) for t, v, _ in targets(result)] == [
        ("L2 under load (1 busy processes): alpha=1e-4 ≤ 1.2× alpha=0", f"{ratio_:.2f}×")]
    text = out.read_text()
    assert "## L2 under load" in text and "| wall seconds |" in text
    assert children() <= before  # the busy process is gone


def test_tiny_run_with_jax(tmp_path: Path) -> None:
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    import jax_contenders as J

    cfg = replace(TINY, peers=("jax",), sections=("ceiling", "train"))
    out = tmp_path / "RESULTS.md"
    result = bench.run_benchmark(cfg, out=out)
    rows = result["rows"]
    for section in ("train large momentum", "train large adam", "train small momentum",
                    "train small adam"):
        got = {r.contender: r for r in rows if r.section == section}
        assert set(got) == {"neuronlab", "neuronlab (monitors off)", J.PER_STEP, J.SCAN}
        assert all(math.isfinite(r.rate) and r.rate > 0 for r in got.values())
        check = got[J.SCAN].agreement
        assert check is not None and check.ok, (section, check)  # the same work
    names = [t for t, _, _ in targets(result)]
    assert sum("JAX (jit whole epoch, scan)" in n for n in names) == 4
    text = out.read_text()
    assert "× JAX scan" in text and "Weight check (not timed)" in text
    assert "the same work." in text and "DISAGREE" not in text


def test_jax_contenders_train_what_neuronlab_trains() -> None:
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    import contenders as C
    import jax_contenders as J

    X, y = C.random_data(64, 8, 3, seed=0)
    sizes, batch = (8, 16, 3), 16
    for opt in C.OPTIMIZERS.values():
        check = J.agreement(X, y, sizes, batch, opt, rows=64)
        assert check.ok and check.steps == 4, check
        # another order, or another learning rate, is other work, and the check says so
        for other_order, lr in ((99, opt.lr), (1234, opt.lr * 1.1)):
            trainer = C._nl_trainer(sizes, opt, monitor=False, seed=0)
            start = [a.copy() for a in trainer.model.params.values()]
            run = J.jax_epoch(X, y, sizes, batch, replace(opt, lr=lr), scan=False)
            run.train(J.order(64, batch, other_order))
            trainer.fit(X, y, epochs=1, batch_size=batch, seed=1234)
            _, update = J.compare(list(trainer.model.params.values()), run.weights(), start)
            assert update > 5 * check.tolerance, (other_order, lr, update)
        # per step and scan agree with each other, epoch by epoch
        step, scan = (J.jax_epoch(X, y, sizes, batch, opt, scan=s) for s in (False, True))
        assert step() == scan() == 64
        for a, b in zip(step.weights(), scan.weights(), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="whole number of batches"):
        J.jax_epoch(X[:60], y[:60], sizes, batch, C.OPTIMIZERS["adam"], scan=True)


def test_jax_missing_is_said_and_skipped(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(bench.J, "available", lambda: "ImportError: No module named 'jax'")
    result = bench.run_benchmark(replace(TINY, peers=("jax",), sections=()))
    assert "jax is not importable" in capsys.readouterr().out
    assert result["rows"] == [] and result["config"].peers == ()


def test_e2e_startup_rows_run_fresh_processes() -> None:
    from e2e import measure_e2e, neuronlab_script

    said: list[str] = []
    rows = measure_e2e(reps=1, parts=("startup",), say=said.append)
    names = [r.name for r in rows]
    assert names[:2] == ['python -c "import numpy"', 'python -c "import neuronlab"']
    assert ("neuronlab --help" in names) == (neuronlab_script() is not None)
    assert all(r.unit == "s" and r.value > 0 and r.runs == 1 for r in rows)
    assert {r.name: r.target for r in rows}['python -c "import neuronlab"'] == 0.25
    assert len(said) == len(rows)


def test_memmap_child_trains_from_npy(tmp_path: Path) -> None:
    from memory import measure_memmap

    rep = bench.measure_memmap(0.002, tmpdir=str(tmp_path))  # ~170 rows of 3072 float32
    assert measure_memmap is bench.measure_memmap
    assert rep["is_memmap"] and rep["rows"] == int(0.002 * 2**30) // (3072 * 4)
    assert rep["peak_rss_mib"] >= rep["baseline_rss_mib"] > 0
    assert not any(tmp_path.iterdir())  # the temporary data set is removed


def test_ceiling_counts_three_gemms_but_no_input_gradient() -> None:
    # sizes 4-3-2, batch 5: layer 0 has forward + dW = 2 products of 5*4*3 = 60 MACs,
    # layer 1 has forward + dW + dX = 3 products of 5*3*2 = 30 MACs; flops = 2 per MAC:
    # 2*(2*60 + 3*30) = 420
    c = gemm_ceiling((4, 3, 2), 5, infer_batch=5, tries=1)
    assert c.train_flops == 420
    assert c.train_rate == pytest.approx(5 / c.train_seconds)
    assert c.infer_seconds < c.train_seconds  # the forward products are a subset


def test_best_ceiling_keeps_the_faster_time_of_each_kind() -> None:
    a = Ceiling((4, 2), 8, train_seconds=2.0, infer_seconds=0.5, train_flops=10.0, peak_gflops=1.0)
    b = Ceiling((4, 2), 8, train_seconds=1.0, infer_seconds=0.9, train_flops=10.0, peak_gflops=3.0)
    c = best_ceiling(a, b)
    assert (c.train_seconds, c.infer_seconds, c.peak_gflops) == (1.0, 0.5, 3.0)
    assert c.train_rate == 8.0 and c.infer_rate == 16.0  # batch / seconds


def test_interleave_rotates_order_and_counts_items() -> None:
    calls: list[str] = []
    runs = {name: (lambda name=name: calls.append(name) or 10) for name in "abc"}
    samples = interleave(runs, reps=3, warmup=1)
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert all(s.items == [10, 10, 10] and len(s.seconds) == 3 for s in samples.values())


def test_ratios_and_targets() -> None:
    rows = [Row("train large momentum", "neuronlab", 120.0, 0.0, 200.0, monitor_share=0.023),
            Row("train large momentum", "neuronlab (monitors off)", 100.0, 0.0, 200.0),
            Row("train large momentum", "pytorch", 100.0, 0.0, 200.0),
            Row("train large momentum", "scikit-learn", 50.0, 0.0, 200.0)]
    assert ratio(rows, "train large momentum", "neuronlab", "pytorch") == pytest.approx(1.2)
    assert ratio(rows, "train large momentum", "neuronlab", "missing") is None
    got = {t: (v, ok) for t, v, ok in targets({"rows": rows, "memmap": None})}
    assert got["train large momentum: ≥ 1.1× PyTorch"] == ("1.20×", True)
    # the GEMM-only share is the monitors-off row's (the same work as the GEMM loop): 100/200
    assert got["train large momentum: monitors off ≥ 85% of the GEMM-only loop"] == ("50%", False)
    assert got["train large momentum: ≥ 2× scikit-learn"] == ("2.40×", True)
    # the monitor's own clocked time, not the noisy ratio of medians (120 vs 100)
    assert got["train large momentum: monitors cost ≤ 5%"] == ("2%", True)


def test_jax_targets_are_judged_only_for_the_same_work() -> None:
    from dataclasses import dataclass

    from e2e import E2E
    from report import JAX_SCAN, NL_OFF

    @dataclass
    class Check:
        ok: bool

    def rows(ok: bool) -> list[Row]:
        return [Row("train small adam", "neuronlab", 120.0, 0.0, None),
                Row("train small adam", NL_OFF, 130.0, 0.0, None),
                Row("train small adam", JAX_SCAN, 100.0, 0.0, None, agreement=Check(ok)),
                Row("train large adam", "neuronlab", 90.0, 0.0, 110.0),
                Row("train large adam", NL_OFF, 100.0, 0.0, 110.0),
                Row("train large adam", JAX_SCAN, 100.0, 0.0, 110.0)]

    got = {t: (v, ok) for t, v, ok in targets({"rows": rows(True), "memmap": None})}
    assert got["train small adam: monitors off ≥ 1.25× JAX (jit whole epoch, scan)"] == ("1.30×", True)
    assert got["train large adam: monitors off ≥ 1.05× JAX (jit whole epoch, scan)"] == ("1.00×", False)
    assert got["train large adam: monitors off ≥ 85% of the GEMM-only loop"] == ("91%", True)
    got = {t: (v, ok) for t, v, ok in targets({"rows": rows(False), "memmap": None})}
    assert got["train small adam: monitors off ≥ 1.25× JAX (jit whole epoch, scan) — JAX did other work, "
               "not judged"] == ("1.30×", None)
    e2e = [E2E('python -c "import neuronlab"', 0.31, "s", 7, 0.1, target=0.25),
           E2E("neuronlab --help", 0.29, "s", 7, 0.1, target=0.3),
           E2E("neuronlab search", 200.0, "trials/min", 1, 0.0)]
    got = {t: (v, ok) for t, v, ok in targets({"rows": [], "memmap": None, "e2e": e2e})}
    assert got == {'python -c "import neuronlab": ≤ 0.25 s': ("0.31 s", False),
                   "neuronlab --help: ≤ 0.3 s": ("0.29 s", True)}


def test_monitor_share_is_the_time_inside_the_monitor() -> None:
    import contenders as C

    X, y = C.random_data(640, 8, 3, seed=0)
    share = C.monitor_share(X, y, (8, 16, 3), 32, C.OPTIMIZERS["momentum"], steps=20)
    # a ratio, not a fraction: with the compiled engine 20 steps of this network take well
    # under a millisecond, so a busy moment inside a hook can make the monitor the larger part
    assert 0.0 < share and math.isfinite(share)


def test_random_data_is_float32_and_labelled() -> None:
    from contenders import random_data

    X, y = random_data(50, 7, 3, seed=0)
    assert X.dtype == np.float32 and X.shape == (50, 7)
    assert y.dtype == np.int64 and set(np.unique(y)) <= {0, 1, 2}
