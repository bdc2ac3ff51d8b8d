"""The compiled training loop: whole segments of minibatch steps with no Python between them.

Read this file as plain Python: it is the Trainer's step (:mod:`neuronlab.train.step`) for a
``Sequential`` of Linear layers and elementwise activations, written out over flat arrays.
:mod:`neuronlab.engine.build` compiles it with numba, together with the kernels that sit beside
their readable references (each activation's ``kernel`` in
:mod:`neuronlab.layers.activations`, each loss's in :mod:`neuronlab.losses`, each update
rule's in :mod:`neuronlab.optim`, the penalties' in :mod:`neuronlab.regularizers`); the names
below that are not defined here (``act_forward``, ``act_backward``, ``loss_kernel``,
``rule_update``, ``_sum_squares``, ``_add_scaled``, ``_add_scaled_sign``) are those kernels
and the dispatchers generated over them.

The network is a table, one row per layer (``layers[i]``):

=====  ==========================================================================
col    meaning
=====  ==========================================================================
0      op: ``LINEAR`` (0), ``ACT`` (1), ``DROPOUT`` (2), ``IDENTITY`` (3: dropout or noise
       that draws nothing), ``BATCHNORM`` (4), ``NOISE`` (5: Gaussian noise) or ``LAYERNORM`` (6)
1      width of the layer's output
2      LINEAR: offset of W in the flat parameters; ACT: the activation's code; DROPOUT and
       NOISE: where the layer's masks (noise) for the segment start in ``masks`` (row after
       row, step after step);
       BATCHNORM and LAYERNORM: offset of gamma (beta follows it)
3      LINEAR: offset of b, or -1 without a bias; BATCHNORM: offset of its running mean in
       ``bufs`` (the running variance follows it)
4      width of the layer's input
5      offset of the layer's output rows in the workspace ``ws``
6      LINEAR: 1 when the gradient of its input is needed (a layer with parameters below
       it); BATCHNORM and LAYERNORM: offset of its x̂ rows in ``ws``
7      BATCHNORM and LAYERNORM: offset of its 1/std (per feature, per row) in ``ws``
=====  ==========================================================================

``alpha[i]`` holds a layer's scalars in the parameters' dtype: an activation's ``a``;
BatchNorm's momentum, 1 − momentum and eps; LayerNorm's eps (third).

Every array the step touches is allocated once per fit: the parameters ``w``, gradients ``g``
and optimizer slots ``s0``/``s1`` are the model's and optimizer's own flat blocks (their layers'
arrays are views of them), so what Python sees between segments is the trained model.
"""

import numpy as np

__all__ = ["ACT", "BATCHNORM", "DROPOUT", "IDENTITY", "LAYERNORM", "LINEAR", "NOISE",
           "finish_step", "steps"]

LINEAR = 0
ACT = 1
DROPOUT = 2
IDENTITY = 3
BATCHNORM = 4
NOISE = 5
LAYERNORM = 6


def _gather(X, order, start, stop, xb, idx):
    """Rows ``sorted(order[start:stop])`` of X into ``xb`` (the Trainer's ``batch``)."""
    m = stop - start
    for i in range(m):
        idx[i] = order[start + i]
    idx[:m].sort()
    d = X.shape[1]
    for i in range(m):
        r = idx[i]
        for j in range(d):
            xb[i, j] = X[r, j]
    return m


def _forward(layers, alpha, w, ws, x, m, masks, row0, bufs):
    """The training forward pass of ``m`` rows of ``x``; returns the scores (a view of ws).
    Dropout multiplies by the masks its layer drew for this step (rows ``row0 ..`` of the
    segment's), which the engine drew with the layer's generator as its ``forward`` does."""
    prev = x
    for i in range(layers.shape[0]):
        op, n, a, b, k, off = (layers[i, 0], layers[i, 1], layers[i, 2], layers[i, 3],
                               layers[i, 4], layers[i, 5])
        out = ws[off:off + m * n].reshape((m, n))
        if op == LINEAR:
            np.dot(prev, w[a:a + k * n].reshape((k, n)), out)
            if b >= 0:  # row views: numba vectorises these loops, not out[r, j] (9x here)
                bias = w[b:b + n]
                for r in range(m):
                    row = out[r]
                    for j in range(n):
                        row[j] += bias[j]
        elif op == ACT:
            act_forward(a, prev.reshape(-1), out.reshape(-1), alpha[i, 0])  # noqa: F821
        elif op == BATCHNORM:
            xo, io = layers[i, 6], layers[i, 7]
            _batchnorm_forward(prev, out, ws[xo:xo + m * n].reshape((m, n)),  # noqa: F821
                               ws[io:io + n], w[a:a + n], w[a + n:a + 2 * n], bufs[b:b + n],
                               bufs[b + n:b + 2 * n], alpha[i, 0], alpha[i, 1], alpha[i, 2])
        elif op == LAYERNORM:
            xo, io = layers[i, 6], layers[i, 7]
            _layernorm_forward(prev, out, ws[xo:xo + m * n].reshape((m, n)),  # noqa: F821
                               ws[io:io + m], w[a:a + n], w[a + n:a + 2 * n], alpha[i, 2])
        else:
            src, dst = prev.reshape(-1), out.reshape(-1)
            if op == DROPOUT:
                mo = a + row0 * n
                for j in range(m * n):
                    dst[j] = src[j] * masks[mo + j]
            elif op == NOISE:
                mo = a + row0 * n
                for j in range(m * n):
                    dst[j] = masks[mo + j] + src[j]
            else:
                dst[:] = src
        prev = out
    return prev


