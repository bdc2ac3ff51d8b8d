"""The errors of a training run: :class:`DivergenceError`, and :class:`CheckpointError`
(one of the bad-input errors of :mod:`neuronlab.errors`, re-exported here)."""

from __future__ import annotations

from typing import Any

from neuronlab.errors import CheckpointError

__all__ = ["CheckpointError", "DivergenceError"]


class DivergenceError(RuntimeError):
    """The loss or a gradient became NaN or Inf.

    The step that raises it names what it saw (``name``, ``value``). When the
    :class:`~neuronlab.train.Trainer` catches it, the stability sentinel
    (:mod:`neuronlab.babysit.sentinel`) replays the failing step's batch layer by layer and
    fills in where the first non-finite number appeared (``layer``, ``layer_type``,
    ``direction``, ``param``, ``origin``) and what the Monitor saw before (``context``); the
    message then names them, e.g. ``"training diverged at step 412: layer 3 (Log) produced
    NaN in the forward pass (its input had max |x| 3.4 and min -2.1), so the loss is nan;
    before that, the update/weight ratio of 2.W rose 0.001 → 0.4 ..."``.

    Each parameter is also an attribute of the same name.

    Parameters
    ----------
    step : int
        0-based index of the optimizer step at which it happened (not applied).
    name : str
        ``"loss"``, the dotted name of the parameter whose gradient is non-finite, or
        ``"scores"`` when the network's output itself overflowed (the step function raises
        that one with or without a guard: the loss cannot be computed from it).
    value : float
        The offending value (nan, inf or -inf).
    layer : int or None
        Index (in the Sequential) of the layer where the first non-finite number appeared;
        None when not located (no replay, or a replay that did not reproduce it, or when
        the origin is the loss itself).
    layer_type : str or None
        That layer's class name (``"Linear"``, ``"Log"``...).
    direction : {"parameters", "forward", "loss", "backward", "regularizer"} or None
        Where the replay saw it first: a layer's parameters (non-finite already: an earlier
        update wrote them), a layer's output, the loss (or its gradient) computed from finite
        scores, a layer's input or parameter gradient, or the regulariser's penalty or
        gradient. None when not located.
    param : str or None
        The dotted name of the first non-finite parameter gradient (``"0.W"``), when that is
        what the located layer produced.
    origin : str or None
        The sentence that names the origin, with the numbers the replay measured
        (``"layer 3 (Log) produced NaN in the forward pass (its input had ...)"``).
    context : str or None
        What led there: the Monitor's last measurements of the nearby weights (their trend),
        and, when the replay could not reproduce the failure, why.
    """

    def __init__(
        self,
        step: int,
        name: str,
        value: float,
        layer: int | None = None,
        layer_type: str | None = None,
        direction: str | None = None,
        param: str | None = None,
        origin: str | None = None,
        context: str | None = None,
    ) -> None:
        self.step, self.name, self.value = step, name, value
        self.layer, self.layer_type, self.direction = layer, layer_type, direction
        self.param, self.origin, self.context = param, origin, context
        super().__init__(self._message())

    @property
    def what(self) -> str:
        """What the step saw, in words: ``"the loss"``, ``"the network's output"`` or
        ``"the gradient of parameter '0.W'"``."""
        return {"loss": "the loss", "scores": "the network's output"}.get(
            self.name, f"the gradient of parameter {self.name!r}"
        )

    def _message(self) -> str:
        seen = f"{self.what} is {self.value}"
        if self.origin:
            head = self.origin if self.param == self.name else f"{self.origin}, so {seen}"
        else:
            head = seen
        tail = f"; {self.context}" if self.context else ""
        return (
            f"training diverged at step {self.step}: {head} (the update was not applied)"
            f"{tail}; lower the learning rate, clip gradients or check the data"
        )

    def locate(
        self,
        *,
        layer: int | None = None,
        layer_type: str | None = None,
        direction: str | None = None,
        param: str | None = None,
        origin: str | None = None,
        context: str | None = None,
    ) -> None:
        """Set where the divergence started (what the sentinel found) and rebuild the
        message, in place: a re-raised error keeps its traceback.

        Every argument replaces the attribute of the same name (one left out becomes None).

        Parameters
        ----------
        layer : int or None
            Index of the layer where the first non-finite number appeared.
        layer_type : str or None
            That layer's class name.
        direction : {"parameters", "forward", "loss", "backward", "regularizer"} or None
            Where the replay saw it first (see the class).
        param : str or None
            Dotted name of the first non-finite parameter gradient.
        origin : str or None
            The sentence that names the origin.
        context : str or None
            What led there.
        """
        self.layer, self.layer_type, self.direction = layer, layer_type, direction
        self.param, self.origin, self.context = param, origin, context
        self.args = (self._message(),)

    def info(self) -> dict[str, Any]:
        """The ``history.info`` entries that record this divergence (JSON-able), read by
        :func:`neuronlab.babysit.diagnose`."""
        return {
            "diverged_step": self.step,
            "diverged_at": self.name,
            "diverged_layer": self.layer,
            "diverged_layer_type": self.layer_type,
            "diverged_direction": self.direction,
            "diverged_param": self.param,
            "diverged_origin": self.origin,
            "diverged_context": self.context,
        }

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across process pools
        return (type(self), (self.step, self.name, self.value, self.layer, self.layer_type,
                             self.direction, self.param, self.origin, self.context))
