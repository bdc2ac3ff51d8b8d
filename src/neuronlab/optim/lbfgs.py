"""L-BFGS: a full-batch quasi-Newton method, through scipy.optimize."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from neuronlab._validation import check_number, check_positive_int
from neuronlab.optim.base import Optimizer
from neuronlab.registry import OPTIMIZERS

__all__ = ["LBFGS"]


@OPTIMIZERS.register("lbfgs")
class LBFGS(Optimizer):
    """Limited-memory BFGS over all parameters flattened into one float64 vector.

    A second-order method builds a curvature estimate from the last ``history`` gradient
    differences instead of the n x n Hessian, and needs no learning rate. It is full batch:
    the objective must be the loss over the whole training set, so it is driven by
    :meth:`minimize` rather than :meth:`step`. Clipping and weight decay do not apply
    (add a regulariser to the objective instead).

    Parameters
    ----------
    max_iter : int
        Maximum L-BFGS iterations (> 0) per :meth:`minimize` call.
    history : int
        Number of stored correction pairs (scipy's ``maxcor``), > 0.
    tol : float
        Tolerance (> 0) passed to ``scipy.optimize.minimize``: L-BFGS-B stops when the
        relative reduction of the loss or the largest gradient component falls below it.

    Attributes
    ----------
    t : int
        Total L-BFGS iterations over all :meth:`minimize` calls.
    result_ : scipy.optimize.OptimizeResult or None
        The last result.
    """

    full_batch = True

    def __init__(self, max_iter: int = 100, history: int = 10, tol: float = 1e-9) -> None:
        super().__init__(1.0)  # the base's lr is unused: a line search chooses each step
        self.max_iter = check_positive_int("max_iter", max_iter)
        self.history = check_positive_int("history", history)
        self.tol = check_number("tol", tol, low=0, low_inclusive=False)
        self.result_: Any = None

    def step(self, params: Any, grads: Any, *, lr: Any = None, decay_keys: Any = None) -> None:
        """Not available: L-BFGS is full batch, driven by :meth:`minimize`.

        Parameters
        ----------
        params, grads : dict of str to ndarray
            Ignored.
        lr : float or None
            Ignored.
        decay_keys : collection of str or None
            Ignored.

        Raises
        ------
        NotImplementedError
            Always.
        """
        raise NotImplementedError(
            "LBFGS is a full-batch method (full_batch = True): call "
            "minimize(fun, params, grads) with the loss over the whole data set"
        )

    def minimize(
        self,
        fun: Callable[[], float],
        params: Mapping[str, np.ndarray],
        grads: Mapping[str, np.ndarray],
    ) -> Any:
        """Minimise ``fun`` over ``params`` and leave the minimiser in ``params``.

        Parameters
        ----------
        fun : callable () -> float
            Returns the full-batch loss for the values currently in ``params`` and fills
            ``grads`` with its gradient. ``grads`` is zeroed before every call, so ``fun``
            may accumulate into it (as ``Sequential.backward`` does).
        params, grads : dict of str to ndarray
            Same keys and shapes (``model.params`` / ``model.grads``). Float64 parameters
            are recommended: the line search needs more precision than float32 gives.

        Returns
        -------
        scipy.optimize.OptimizeResult
            ``x`` the flat optimum, ``fun`` its loss, ``nit``, ``success``, ``message``.
            On return ``params`` hold the optimum and ``grads`` its gradient.
        """
        from scipy.optimize import minimize  # heavy import, only when L-BFGS is used

        if not callable(fun):
            raise TypeError(f"fun must be callable, got {type(fun).__name__}")
        if params.keys() != grads.keys():
            raise ValueError(
                "params and grads must have the same keys, "
                f"got {sorted(params)} and {sorted(grads)}"
            )
        names = list(params)
        for k in names:
            if grads[k].shape != params[k].shape:
                raise ValueError(
                    f"grads[{k!r}] has shape {grads[k].shape}, "
                    f"but the parameter has shape {params[k].shape}"
                )
        bounds = np.cumsum([0] + [params[k].size for k in names])
        x0 = np.empty(bounds[-1], dtype=np.float64)
        for k, a, b in zip(names, bounds[:-1], bounds[1:]):
            x0[a:b] = params[k].reshape(-1)
        last_x = np.full_like(x0, np.nan)

        def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
            for k, a, b in zip(names, bounds[:-1], bounds[1:]):
                params[k][...] = x[a:b].reshape(params[k].shape)
                grads[k].fill(0)
            last_x[...] = x
            loss = float(fun())
            g = np.empty_like(x)  # scipy keeps references to returned gradients: fresh array
            for k, a, b in zip(names, bounds[:-1], bounds[1:]):
                g[a:b] = grads[k].reshape(-1)
            return loss, g

        result = minimize(
            objective,
            x0,
            jac=True,
            method="L-BFGS-B",
            tol=self.tol,
            options={"maxiter": self.max_iter, "maxcor": self.history},
        )
        if not np.array_equal(last_x, result.x):
            objective(result.x)  # leave params at the optimum with matching grads
        self.t += int(result.nit)
        self.result_ = result
        return result

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"max_iter": int, "history": int, "tol": float}``.
        """
        return {"max_iter": self.max_iter, "history": self.history, "tol": self.tol}
