"""Schedules: golden values at a few steps, configs, registry and argument checks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.registry import SCHEDULES


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-15)


def test_constant():
    s = nl.Constant(0.1)
    assert [s(0), s(1), s(10**6)] == [0.1, 0.1, 0.1]


def test_step_decay():
    # 0.1 * 0.5 ** floor(step / 10)
    s = nl.StepDecay(0.1, factor=0.5, every=10)
    assert s(0) == approx(0.1)  # floor(0/10) = 0
    assert s(9) == approx(0.1)  # floor(0.9) = 0
    assert s(10) == approx(0.05)  # floor(1) = 1
    assert s(25) == approx(0.025)  # floor(2.5) = 2: 0.1 * 0.25
    assert nl.StepDecay(1.0)(2999) == approx(0.25)  # defaults 0.5 every 1000: 0.5 ** 2


def test_exponential():
    # 0.1 * e^(-0.01 t): t = 50 -> 0.1 e^-0.5 ~ 0.0606531; t = 100 -> 0.1 / e ~ 0.0367879
    s = nl.Exponential(0.1, k=0.01)
    assert s(0) == approx(0.1)
    assert s(50) == approx(0.1 * math.exp(-0.5))
    assert s(100) == approx(0.1 / math.e)
    assert abs(s(100) - 0.0367879) < 1e-7


def test_inverse_time():
    # 0.1 / (1 + 0.5 t): t = 2 -> 0.1 / 2; t = 6 -> 0.1 / 4
    s = nl.InverseTime(0.1, k=0.5)
    assert [s(0), s(2), s(6)] == [approx(0.1), approx(0.05), approx(0.025)]


def test_cosine():
    # 0.01 + 0.045 (1 + cos(pi t / 100)), constant 0.01 after t = 100
    s = nl.Cosine(0.1, total_steps=100, min_lr=0.01)
    assert s(0) == approx(0.1)  # cos 0 = 1: 0.01 + 0.09
    assert s(25) == approx(0.01 + 0.045 * (1 + math.sqrt(0.5)))  # ~0.0868198
    assert s(50) == approx(0.055)  # cos(pi/2) = 0
    assert s(100) == approx(0.01)  # cos(pi) = -1
    assert s(250) == approx(0.01)
    assert nl.Cosine(1.0, 4)(2) == approx(0.5)  # min_lr defaults to 0


def test_warmup():
    # base = inner(0) = 0.1; step < 4: 0.1 * (step + 1) / 4; step >= 4: inner(step - 4)
    s = nl.Warmup(nl.Constant(0.1), warmup_steps=4)
    assert [s(i) for i in range(6)] == [approx(v) for v in (0.025, 0.05, 0.075, 0.1, 0.1, 0.1)]
    # the inner cosine's clock starts after warm-up: step 5 + 5 -> cosine(5) = 0.1 * (1 + 0)/2
    c = nl.Warmup(nl.Cosine(0.1, total_steps=10), warmup_steps=5)
    assert c(0) == approx(0.02)
    assert c(5) == approx(0.1)
    assert c(10) == approx(0.05)
    assert c(15) == approx(0.0)


ALL = [
    nl.Constant(0.3),
    nl.StepDecay(0.3, factor=0.1, every=7),
    nl.Exponential(0.3, k=0.02),
    nl.InverseTime(0.3, k=0.2),
    nl.Cosine(0.3, total_steps=50, min_lr=0.001),
    nl.Warmup(nl.Warmup(nl.Cosine(0.3, total_steps=50), warmup_steps=3), warmup_steps=2),
]


@pytest.mark.parametrize("s", ALL, ids=lambda s: type(s).__name__)
def test_config_round_trip_and_pure(s):
    cfg = s.get_config()
    assert cfg["type"] == type(s).registry_name
    t = nl.schedule_from_config(cfg)
    assert t == s and t.get_config() == cfg
    values = [s(i) for i in range(0, 60, 7)]
    assert values == [s(i) for i in range(0, 60, 7)]  # a pure function of the step
    assert all(isinstance(v, float) and v >= 0 for v in values)
    # NumPy integer steps give plain Python floats (weakly typed: float32 updates stay float32)
    assert type(s(np.int64(9))) is float and s(np.int64(9)) == s(9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.lr = 1.0  # type: ignore[misc]


def test_registry_and_nested_config():
    names = ["constant", "cosine", "exponential", "inverse_time", "step", "warmup"]
    assert SCHEDULES.names() == names
    inner = {"type": "cosine", "lr": 0.1, "total_steps": 10}
    s = nl.get_schedule("warmup", schedule=inner, warmup_steps=2)
    assert s.get_config() == {
        "type": "warmup",
        "schedule": {"type": "cosine", "lr": 0.1, "total_steps": 10, "min_lr": 0.0},
        "warmup_steps": 2,
    }
    with pytest.raises(ValueError, match="choose one of: constant, cosine"):
        nl.get_schedule("linear", lr=0.1)
    with pytest.raises(ValueError, match="'type'"):
        nl.schedule_from_config({"lr": 0.1})
    with pytest.raises(TypeError, match="unexpected keyword"):
        nl.get_schedule("constant", lr=0.1, lr_min=0.0)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: nl.Constant(0), "lr must be > 0, got 0"),
        (lambda: nl.Constant(float("inf")), "lr must be finite"),
        (lambda: nl.StepDecay(0.1, factor=0.0), "factor must be > 0"),
        (lambda: nl.StepDecay(0.1, factor=1.5), "factor must be <= 1"),
        (lambda: nl.StepDecay(0.1, every=0), "every must be > 0"),
        (lambda: nl.StepDecay(0.1, every=2.5), "every must be an integer"),
        (lambda: nl.Exponential(0.1, k=-0.1), "k must be >= 0"),
        (lambda: nl.InverseTime(-0.1, k=0.1), "lr must be > 0"),
        (lambda: nl.Cosine(0.1, total_steps=0), "total_steps must be > 0"),
        (lambda: nl.Cosine(0.1, total_steps=10, min_lr=0.2), "min_lr must be <= 0.1"),
        (lambda: nl.Warmup(nl.Constant(0.1), warmup_steps=0), "warmup_steps must be > 0"),
        (lambda: nl.Warmup("cosine", warmup_steps=3), "schedule must be a Schedule"),
    ],
)
def test_bad_arguments_name_them(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


@pytest.mark.parametrize("step", [-1, 1.5, True])
def test_bad_step(step):
    with pytest.raises(ValueError, match="step must be an integer >= 0"):
        nl.Constant(0.1)(step)


def test_each_schedule_converts_epochs_to_steps_itself() -> None:
    run = dict(lr=0.1, steps_per_epoch=10, epochs=4, decay_factor=0.5, decay_epochs=2,
               decay_rate=0.5)
    assert nl.StepDecay.from_epochs(**run) == nl.StepDecay(0.1, factor=0.5, every=20)
    assert nl.Exponential.from_epochs(**run) == nl.Exponential(0.1, k=0.05)  # 0.5 / 10 steps
    assert nl.InverseTime.from_epochs(**run) == nl.InverseTime(0.1, k=0.05)
    assert nl.Cosine.from_epochs(**run) == nl.Cosine(0.1, total_steps=40)
    assert nl.Constant.from_epochs(**run) == nl.Constant(0.1)
    with pytest.raises(ValueError, match="'warmup' cannot be built from a run config"):
        nl.Warmup.from_epochs(**run)
