"""The batched deep-linear GD loop against a textbook loop written with dense gradients.

:func:`finetune_theory.deep_linear.train` rearranges every step (the input layer kept as
``W_1(0) + C X``, the step folded into the gradient, hidden layers updated as one stacked
array); the oracle here is plain gradient descent, one repeat at a time, with the gradient of
each layer formed from the prefix and suffix matrix products.
"""

from __future__ import annotations

import numpy as np
import pytest

from finetune_theory import deep_linear as dl


def _textbook(weights, x, y, lr, trainable, steps):
    """``steps`` plain GD steps on ``(1/2n) ||X theta - y||^2`` for one network."""
    w = [v.copy() for v in weights]
    n = x.shape[0]
    for _ in range(steps):
        prefix = [w[0]]  # W_j ... W_1
        for layer in w[1:]:
            prefix.append(layer @ prefix[-1])
        res = x @ prefix[-1][0] - y
        g = (res @ x / n)[None, :]
        suffix = np.ones((1, 1))  # W_N ... W_{j+1}
        grads = [None] * len(w)
        for j in range(len(w) - 1, -1, -1):
            grads[j] = suffix.T @ (g if j == 0 else g @ prefix[j - 1].T)
            suffix = suffix @ w[j]
        w = [
            v - lr * gr if trainable[j] else v
            for j, (v, gr) in enumerate(zip(w, grads, strict=True))
        ]
    return w


@pytest.mark.parametrize(
    ("widths", "frozen"),
    [
        ((), ()),  # depth 1
        ((5,), ()),
        ((5, 5), (0,)),
        ((6, 6, 6, 6), ()),  # a stacked run of three hidden layers
        ((6, 6, 6, 6), (2,)),  # the run broken by a frozen layer
        ((4, 7, 7, 3), (0, 3)),  # mixed widths
    ],
)
def test_batched_loop_takes_the_steps_of_textbook_gradient_descent(widths, frozen):
    rng = np.random.default_rng(len(widths) + 10 * len(frozen))
    b, n, d, steps = 3, 5, 9, 40
    shapes = [(h_out, h_in) for h_in, h_out in zip((d, *widths), (*widths, 1), strict=True)]
    weights = [0.5 * rng.standard_normal((b, *s)) / np.sqrt(s[1]) for s in shapes]
    x = rng.standard_normal((b, n, d))
    y = rng.standard_normal((b, n))
    lr = np.array([0.01, 0.02, 0.005])
    result = dl.train(
        x, y, weights, lr=lr, frozen=frozen, max_steps=steps, tol=1e-300, strict=False
    )
    assert np.all(result.steps == steps)
    trainable = [j not in frozen for j in range(len(shapes))]
    for r in range(b):
        expected = _textbook([w[r] for w in weights], x[r], y[r], lr[r], trainable, steps)
        for got, want in zip(result.weights, expected, strict=True):
            np.testing.assert_allclose(got[r], want, rtol=1e-11, atol=1e-13)
        theta = expected[0]
        for layer in expected[1:]:
            theta = layer @ theta
        np.testing.assert_allclose(result.theta[r], theta[0], rtol=1e-11, atol=1e-13)


def test_a_stopped_repeat_keeps_its_weights_while_the_others_train():
    rng = np.random.default_rng(3)
    b, n, d = 2, 4, 8
    source = rng.standard_normal((b, d))
    weights = dl.balanced_init(source, 4, 5, seed=0)
    x = rng.standard_normal((b, n, d))
    y = np.einsum("bnd,bd->bn", x, source)
    y[1] *= 2.0  # repeat 0 fits at the start, repeat 1 must move
    result = dl.train(x, y, weights, max_steps=50_000)
    assert result.steps[0] == 0 and result.steps[1] > 0
    for got, start in zip(result.weights, weights, strict=True):
        np.testing.assert_array_equal(got[0], start[0])


def test_repeats_that_stop_at_different_steps_give_the_bits_of_separate_runs():
    # stopped repeats leave the batch as they stop (the step loop shrinks): each repeat's
    # weights, steps, flags and final loss must still be those of its run alone
    rng = np.random.default_rng(5)
    b, n, d, depth = 7, 4, 10, 3
    source = rng.standard_normal((b, d))
    x = rng.standard_normal((b, n, d))
    shift = np.array([0.0, 0.01, 0.1, 0.3, 1.0, 2.0, 0.5])[:, None]  # 0: fits at the start
    y = np.einsum("bnd,bd->bn", x, source + shift * rng.standard_normal((b, d)))
    weights = dl.balanced_init(source, depth, 5, seed=1)
    lr = dl.default_lr(x, y, weights)
    lr[-1] *= 1e-3  # this repeat is still running at max_steps
    together = dl.train(x, y, weights, lr=lr, max_steps=3000, strict=False)
    assert len(set(together.steps.tolist())) >= 5  # the repeats do stop at different steps
    assert together.steps[0] == 0 and together.steps[-1] == 3000
    for r in range(b):
        alone = dl.train(
            x[r : r + 1],
            y[r : r + 1],
            [w[r : r + 1] for w in weights],
            lr=lr[r : r + 1],
            max_steps=3000,
            strict=False,
        )
        assert together.steps[r] == alone.steps[0]
        assert together.converged[r] == alone.converged[0]
        assert together.interpolated[r] == alone.interpolated[0]
        assert together.loss[r] == alone.loss[0]
        for got, want in zip(together.weights, alone.weights, strict=True):
            np.testing.assert_array_equal(got[r], want[0])


def test_per_repeat_freezing_patterns_give_the_bits_of_separate_runs():
    rng = np.random.default_rng(0)
    b, n, d, depth = 3, 5, 12, 4
    source = rng.standard_normal((b, d))
    x = rng.standard_normal((b, n, d))
    y = np.einsum("bnd,bd->bn", x, 0.5 * source + 0.2 * rng.standard_normal((b, d)))
    weights = dl.balanced_init(source, depth, 6, seed=0)
    patterns = [(), (0,), (0, 1), (1, 2, 3), (2,)]
    alone = {
        p: dl.train(
            x,
            y,
            weights,
            lr=dl.default_lr(x, y, weights, frozen=p),
            frozen=p,
            max_steps=800,
            strict=False,
        )
        for p in patterns
    }
    k = len(patterns)
    xs, ys = np.concatenate([x] * k), np.concatenate([y] * k)
    ws = [np.concatenate([w] * k) for w in weights]
    per_repeat = [p for p in patterns for _ in range(b)]
    lr = dl.default_lr(xs, ys, ws, frozen=per_repeat)
    together = dl.train(xs, ys, ws, lr=lr, frozen=per_repeat, max_steps=800, strict=False)
    for i, p in enumerate(patterns):
        rows = slice(i * b, (i + 1) * b)
        np.testing.assert_array_equal(lr[rows], alone[p].lr)
        np.testing.assert_array_equal(together.steps[rows], alone[p].steps)
        np.testing.assert_array_equal(together.theta[rows], alone[p].theta)
        for j in p:  # frozen layers did not move
            np.testing.assert_array_equal(together.weights[j][rows], weights[j])
    with pytest.raises(ValueError, match="per-repeat patterns"):
        dl.train(xs, ys, ws, frozen=per_repeat[:-1])
