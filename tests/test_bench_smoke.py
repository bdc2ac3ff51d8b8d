"""The benchmark suite must not rot: run a tiny configuration of its neuronlab side (no
PyTorch needed) and check the arithmetic its tables rest on. Speed is never asserted."""

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
    for r in rows:
        assert r.contender.startswith("neuronlab")
        assert math.isfinite(r.rate) and r.rate > 0
    # training rows are compared with the training ceiling of their network
    large = next(r for r in rows if r.section == "train large momentum")
    assert large.ceiling == pytest.approx(result["ceilings"]["large"].train_rate)
    text = out.read_text()
    assert "## GEMM ceiling" in text and "48-16-16-3" in text
    assert result["machine"]["cpu"] in text
    # without peers, the targets left are the monitors' costs and the ceiling's share
    names = [t for t, _, _ in targets(result)]
    assert sum("monitors" in n for n in names) == 4
    assert not any("PyTorch" in n or "scikit-learn" in n for n in names)


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
    assert got["train large momentum: ≥ 80% of the GEMM ceiling"] == ("60%", False)  # 120/200
    assert got["train large momentum: ≥ 2× scikit-learn"] == ("2.40×", True)
    # the monitor's own clocked time, not the noisy ratio of medians (120 vs 100)
    assert got["train large momentum: monitors cost ≤ 5%"] == ("2%", True)


def test_monitor_share_is_the_time_inside_the_monitor() -> None:
    import contenders as C

    X, y = C.random_data(640, 8, 3, seed=0)
    share = C.monitor_share(X, y, (8, 16, 3), 32, C.OPTIMIZERS["momentum"], steps=20)
    assert 0.0 < share < 1.0


def test_random_data_is_float32_and_labelled() -> None:
    from contenders import random_data

    X, y = random_data(50, 7, 3, seed=0)
    assert X.dtype == np.float32 and X.shape == (50, 7)
    assert y.dtype == np.int64 and set(np.unique(y)) <= {0, 1, 2}
