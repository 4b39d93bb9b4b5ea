"""Two-layer ReLU networks in the NTK regime: kernel, bound, network, training, predictor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finetune_theory import relu


def _sphere(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ----------------------------------------------------------------------- kernel
def test_ntk_closed_form_values() -> None:
    e1, e2 = np.eye(2)
    half = np.array([0.5, math.sqrt(3) / 2])  # cosine 1/2 with e1
    K = relu.ntk(np.stack([e1, e2, -e1, half]))
    assert K[0, 0] == pytest.approx(0.5)  # k(1) = 1/2
    assert K[0, 1] == pytest.approx(0.0)  # orthogonal
    assert K[0, 2] == pytest.approx(0.0)  # antipodal: the half-spaces never overlap
    # u = 1/2: (1/2)(pi - pi/3)/(2 pi) = 1/6
    assert K[0, 3] == pytest.approx(1.0 / 6.0)


def test_ntk_matches_monte_carlo_expectation() -> None:
    """E_w[x.x' 1(w.x>0) 1(w.x'>0)] by sampling w, independently of the closed form."""
    x = _sphere(6, 4, seed=1)
    w = np.random.default_rng(2).standard_normal((400_000, 4))
    act = (x @ w.T > 0).astype(float)
    mc = (act @ act.T / w.shape[0]) * (x @ x.T)
    assert np.max(np.abs(relu.ntk(x) - mc)) < 4e-3


def test_ntk_odd_part_is_exactly_linear() -> None:
    """(k(u) - k(-u)) / 2 = u / 4: the linear part behind r^T H^-1 r -> 4 ||beta||^2."""
    u = np.linspace(-1, 1, 41)
    pts = np.stack([np.ones_like(u), np.zeros_like(u)], axis=-1)[:, None, :]
    other = np.stack([u, np.sqrt(1 - u**2)], axis=-1)[:, None, :]
    k_plus = relu.ntk(pts, other)[:, 0, 0]
    k_minus = relu.ntk(pts, -other)[:, 0, 0]
    np.testing.assert_allclose((k_plus - k_minus) / 2, u / 4, atol=1e-14)


def test_ntk_dominates_its_linear_part() -> None:
    x = _sphere(60, 5, seed=3)
    H = relu.ntk(x)
    np.testing.assert_allclose(H, H.T, atol=0)
    assert np.linalg.eigvalsh(H - x @ x.T / 4).min() > -1e-12
    assert relu.ntk_lambda_min(x) == pytest.approx(np.linalg.eigvalsh(H)[0])


def test_ntk_rejects_inputs_off_the_sphere_or_normalises_them() -> None:
    x = _sphere(5, 3) * 2.0
    with pytest.raises(ValueError, match="X1.*unit-norm"):
        relu.ntk(x)
    with pytest.raises(ValueError, match="X2"):
        relu.ntk(x / 2.0, x)
    np.testing.assert_allclose(relu.ntk(x, normalize=True), relu.ntk(x / 2.0), atol=1e-15)
    with pytest.raises(ValueError, match="X2"):
        relu.ntk(_sphere(3, 3), _sphere(3, 4))
    with pytest.raises(ValueError, match="X1.*non-finite"):
        relu.ntk(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="zero row"):
        relu.ntk(np.zeros((2, 3)), normalize=True)


# ------------------------------------------------------------------------ bound
def test_rkhs_norm_matches_a_direct_solve_and_batches() -> None:
    x = relu.sample_sphere(30, 6, seed=4, batch=3)
    r = np.random.default_rng(5).standard_normal((3, 30))
    got = relu.rkhs_norm_sq(x, r)
    for b in range(3):
        H = relu.ntk(x[b])
        assert got[b] == pytest.approx(r[b] @ np.linalg.solve(H, r[b]), rel=1e-10)
    assert relu.residual_bound(x, r) == pytest.approx(np.sqrt(2 * got / 30), rel=1e-12)


def test_linear_residual_norm_approaches_four_beta_squared() -> None:
    """Nested samples: r^T H^-1 r never exceeds 4 ||beta||^2, never decreases, and gets close."""
    x = relu.sample_sphere(400, 5, seed=6)
    beta = np.array([1.0, -2.0, 0.5, 0.0, 1.0])
    target = 4 * beta @ beta
    q = np.array([relu.rkhs_norm_sq(x[:n], x[:n] @ beta) for n in (10, 50, 200, 400)])
    assert np.all(q <= target * (1 + 1e-9))
    assert np.all(np.diff(q) >= -1e-9 * target)
    assert q[0] < 0.9 * target
    assert q[-1] > 0.99 * target


def test_singular_gram_matrix_is_a_clear_error() -> None:
    x = _sphere(8, 4)
    x[5] = x[2]
    with pytest.raises(ValueError, match="X.*singular"):
        relu.rkhs_norm_sq(x, np.ones(8))
    with pytest.raises(ValueError, match="X: .*singular"):
        relu.kernel_predictor(x, np.ones(8), _sphere(2, 4))
    with pytest.raises(ValueError, match="residual"):
        relu.rkhs_norm_sq(_sphere(8, 4), np.ones(7))


def test_confidence_term_and_full_bound() -> None:
    n = np.array([10, 100, 1000, 10_000])
    c = relu.confidence_term(n, 0.05)
    assert np.all(np.diff(c) < 0)
    expect = 3 * np.sqrt(np.log(2 * (1 + np.sqrt(n / 2)) / 0.05) / (2 * n))
    np.testing.assert_allclose(c, expect, rtol=1e-14)
    assert relu.confidence_term(100, 0.01) > relu.confidence_term(100, 0.1)
    x = _sphere(40, 5, seed=7)
    r = x @ np.arange(5.0)
    full = relu.generalization_bound(x, r, train_loss=0.01, delta=0.05)
    assert full == pytest.approx(0.01 + relu.residual_bound(x, r) + relu.confidence_term(40))
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="delta"):
            relu.confidence_term(10, bad)
    with pytest.raises(ValueError, match="train_loss"):
        relu.generalization_bound(x, r, train_loss=-1.0)


def test_sample_complexity_bound_is_the_first_n_under_eps() -> None:
    dist = np.array([0.0, 0.1, 0.5, 1.0, 2.0])
    eps = 0.2
    n = relu.sample_complexity_bound(dist, eps, label_scale=3.0)
    at = relu.predicted_bound(dist, n, label_scale=3.0)
    before = relu.predicted_bound(dist, np.maximum(n - 1, 1), label_scale=3.0)
    assert np.all(at <= eps)
    assert np.all((before > eps) | (n == 1))
    assert np.all(np.diff(n) > 0)  # farther teachers need more samples
    # far teachers: n ~ 8 s^2 D^2 / eps^2 up to the confidence term, so doubling D ~ 4x n
    big = relu.sample_complexity_bound(np.array([50.0, 100.0]), 0.5)
    assert big[1] / big[0] == pytest.approx(4.0, rel=0.05)
    assert isinstance(relu.sample_complexity_bound(0.3, 0.3), int)
    with pytest.raises(ValueError, match="eps"):
        relu.sample_complexity_bound(1.0, 0.0)
    with pytest.raises(ValueError, match="distance"):
        relu.sample_complexity_bound(-1.0, 0.1)


def test_risk_statement_and_sample_complexity_from_the_teachers() -> None:
    ts, tt = np.array([0.6, 0.8, 0.0]), np.array([0.0, 0.8, 0.6])  # ||tt - ts|| = 0.6 sqrt 2
    dist = 0.6 * np.sqrt(2.0)
    ns = np.array([10, 100, 1000])
    np.testing.assert_allclose(
        relu.risk_bound(ts, tt, ns, label_scale=2.0),
        np.sqrt(8 * 4.0 * dist**2 / ns) + relu.confidence_term(ns),
        rtol=1e-12,
    )
    # from scratch is theta_source = 0: the distance is ||theta_T|| = 1
    assert relu.risk_bound(np.zeros(3), tt, 50) == relu.predicted_bound(1.0, 50)
    n = relu.sample_complexity(ts, tt, 0.4)
    assert n == relu.sample_complexity_bound(dist, 0.4)
    assert relu.risk_bound(ts, tt, n) <= 0.4 < relu.risk_bound(ts, tt, n - 1)
    with pytest.raises(relu.UnreachableRiskError, match="eps is too small"):
        relu.sample_complexity(ts, tt, 1e-9)
    with pytest.raises(ValueError, match="theta_target"):
        relu.risk_bound(ts, tt[:2], 10)


def test_finetune_is_the_kernel_predictor() -> None:
    x, xt = _sphere(6, 4, seed=3), _sphere(3, 4, seed=4)
    y = x[:, 0]
    # an independent solve of f(x) = K(x, X) H^-1 y with the closed-form kernel
    u, ut = x @ x.T, xt @ x.T
    kern = lambda c: c * (np.pi - np.arccos(np.clip(c, -1, 1))) / (2 * np.pi)  # noqa: E731
    want = kern(ut) @ np.linalg.solve(kern(u), y)
    np.testing.assert_allclose(relu.finetune(x, y, xt), want, rtol=1e-10)
    np.testing.assert_array_equal(
        relu.kernel_predictor(X_train=x, y_train=y, X_test=xt), relu.finetune(x, y, xt)
    )
    with pytest.raises(TypeError, match="start"):
        relu.finetune(x, y, xt, start=np.ones((8, 4)))


def test_default_lr_takes_what_train_takes_and_the_old_call_warns() -> None:
    x = _sphere(5, 3, seed=5)
    net = relu.init_network(20, 3, seed=6)
    new = relu.default_lr(x, x[:, 0], net, fraction=0.5)
    assert new == relu.default_lr(x, start=net, fraction=0.5)
    assert new == pytest.approx(0.5 * 5 / np.linalg.eigvalsh(net.ntk(x))[-1], rel=1e-12)
    with pytest.warns(DeprecationWarning, match="default_lr"):
        assert relu.default_lr(x, net, fraction=0.5) == new
    with pytest.raises(TypeError, match="start"):
        relu.default_lr(x, x[:, 0])
    with pytest.raises(TypeError, match="start"):
        relu.train(x, x[:, 0], np.ones((8, 3)))


# ---------------------------------------------------------------------- network
def test_symmetric_initialisation_outputs_zero() -> None:
    net = relu.init_network(200, 5, seed=1, batch=3)
    assert net.weights.shape == (3, 200, 5) and net.batch_shape == (3,)
    np.testing.assert_array_equal(net.weights[:, :100], net.weights[:, 100:])
    assert np.max(np.abs(net(_sphere(7, 5)))) < 1e-12
    free = relu.init_network(200, 5, seed=1, symmetric=False)
    assert np.max(np.abs(free(_sphere(7, 5)))) > 1e-3


def _small_problem() -> tuple[relu.ReluNetwork, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(8)
    net = relu.ReluNetwork(rng.standard_normal((6, 3)), np.array([1.0, -1, 1, -1, 1, 1]))
    return net, _sphere(5, 3, seed=9), rng.standard_normal(5)


def test_hand_gradient_matches_finite_differences() -> None:
    net, x, y = _small_problem()
    _, grad = relu.loss_and_gradient(net, x, y)
    h = 1e-6
    fd = np.zeros_like(grad)
    for idx in np.ndindex(*grad.shape):
        w = net.weights.copy()
        w[idx] += h
        up = relu.loss_and_gradient(relu.ReluNetwork(w, net.signs), x, y)[0]
        w[idx] -= 2 * h
        down = relu.loss_and_gradient(relu.ReluNetwork(w, net.signs), x, y)[0]
        fd[idx] = (up - down) / (2 * h)
    np.testing.assert_allclose(grad, fd, atol=1e-8)


def test_hand_gradient_matches_torch_autograd() -> None:
    torch = pytest.importorskip("torch")
    net, x, y = _small_problem()
    loss, grad = relu.loss_and_gradient(net, x, y)
    w = torch.tensor(net.weights, dtype=torch.float64, requires_grad=True)
    xt, yt = torch.tensor(x), torch.tensor(y)
    out = torch.relu(xt @ w.T) @ torch.tensor(net.signs) / math.sqrt(net.width)
    tl = 0.5 * torch.mean((out - yt) ** 2)
    tl.backward()
    assert loss == pytest.approx(tl.item(), rel=1e-13)
    np.testing.assert_allclose(grad, w.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_empirical_ntk_is_the_gram_matrix_of_output_gradients() -> None:
    net, x, _ = _small_problem()
    jac = []
    for i in range(x.shape[0]):  # with n = 1 and y = f(x) - 1 the loss gradient is grad f(x)
        xi = x[i : i + 1]
        jac.append(relu.loss_and_gradient(net, xi, net(xi) - 1.0)[1].ravel())
    jac = np.array(jac)
    np.testing.assert_allclose(net.ntk(x), jac @ jac.T, atol=1e-14)
    np.testing.assert_allclose(net.ntk(x[:2], x), (jac @ jac.T)[:2], atol=1e-14)


def test_empirical_ntk_approaches_the_analytic_kernel_as_width_grows() -> None:
    x = _sphere(12, 6, seed=10)
    H = relu.ntk(x)
    widths = (100, 1000, 10_000, 100_000)
    errors = []
    for i, m in enumerate(widths):
        net = relu.init_network(m, 6, seed=20 + i, batch=4)
        errors.append(np.sqrt(np.mean((net.ntk(x) - H) ** 2)))
    errors = np.array(errors)
    # independent pairs of neurons: the root-mean-square error falls like 1/sqrt(m)
    assert np.all(np.diff(errors) < 0)
    assert np.all(errors * np.sqrt(widths) < 1.0)
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert -0.65 < slope < -0.35


# ---------------------------------------------------------------------- training
def _linear_task(n: int, d: int, seed: int, batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
    x = relu.sample_sphere(n, d, seed=seed, batch=batch)
    beta = np.random.default_rng(seed + 1).standard_normal((batch, d))
    return x, np.sqrt(d) * np.einsum("bnd,bd->bn", x, beta / np.linalg.norm(beta, axis=-1)[:, None])


def test_wide_network_follows_the_kernel_predictor() -> None:
    """Relative distance to the analytic predictor shrinks with width and is small when wide."""
    x, y = _linear_task(30, 8, seed=11, batch=2)
    xt = relu.sample_sphere(300, 8, seed=12, batch=2)
    kern = relu.kernel_predictor(x, y, xt)
    scale = np.mean(kern**2)
    rel = {}
    for m in (100, 10_000):
        init = relu.init_network(m, 8, seed=13, batch=2)
        res = relu.train(x, y, init, lr=relu.default_lr(x, y, init, fraction=1.5), tol=1e-8)
        # the symmetric start outputs zero: its loss is the zero predictor's
        np.testing.assert_allclose(res.initial_loss, 0.5 * np.mean(y**2, axis=-1), rtol=1e-12)
        assert np.all(res.loss <= 1e-8 * res.initial_loss) and np.all(res.interpolated)
        out = res.weights(xt)
        rel[m] = np.mean((out - kern) ** 2) / scale
        lin = relu.kernel_predictor(x, y, xt, start=res.start, kernel="empirical")
        rel[f"lin{m}"] = np.mean((out - lin) ** 2) / scale
    assert rel[10_000] < 0.01
    assert rel[10_000] < rel[100] / 5
    assert rel["lin10000"] < rel[10_000]  # the linearised network is closer still


def test_fine_tuning_follows_the_predictor_from_the_pretrained_network() -> None:
    d = 8
    theta_s = np.eye(d)[0]
    pre = relu.pretrain(
        theta_s,
        width=4000,
        n_source=60,
        label_scale=np.sqrt(d),
        seed=14,
        lr_fraction=1.5,
        tol=1e-8,
    )
    assert pre.training.movement < 0.1 and pre.theta is None
    source = pre.weights
    x = relu.sample_sphere(25, d, seed=15)
    xt = relu.sample_sphere(300, d, seed=16)
    theta_t = theta_s + 0.3 * np.eye(d)[1]
    y = np.sqrt(d) * x @ theta_t
    res = relu.train(x, y, source, lr=relu.default_lr(x, y, source, fraction=1.5), tol=1e-8)
    assert res.start is not source and np.array_equal(res.start.weights, source.weights)
    out = res.weights(xt)
    kern = relu.kernel_predictor(x, y, xt, start=source)
    lin = relu.kernel_predictor(x, y, xt, start=source, kernel="empirical")
    err = np.mean((kern - np.sqrt(d) * xt @ theta_t) ** 2)
    assert np.mean((out - kern) ** 2) < 0.02 * err
    assert np.mean((out - lin) ** 2) < 0.002 * err
    # on the training inputs the predictor interpolates: it equals the labels
    np.testing.assert_allclose(relu.kernel_predictor(x, y, x, start=source), y, atol=1e-8)


def test_bound_lies_above_the_measured_risk_on_average() -> None:
    x, y = _linear_task(40, 6, seed=17, batch=4)
    xt = relu.sample_sphere(1000, 6, seed=18, batch=4)
    init = relu.init_network(2000, 6, seed=19, batch=4)
    res = relu.train(x, y, init, lr=relu.default_lr(x, y, init, fraction=1.5), tol=1e-8)
    betas = np.stack([np.linalg.lstsq(x[b], y[b], rcond=None)[0] for b in range(4)])
    np.testing.assert_allclose(np.einsum("bnd,bd->bn", x, betas), y, atol=1e-10)
    yt = np.einsum("bnd,bd->bn", xt, betas)
    risk = np.mean(np.minimum(np.abs(res.weights(xt) - yt), 1.0), axis=-1)
    train = np.mean(np.minimum(np.abs(res.weights(x) - y), 1.0), axis=-1)
    bound = relu.generalization_bound(x, y, train_loss=train)
    assert np.mean(bound) > np.mean(risk)
    assert np.all(bound > risk)


def test_batched_training_equals_separate_runs() -> None:
    x, y = _linear_task(20, 5, seed=21, batch=3)
    net = relu.init_network(300, 5, seed=22, batch=3)
    together = relu.train(x, y, net, lr=relu.default_lr(x, y, net, fraction=1.5), tol=1e-8)
    for b in range(3):
        one = relu.ReluNetwork(net.weights[b], net.signs)
        alone = relu.train(
            x[b], y[b], one, lr=relu.default_lr(x[b], y[b], one, fraction=1.5), tol=1e-8
        )
        assert int(alone.steps) == int(together.steps[b])
        np.testing.assert_allclose(
            alone.weights.weights, together.weights.weights[b], rtol=0, atol=1e-10
        )


def test_divergence_and_non_convergence_raise() -> None:
    x, y = _linear_task(20, 5, seed=23)
    net = relu.init_network(200, 5, seed=24, batch=1)
    lam = np.linalg.eigvalsh(net.ntk(x))[..., -1]
    with pytest.raises(relu.DivergenceError, match="diverged"):
        relu.train(x, y, net, lr=3.0 * 2 * 20 / lam)
    with pytest.raises(relu.ConvergenceError, match="did not converge in 3 steps"):
        relu.train(x, y, net, max_steps=3)
    loose = relu.train(x, y, net, max_steps=3, strict=False)
    assert not loose.converged.any() and np.all(loose.steps == 3)
    assert issubclass(relu.DivergenceError, relu.TrainingError)


def test_same_seed_same_bits() -> None:
    a = relu.pretrain(np.eye(4)[0], width=60, n_source=15, seed=25, lr_fraction=1.5, tol=1e-8)
    b = relu.pretrain(np.eye(4)[0], width=60, n_source=15, seed=25, lr_fraction=1.5, tol=1e-8)
    c = relu.pretrain(np.eye(4)[0], width=60, n_source=15, seed=26, lr_fraction=1.5, tol=1e-8)
    np.testing.assert_array_equal(a.weights.weights, b.weights.weights)
    assert not np.array_equal(a.weights.weights, c.weights.weights)
    np.testing.assert_array_equal(
        relu.sample_sphere(5, 3, seed=1), relu.sample_sphere(5, 3, seed=1)
    )


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: relu.init_network(7, 3), "width"),
        (lambda: relu.init_network(1, 3), "width"),
        (lambda: relu.init_network(8, 0), "d"),
        (lambda: relu.ReluNetwork(np.ones((4, 3)), np.array([1.0, -1, 2, 1])), "signs"),
        (lambda: relu.ReluNetwork(np.ones((4, 3)), np.ones(3)), "signs"),
        (lambda: relu.ReluNetwork(np.full((4, 3), np.inf), np.ones(4)), "weights"),
        (lambda: relu.init_network(8, 3)(_sphere(4, 5)), "X"),
        (lambda: relu.loss_and_gradient(relu.init_network(8, 3), _sphere(4, 3), np.ones(5)), "y"),
        (lambda: relu.train(_sphere(4, 3), np.ones(4), relu.init_network(8, 3), tol=0), "tol"),
        (
            lambda: relu.default_lr(_sphere(4, 3), start=relu.init_network(8, 3), fraction=2),
            "fraction",
        ),
        (lambda: relu.train(_sphere(4, 3), np.ones(4), relu.init_network(8, 3), lr=-1.0), "lr"),
        (
            lambda: relu.train(_sphere(4, 3), np.ones(4), relu.init_network(8, 3), max_steps=0),
            "max_steps",
        ),
        (
            lambda: relu.kernel_predictor(_sphere(4, 3), np.ones(4), _sphere(2, 3), kernel="x"),
            "kernel",
        ),
        (
            lambda: relu.kernel_predictor(
                _sphere(4, 3), np.ones(4), _sphere(2, 3), kernel="empirical"
            ),
            "start",
        ),
        (lambda: relu.kernel_predictor(_sphere(4, 3), np.ones(4), _sphere(2, 2)), "X_test"),
        (lambda: relu.pretrain(np.ones(3), width=8, n_source=0), "n_source"),
        (lambda: relu.pretrain(np.ones(3), width=8, n_source=5, label_scale=0), "label_scale"),
        (lambda: relu.sample_sphere(0, 3), "n"),
        (lambda: relu.predicted_bound(1.0, 0), "n"),
    ],
)
def test_bad_input_names_the_argument(call, name: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


def test_relative_distance_from_zero_weights_is_inf_or_zero() -> None:
    signs = np.array([1.0, -1.0])
    zero = relu.ReluNetwork(np.zeros((2, 2, 3)), signs)
    moved = relu.ReluNetwork(np.stack([np.zeros((2, 3)), np.ones((2, 3))]), signs)
    np.testing.assert_array_equal(moved.relative_distance(zero), [0.0, np.inf])
    assert moved.relative_distance(moved)[1] == 0.0


def test_train_from_dead_network_names_the_network() -> None:
    dead = relu.ReluNetwork(np.zeros((4, 3)), np.array([1.0, -1.0, 1.0, -1.0]))
    x = _sphere(5, 3)
    with pytest.raises(ValueError, match="network"):
        relu.train(x, x[:, 0], dead)