def _backward(layers, alpha, w, g, ws, x, m, d0, d1, masks, row0):
    """Gradients of every parameter into ``g`` from dL/dscores in ``d0`` (which the pass
    overwrites, as it does ``d1``)."""
    d, other = d0, d1
    for i in range(layers.shape[0] - 1, -1, -1):
        op, n, a, b, k, off = (layers[i, 0], layers[i, 1], layers[i, 2], layers[i, 3],
                               layers[i, 4], layers[i, 5])
        if i > 0:
            poff = layers[i - 1, 5]
            prev = ws[poff:poff + m * k].reshape((m, k))
        else:
            prev = x
        dm = d[:m * n].reshape((m, n))
        if op == LINEAR:
            np.dot(prev.T, dm, g[a:a + k * n].reshape((k, n)))
            if b >= 0:
                gb = g[b:b + n]
                gb[:] = 0
                for r in range(m):
                    row = dm[r]
                    for j in range(n):
                        gb[j] += row[j]
            if layers[i, 6] == 0:
                return
            np.dot(dm, w[a:a + k * n].reshape((k, n)).T, other[:m * k].reshape((m, k)))
            d, other = other, d
        elif op == ACT:
            out = ws[off:off + m * n]
            act_backward(a, prev.reshape(-1), out, dm.reshape(-1), alpha[i, 0])  # noqa: F821
        elif op == BATCHNORM:
            xo, io = layers[i, 6], layers[i, 7]
            _batchnorm_backward(dm, ws[xo:xo + m * n].reshape((m, n)), ws[io:io + n],  # noqa: F821
                                w[a:a + n], g[a:a + n], g[a + n:a + 2 * n])
        elif op == LAYERNORM:
            xo, io = layers[i, 6], layers[i, 7]
            _layernorm_backward(dm, ws[xo:xo + m * n].reshape((m, n)), ws[io:io + m],  # noqa: F821
                                w[a:a + n], g[a:a + n], g[a + n:a + 2 * n])
        elif op == DROPOUT:
            dflat, mo = dm.reshape(-1), a + row0 * n
            for j in range(m * n):
                dflat[j] *= masks[mo + j]


def _penalty(w, g, wranges, l1, l2):
    """The regulariser (:class:`neuronlab.regularizers.Regularizer`): R(W) summed over the
    weight arrays ``w[a:b]`` of ``wranges``, and dR/dW added into ``g``."""
    total = 0.0
    for i in range(wranges.shape[0]):
        a, b = wranges[i, 0], wranges[i, 1]
        if l1 != 0:
            s = 0.0
            for j in range(a, b):
                s += abs(w[j])
            total += l1 * s
        if l2 != 0:
            total += 0.5 * l2 * _sum_squares(w[a:b])  # noqa: F821
            _add_scaled(w[a:b], g[a:b], w.dtype.type(l2))  # noqa: F821
        if l1 != 0:
            _add_scaled_sign(w[a:b], g[a:b], w.dtype.type(l1))  # noqa: F821
    return total


def _clip(g, clip_value, clip_norm):
    """The optimizer's gradient clipping (:meth:`neuronlab.optim.base.Optimizer._clip`)."""
    if clip_value > 0:
        c = g.dtype.type(clip_value)
        for j in range(g.size):
            v = g[j]
            g[j] = -c if v < -c else (c if v > c else v)
    if clip_norm > 0:
        sq = 0.0
        for j in range(g.size):
            v = np.float64(g[j])  # numba's float() of a float32 stays float32
            sq += v * v
        norm = np.sqrt(sq)
        if clip_norm < norm < np.inf:
            scale = g.dtype.type(clip_norm / norm)
            for j in range(g.size):
                g[j] *= scale


def _finite(g):
    """True when every element of ``g`` is finite (Inf·0 and NaN·0 are NaN)."""
    acc = g.dtype.type(0)
    for j in range(g.size):
        acc += g[j] * 0
    return acc == 0


def _update(w, g, s0, s1, rule, sc, wranges, decay):
    """The optimizer's step on the flat block: the rule, then decoupled weight decay
    ``w *= decay`` on the weight arrays (``decay`` 1 for none)."""
    rule_update(rule, w, g, s0, s1, sc)  # noqa: F821
    if decay != 1:
        f = w.dtype.type(decay)
        for i in range(wranges.shape[0]):
            for j in range(wranges[i, 0], wranges[i, 1]):
                w[j] *= f


