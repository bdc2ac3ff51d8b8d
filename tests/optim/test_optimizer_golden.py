"""Three steps of every update rule against values worked out by hand from its equations.

Each test feeds a fixed sequence of gradients (not a function's gradient), so the arithmetic
in the comments is all there is. Expected values are written as the formula's arithmetic on
constants (eps included where it matters), never produced by running the optimizer.
Float64 throughout, compared to 1e-12 relative.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import neuronlab as nl

EPS = 1e-8


def run(opt, w0, grads):
    """Apply opt to w (copy of w0) with each gradient in turn; return w after every step."""
    w = np.array(w0, dtype=np.float64)
    out = []
    for g in grads:
        opt.step({"w": w}, {"w": np.array(g, dtype=np.float64)})
        out.append(w.copy())
    return out


def check(got, expected):
    for step, (a, b) in enumerate(zip(got, expected), start=1):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=f"step {step}")


def test_sgd_three_steps():
    # lr = 0.1, w0 = [1, -2]
    # step 1: g = [0.5, -1]: w = [1 - 0.05, -2 + 0.1]   = [0.95, -1.9]
    # step 2: g = [1, 2]:    w = [0.95 - 0.1, -1.9 - 0.2] = [0.85, -2.1]
    # step 3: g = [-2, 0.5]: w = [0.85 + 0.2, -2.1 - 0.05] = [1.05, -2.15]
    got = run(nl.SGD(lr=0.1), [1.0, -2.0], [[0.5, -1.0], [1.0, 2.0], [-2.0, 0.5]])
    check(got, [[0.95, -1.9], [0.85, -2.1], [1.05, -2.15]])


def test_momentum_three_steps():
    # lr = 0.1, mu = 0.9, w0 = 1, v0 = 0; v = mu v - lr g; w += v
    # step 1: g = 1:  v = 0 - 0.1 = -0.1;                w = 0.9
    # step 2: g = 1:  v = -0.09 - 0.1 = -0.19;           w = 0.9 - 0.19 = 0.71
    # step 3: g = -2: v = -0.171 + 0.2 = 0.029;          w = 0.71 + 0.029 = 0.739
    opt = nl.Momentum(lr=0.1, momentum=0.9)
    got = run(opt, [1.0], [[1.0], [1.0], [-2.0]])
    check(got, [[0.9], [0.71], [0.739]])
    np.testing.assert_allclose(opt.state["w"]["v"], [0.029], rtol=1e-12)


def test_nesterov_three_steps():
    # lr = 0.1, mu = 0.9, w0 = 1: v_prev = v; v = mu v - lr g; w += -mu v_prev + (1 + mu) v
    # step 1: g = 1:  v_prev = 0,     v = -0.1
    #         w += -0.9*0 + 1.9*(-0.1) = -0.19                  -> w = 0.81
    # step 2: g = 1:  v_prev = -0.1,  v = -0.09 - 0.1 = -0.19
    #         w += 0.09 + 1.9*(-0.19) = 0.09 - 0.361 = -0.271    -> w = 0.539
    # step 3: g = -2: v_prev = -0.19, v = -0.171 + 0.2 = 0.029
    #         w += 0.171 + 1.9*0.029 = 0.171 + 0.0551 = 0.2261   -> w = 0.7651
    opt = nl.Nesterov(lr=0.1, momentum=0.9)
    got = run(opt, [1.0], [[1.0], [1.0], [-2.0]])
    check(got, [[0.81], [0.539], [0.7651]])
    np.testing.assert_allclose(opt.state["w"]["v"], [0.029], rtol=1e-12)


def test_adagrad_three_steps():
    # lr = 0.1, w0 = [1, -1]; cache += g^2; w -= lr g / (sqrt(cache) + eps)
    # element 0, g = 3, 4, 12: cache = 9, 25, 169 -> sqrt 3, 5, 13
    #   w = 1 - 0.3/(3+eps) ~ 0.9;  then - 0.4/(5+eps) ~ 0.82;  then - 1.2/(13+eps) ~ 0.7276923
    # element 1, g = 0, -1, 0: cache = 0, 1, 1
    #   step 1: 0/(0 + eps) = 0 (a zero gradient never divides 0 by 0) -> w = -1
    #   step 2: w = -1 + 0.1/(1+eps) ~ -0.9;  step 3: g = 0 -> unchanged
    w1 = [1 - 0.3 / (3 + EPS), -1.0]
    w2 = [w1[0] - 0.4 / (5 + EPS), -1 + 0.1 / (1 + EPS)]
    w3 = [w2[0] - 1.2 / (13 + EPS), w2[1]]
    got = run(nl.Adagrad(lr=0.1), [1.0, -1.0], [[3.0, 0.0], [4.0, -1.0], [12.0, 0.0]])
    check(got, [w1, w2, w3])
    assert abs(w3[0] - 0.7276923077) < 1e-9  # the comment's rounded value


def test_rmsprop_three_steps():
    # lr = 0.1, decay = 0.5, w0 = 1; cache = 0.5 cache + 0.5 g^2; w -= lr g / (sqrt(cache) + eps)
    # step 1: g = 2:  cache = 0 + 2 = 2;        w = 1 - 0.2/sqrt(2)            ~ 0.8585786
    # step 2: g = 2:  cache = 1 + 2 = 3;        w -= 0.2/sqrt(3) (~0.1154701)  ~ 0.7431086
    # step 3: g = -4: cache = 1.5 + 8 = 9.5;    w += 0.4/sqrt(9.5) (~0.1297771) ~ 0.8728857
    w1 = 1 - 0.2 / (math.sqrt(2) + EPS)
    w2 = w1 - 0.2 / (math.sqrt(3) + EPS)
    w3 = w2 + 0.4 / (math.sqrt(9.5) + EPS)
    opt = nl.RMSprop(lr=0.1, decay=0.5)
    got = run(opt, [1.0], [[2.0], [2.0], [-4.0]])
    check(got, [[w1], [w2], [w3]])
    np.testing.assert_allclose(opt.state["w"]["cache"], [9.5], rtol=1e-12)
    assert abs(w3 - 0.8728857) < 1e-7


# Adam, lr = 0.1, beta1 = 0.9, beta2 = 0.999, w0 = [1, -1], gradients c, c, -c with
# c = 1 for element 0 and c = 1000 for element 1 (the moments scale with c, the step does not):
# t = 1: m = 0.1c;                     v = 0.001c^2
#        mhat = 0.1c/(1-0.9) = c;      vhat = 0.001c^2/(1-0.999) = c^2   -> step lr*c/(|c|+eps)
# t = 2: m = 0.09c + 0.1c = 0.19c;     v = 0.000999c^2 + 0.001c^2 = 0.001999c^2
#        mhat = 0.19c/(1-0.81) = c;    vhat = 0.001999c^2/(1-0.998001) = c^2
# t = 3: m = 0.171c - 0.1c = 0.071c;   v = 0.001997001c^2 + 0.001c^2 = 0.002997001c^2
#        mhat = 0.071c/(1-0.729) = 0.071c/0.271 (~0.2619926c)
#        vhat = 0.002997001c^2/(1-0.997002999) = c^2
# so element 0 moves 0.1, 0.1, 0.0261993 down: 0.9, 0.8, ~0.7738007;
# element 1 likewise from -1: -1.1, -1.2, ~-1.2261993.
def adam_expected(c, w0):
    s1 = 0.1 * c / (c + EPS)
    s2 = 0.1 * c / (c + EPS)
    s3 = 0.1 * (0.071 * c / 0.271) / (c + EPS)
    return [w0 - s1, w0 - s1 - s2, w0 - s1 - s2 - s3]


def test_adam_three_steps():
    opt = nl.Adam(lr=0.1, beta1=0.9, beta2=0.999)
    got = run(opt, [1.0, -1.0], [[1.0, 1000.0], [1.0, 1000.0], [-1.0, -1000.0]])
    e0, e1 = adam_expected(1.0, 1.0), adam_expected(1000.0, -1.0)
    check(got, [[a, b] for a, b in zip(e0, e1)])
    np.testing.assert_allclose(opt.state["w"]["m"], [0.071, 71.0], rtol=1e-12)
    np.testing.assert_allclose(opt.state["w"]["v"], [0.002997001, 2997.001], rtol=1e-12)
    assert opt.t == 3
    assert abs(got[2][0] - 0.7738007) < 1e-7 and abs(got[2][1] + 1.2261993) < 1e-7


def test_adamw_three_steps():
    # AdamW = the Adam steps above, then w *= 1 - lr*wd = 1 - 0.1*0.5 = 0.95 (decoupled decay)
    # t = 1: (1 - 0.1) * 0.95 = 0.855
    # t = 2: (0.855 - 0.1) * 0.95 = 0.71725
    # t = 3: (0.71725 - 0.0261993) * 0.95 ~ 0.6564982
    s1, s2, s3 = 0.1 / (1 + EPS), 0.1 / (1 + EPS), 0.1 * (0.071 / 0.271) / (1 + EPS)
    w1 = (1 - s1) * 0.95
    w2 = (w1 - s2) * 0.95
    w3 = (w2 - s3) * 0.95
    got = run(nl.AdamW(lr=0.1, weight_decay=0.5), [1.0], [[1.0], [1.0], [-1.0]])
    check(got, [[w1], [w2], [w3]])
    assert abs(w3 - 0.6564982) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_first_step_moves_each_weight_by_lr(rng, dtype):
    # t = 1: mhat = g and vhat = g^2, so |dw| = lr |g| / (|g| + eps) ~ lr whatever |g| is
    lr = 1e-3
    w = rng.standard_normal(50).astype(dtype)
    scales = np.logspace(-3, 4, 50)
    g = (rng.choice([-1.0, 1.0], size=50) * scales).astype(dtype)
    w0 = w.copy()
    nl.Adam(lr=lr).step({"w": w}, {"w": g})
    dw = w.astype(np.float64) - w0
    assert w.dtype == dtype
    np.testing.assert_allclose(np.abs(dw), lr, rtol=1e-3 if dtype == np.float32 else 1e-4)
    assert np.all(np.sign(dw) == -np.sign(g))
