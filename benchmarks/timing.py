"""Interleaved timing: every repetition runs each contender once, in a rotating order, so
that the machine's drift (other processes, thermal state, page cache) hits all alike."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["Samples", "interleave"]


@dataclass
class Samples:
    """Throughput samples of one contender: items processed and seconds, per repetition."""

    items: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def rates(self) -> list[float]:
        return [n / s for n, s in zip(self.items, self.seconds)]

    @property
    def median(self) -> float:
        """Median items per second over the repetitions."""
        return statistics.median(self.rates)

    @property
    def spread(self) -> float:
        """(max - min) / median of the rates: the run-to-run noise, as a fraction."""
        r = self.rates
        return (max(r) - min(r)) / statistics.median(r) if len(r) > 1 else 0.0


def interleave(
    contenders: Mapping[str, Callable[[], int]], *, reps: int, warmup: int = 1,
    settle: Callable[[], None] | None = None,
) -> dict[str, Samples]:
    """Run ``reps`` rounds; in each, every contender's callable once (order rotated by one
    every round). Each callable does one unit of work and returns the items it processed.

    The garbage collector is collected before and disabled during each timed call, so one
    contender's garbage is not paid for by the next. ``settle``, if given, runs before each
    timed call, untimed: it waits for work a contender leaves running after it returns.
    """
    names = list(contenders)
    out = {name: Samples() for name in names}
    for _ in range(warmup):  # first calls pay for lazy allocations, page faults, JIT caches
        for name in names:
            contenders[name]()
    for r in range(reps):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            if settle is not None:
                settle()
            gc.collect()
            gc.disable()
            try:
                t0 = time.perf_counter()
                n = contenders[name]()
                dt = time.perf_counter() - t0
            finally:
                gc.enable()
            out[name].items.append(n)
            out[name].seconds.append(dt)
    return out