def steps(X, yi, yf, sw, order, batch_size, b0, b1, layers, alpha, w, g, s0, s1, ws, xb,
          idx, wb, d0, d1, loss_code, wranges, l1, l2, clip_value, clip_norm, check_grads, rule,
          sc, decay, values, sums, stop_last, masks, bufs):
    """Minibatch steps ``b0 .. b1-1`` of the epoch whose row order is ``order``.

    Per step: gather the rows and their weights (``sw``, ones for an unweighted fit), forward,
    loss (its value into ``values``; the batch's mass, loss times mass and right predictions
    or squared error into ``sums``), backward, penalty, clipping, update with the step's row
    of ``sc`` (the rule's scalars) and ``decay``. A batch whose weights are all 0 has data
    loss 0 and gradient 0, as on the NumPy path. With ``stop_last`` the last step stops
    before clipping and the update (a callback looks at its gradient first).

    Parameters
    ----------
    X, yi, yf, sw : ndarray
        The training rows (model dtype), labels (int64), targets (float64, 2-D) and row
        weights (float64; ones for an unweighted fit).
    order : ndarray of int64
        The epoch's row order; ``batch_size`` rows per step.
    batch_size, b0, b1 : int
        The batch size and the steps' range (batch indices of the epoch).
    layers, alpha : ndarray
        The network's table and its layers' scalars (see the module docstring).
    w, g, s0, s1 : ndarray
        Flat parameters, gradients and the optimizer's slots (empty when unused).
    ws, xb, idx, wb, d0, d1 : ndarray
        Workspaces: layer outputs (and BatchNorm/LayerNorm caches), the batch's rows, their
        indices and weights, two gradient buffers.
    loss_code, rule : int
        Codes of the loss and the update rule (their dispatchers).
    wranges : ndarray of shape (n, 2)
        ``[start, stop)`` of every weight array in ``w``.
    l1, l2, clip_value, clip_norm : float
        The penalty's coefficients and the optimizer's clipping (0 for none).
    check_grads : bool
        Also stop at a non-finite loss or gradient (a NonFiniteGuard is present).
    sc, decay : ndarray
        Each step's rule scalars (a row per step) and weight-decay factor.
    values, sums : ndarray
        Out: each step's loss; in and out: the epoch's running sums (loss × mass, mass, right
        predictions or squared error).
    stop_last : bool
        Stop the last step before its clipping and update.
    masks, bufs : ndarray
        The segment's Dropout masks and Gaussian noise; BatchNorm's running averages.

    Returns
    -------
    int
        The index (from ``b0``) of the first step whose scores (or, with ``check_grads``, loss
        or gradients) were not finite, before its update; -1 when every step ran.
    """
    n = X.shape[0]
    row0 = 0  # rows of the segment before this step (where its dropout masks start)
    for b in range(b0, b1):
        k = b - b0
        start = b * batch_size
        stop = min(start + batch_size, n)
        m = _gather(X, order, start, stop, xb, idx)
        x = xb[:m]
        mass = 0.0
        for r in range(m):
            wb[r] = sw[idx[r]]
            mass += wb[r]
        scores = _forward(layers, alpha, w, ws, x, m, masks, row0, bufs)
        nout = scores.shape[1]
        dm = d0[:m * nout].reshape((m, nout))
        if mass > 0:
            value, stat, ok = loss_kernel(loss_code, scores, yi, yf, idx, dm, wb[:m])  # noqa: F821
            if not ok:
                return k
        else:  # no weight, no data: the regulariser alone
            value, stat = 0.0, 0.0
            dm[:] = 0
        _backward(layers, alpha, w, g, ws, x, m, d0, d1, masks, row0)
        row0 += m
        value += _penalty(w, g, wranges, l1, l2)
        if check_grads and not (_finite(g) and -np.inf < value < np.inf):
            return k
        values[k] = value
        sums[0] += value * mass
        sums[1] += mass
        sums[2] += stat
        if stop_last and b == b1 - 1:
            return -1
        _clip(g, clip_value, clip_norm)
        _update(w, g, s0, s1, rule, sc[k], wranges, decay[k])
    return -1


def finish_step(w, g, s0, s1, rule, sc, wranges, decay, clip_value, clip_norm):
    """The rest of a step that ``steps`` stopped before: clipping and the update.

    Parameters
    ----------
    w, g, s0, s1 : ndarray
        Flat parameters, gradients and the optimizer's slots.
    rule : int
        The update rule's code.
    sc : ndarray
        The step's rule scalars.
    wranges : ndarray of shape (n, 2)
        The weight arrays' ranges in ``w``.
    decay, clip_value, clip_norm : float
        The weight-decay factor (1 for none) and the clipping (0 for none).
    """
    _clip(g, clip_value, clip_norm)
    _update(w, g, s0, s1, rule, sc, wranges, decay)
