"""One training API for the three architectures (:mod:`finetune_theory._training`).

Oracles: a plain gradient-descent loop written out here; the depth-1 deep linear network,
which is linear regression; the identity of the shared classes.
"""

from __future__ import annotations

import numpy as np
import pytest

from finetune_theory import _training, deep_linear, exceptions, linear, relu


def test_one_result_type_and_one_pair_of_errors():
    assert linear.TrainResult is deep_linear.TrainResult is relu.TrainResult
    assert linear.TrainResult is _training.TrainResult
    for name in ("ConvergenceError", "DivergenceError"):
        shared = getattr(exceptions, name)
        assert getattr(linear, name) is getattr(deep_linear, name) is getattr(relu, name) is shared
        assert issubclass(shared, exceptions.TrainingError)


def test_depth_one_network_trains_like_linear_regression():
    # the same problem, step and tol: the same stopping step and the same weights
    rng = np.random.default_rng(0)
    x, y, ts = rng.standard_normal((3, 6, 15)), rng.standard_normal((3, 6)), rng.standard_normal(15)
    lr = 0.5 * linear.default_lr(x)
    lin = linear.train(x, y, ts, lr=lr, tol=1e-10)
    deep = deep_linear.train(
        x, y, deep_linear.balanced_init(np.tile(ts, (3, 1)), 1, 4), lr=lr, tol=1e-10
    )
    np.testing.assert_array_equal(lin.steps, deep.steps)
    np.testing.assert_array_equal(lin.interpolated, deep.interpolated)
    np.testing.assert_allclose(lin.theta, deep.theta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(lin.loss_history, deep.loss_history, rtol=1e-9, atol=1e-300)
    np.testing.assert_array_equal(lin.history_steps, deep.history_steps)


def _plain_gd_steps(x, y, theta, lr, tol):
    """Steps of a written-out loop until the loss reaches tol times the zero predictor's."""
    zero = 0.5 * np.mean(y**2)
    steps = 0
    while 0.5 * np.mean((x @ theta - y) ** 2) > tol * zero:
        theta = theta - lr * x.T @ (x @ theta - y) / len(y)
        steps += 1
    return steps


@pytest.mark.parametrize("tol", [1e-3, 1e-8])
def test_tol_has_one_meaning_in_all_three(tol):
    rng = np.random.default_rng(1)
    n, d = 8, 20
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # on the sphere, for the ReLU network
    y = rng.standard_normal(n)
    zero = 0.5 * np.mean(y**2)
    lr = 0.5 * float(linear.default_lr(x))
    lin = linear.train(x, y, np.zeros(d), lr=lr, tol=tol)
    assert int(lin.steps) == _plain_gd_steps(x, y, np.zeros(d), lr, tol)
    net = relu.init_network(200, d, seed=2)
    res = relu.train(x, y, net, tol=tol)
    deep = deep_linear.train(x, y, deep_linear.balanced_init(rng.standard_normal(d), 3, 5), tol=tol)
    for out in (lin, res, deep):
        # stopped at the first step where the loss is at most tol times the zero loss
        assert bool(out.interpolated) and bool(np.all(out.converged))
        assert float(out.loss) <= tol * zero
        assert out.loss_history[-1] == out.loss and out.history_steps[-1] == out.steps
        if int(out.steps) > 0:
            assert out.loss_history[-2] > tol * zero
    # the symmetric ReLU start outputs zero: it starts at the zero predictor's loss
    assert res.initial_loss == pytest.approx(zero, rel=1e-12)
    assert res.theta is None and isinstance(res.weights, relu.ReluNetwork)


def test_stationary_point_stops_without_interpolating():
    # least squares (n > d) cannot reach tol times the zero loss: it stops once a step no
    # longer changes the loss, in every architecture that can express it
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((40, 5)), rng.standard_normal(40)
    lin = linear.train(x, y, np.zeros(5))
    deep = deep_linear.train(x, y, deep_linear.balanced_init(np.ones(5), 2, 4))
    best = 0.5 * np.mean((x @ np.linalg.lstsq(x, y, rcond=None)[0] - y) ** 2)
    for out in (lin, deep):
        assert not out.interpolated and out.converged
        assert float(out.loss) == pytest.approx(best, rel=1e-8)


def test_monitor_raises_on_divergence_and_on_the_step_budget():
    y = np.ones((2, 3))
    mon = _training.Monitor(y, (2,), 1e-6, np.ones(2), max_steps=5)
    assert mon.update(0, np.array([0.5, 0.5]))
    with pytest.raises(exceptions.DivergenceError, match="diverged at step 1"):
        mon.update(1, np.array([0.4, 1e11]))
    mon = _training.Monitor(y, (2,), 1e-6, np.ones(2), max_steps=1)
    mon.update(0, np.array([0.5, 0.5]))
    mon.update(1, np.array([1e-9, 0.25]))  # the first stops, the second still runs
    np.testing.assert_array_equal(mon.active, [False, True])
    with pytest.raises(exceptions.ConvergenceError, match="1 of 2 problem"):
        mon.finish(strict=True)
    mon.finish(strict=False)
    np.testing.assert_array_equal(mon.steps, [1, 1])


def test_movement_is_relative_to_the_start():
    np.testing.assert_array_equal(
        _training.relative_movement(np.array([4.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])),
        [2.0, 0.0, np.inf],
    )
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((4, 9)), rng.standard_normal(4)
    w = deep_linear.balanced_init(rng.standard_normal(9), 3, 4)
    out = deep_linear.train(x, y, w)
    moved = sum(np.sum((a - b) ** 2) for a, b in zip(out.weights, w, strict=True))
    start = sum(np.sum(b**2) for b in w)
    assert out.movement == pytest.approx(np.sqrt(moved / start), rel=1e-12)
    for a, b in zip(out.start, w, strict=True):
        np.testing.assert_array_equal(a, b)  # the start is the input, untouched


def test_pretrain_result_is_shared_and_forwards_the_run_with_a_warning():
    pre = relu.pretrain(np.eye(3)[0], width=20, n_source=6, seed=1)
    assert isinstance(pre, _training.PretrainResult) and pre.theta is None
    # the relative RMS error on the source sample is sqrt(loss / zero-predictor loss)
    x = relu.sample_sphere(6, 3, seed=relu_data_stream(1))
    zero = 0.5 * np.mean(x[:, 0] ** 2)
    assert pre.source_error == pytest.approx(np.sqrt(float(pre.training.loss) / zero))
    with pytest.warns(DeprecationWarning, match="training.steps"):
        assert pre.steps == pre.training.steps
    with pytest.raises(AttributeError):
        _ = pre.not_a_field


def relu_data_stream(seed):
    """The generator relu.pretrain draws its source inputs from (the second of its seed)."""
    from finetune_theory._random import spawn_generators

    return spawn_generators(seed, 2)[1]


def test_linear_default_lr_is_a_fraction_of_the_inverse_curvature():
    x = np.array([[2.0, 0.0], [0.0, 1.0]])  # lambda_max(X^T X / n) = 2
    assert linear.default_lr(x) == 0.5
    assert linear.default_lr(x, np.ones(2), np.zeros(2), fraction=1.5) == 0.75
    with pytest.raises(ValueError, match="fraction"):
        linear.default_lr(x, fraction=2.0)
