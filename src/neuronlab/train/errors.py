"""The errors of a training run: :class:`DivergenceError`, and :class:`CheckpointError`
(one of the bad-input errors of :mod:`neuronlab.errors`, re-exported here)."""

from __future__ import annotations

from typing import Any

from neuronlab.errors import CheckpointError

__all__ = ["CheckpointError", "DivergenceError"]


class DivergenceError(RuntimeError):
    """The loss or a gradient became NaN or Inf.

    Attributes
    ----------
    step : int
        0-based index of the optimizer step at which it happened (not applied).
    name : str
        ``"loss"``, the dotted name of the parameter whose gradient is non-finite, or
        ``"scores"`` when the network's output itself overflowed (the step function raises
        that one with or without a guard: the loss cannot be computed from it).
    value : float
        The offending value (nan, inf or -inf).
    """

    def __init__(self, step: int, name: str, value: float) -> None:
        self.step, self.name, self.value = step, name, value
        what = {"loss": "the loss", "scores": "the network's output"}.get(
            name, f"the gradient of parameter {name!r}"
        )
        super().__init__(
            f"training diverged at step {step}: {what} is {value} (the update was not applied); "
            "lower the learning rate, clip gradients or check the data"
        )

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across process pools
        return (type(self), (self.step, self.name, self.value))
