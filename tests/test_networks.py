"""finetune_theory.networks against independent oracles.

The empirical NTK against the closed-form two-layer ReLU kernel at large width and against
``torch.autograd`` gradients; the JVP route against the Jacobian route; the linearised
predictor against closed-form linear fine-tuning on a network linear in its parameters;
the deterministic equivalent of kernel ridge against Monte Carlo on a kernel whose spectrum
is known; a wide network fine-tuned by gradient descent against its linearisation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from finetune_theory import linear, networks, relu  # noqa: E402
from finetune_theory.covariance import Covariance  # noqa: E402


class TwoLayerRelu(torch.nn.Module):
    """``(1/sqrt(m)) sum_r a_r relu(w_r^T x)`` with fixed signs (the package's ReLU model)."""

    def __init__(self, weights: np.ndarray, signs: np.ndarray) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(weights.shape[1], weights.shape[0], bias=False)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.as_tensor(weights))
        self.register_buffer("signs", torch.as_tensor(signs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.hidden(x)) @ self.signs / math.sqrt(self.signs.numel())


def _small_net(seed: int = 0, outputs: int = 1) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 7), torch.nn.Tanh(), torch.nn.Linear(7, 5), torch.nn.ReLU(),
        torch.nn.Linear(5, outputs),
    ).double()


def test_empirical_ntk_of_the_relu_model_is_its_closed_form_kernel() -> None:
    rng = np.random.default_rng(0)
    x = relu.sample_sphere(6, 4, seed=rng)
    net = relu.init_network(20_000, 4, seed=rng)
    mod = TwoLayerRelu(np.asarray(net.weights), np.asarray(net.signs))
    k = networks.empirical_ntk(mod, x, parameters=["hidden.weight"])
    # same weights: exactly the package's empirical kernel
    np.testing.assert_allclose(k, net.ntk(x), rtol=1e-10, atol=1e-12)
    # large width: the analytic kernel u (pi - arccos u) / (2 pi)
    np.testing.assert_allclose(k, relu.ntk(x), atol=0.02)
    assert np.max(np.abs(k - relu.ntk(x))) > 1e-6  # finite width: not the same matrix


def test_empirical_ntk_is_the_gram_matrix_of_autograd_gradients() -> None:
    net = _small_net()
    x = np.random.default_rng(1).standard_normal((4, 3))
    grads = []
    for row in x:
        out = net(torch.as_tensor(row[None, :]))[0, 0]
        g = torch.autograd.grad(out, list(net.parameters()))
        grads.append(torch.cat([t.reshape(-1) for t in g]).numpy())
    g = np.array(grads)
    np.testing.assert_allclose(networks.empirical_ntk(net, x), g @ g.T, rtol=1e-12)
    np.testing.assert_allclose(networks.jacobian(net, x), g, rtol=1e-12, atol=1e-15)
    # the head only: the last five weights and the bias
    np.testing.assert_allclose(
        networks.empirical_ntk(net, x, parameters="last"), g[:, -6:] @ g[:, -6:].T, rtol=1e-12
    )


def test_jvp_route_matches_jacobian_route_on_a_convolutional_net_with_several_outputs() -> None:
    torch.manual_seed(2)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(48, 3)
    )
    x1 = np.random.default_rng(2).standard_normal((5, 1, 6, 6))
    x2 = np.random.default_rng(3).standard_normal((3, 1, 6, 6))
    for params in ("all", "last", ["0.weight"]):
        a = networks.empirical_ntk(net, x1, x2, parameters=params, output=1, method="jacobian")
        b = networks.empirical_ntk(net, x1, x2, parameters=params, output=1, method="jvp")
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    other = networks.empirical_ntk(net, x1, x2, output=2, method="jvp")
    assert not np.allclose(other, a)


@pytest.mark.slow
def test_jvp_route_at_a_million_parameters_holds_only_blocks_of_gradients(monkeypatch) -> None:
    """An MLP 20-1000-980-1 (1,002,961 parameters): the JVP route's kernel equals the
    Jacobian route's, and the largest block of gradient rows it holds is a small part of the
    Jacobian of the first rows (``benchmarks/bench_networks.py`` measures time and peak
    memory at 40 rows)."""
    from finetune_theory.networks import _ntk

    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(nn.Linear(20, 1000), nn.Tanh(), nn.Linear(1000, 980), nn.Tanh(),
                        nn.Linear(980, 1)).double()
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params > 10**6
    x1 = np.random.default_rng(0).standard_normal((24, 20))
    x2 = np.random.default_rng(1).standard_normal((12, 20))
    held: list[int] = []
    real = _ntk.per_row_grads

    def spy(fn, x, params=None):
        out = real(fn, x, params)
        held.append(sum(v.numel() for v in out.values()))
        return out

    monkeypatch.setattr(_ntk, "per_row_grads", spy)
    k = networks.empirical_ntk(net, x1, x2)  # "auto" takes the JVP route here
    assert held and max(held) <= _ntk.JACOBIAN_FLOATS
    assert max(held) < x1.shape[0] * n_params / 2
    monkeypatch.undo()
    j1 = networks.jacobian(net, x1[:6])
    j2 = networks.jacobian(net, x2)
    np.testing.assert_allclose(k[:6], j1 @ j2.T, rtol=1e-10)


def test_kernel_at_other_weights_uses_them() -> None:
    net = _small_net()
    x = np.random.default_rng(4).standard_normal((3, 3))
    moved = {"4.weight": torch.zeros(1, 5, dtype=torch.float64)}
    k = networks.empirical_ntk(net, x, parameters=["4.weight", "0.weight"], params=moved)
    # a zero head kills every gradient below it: only the head's own gradient is left
    j = networks.jacobian(net, x, parameters=["4.weight"])
    np.testing.assert_allclose(k, j @ j.T, atol=1e-14)


def test_linearised_predictor_is_exact_for_a_network_linear_in_its_parameters() -> None:
    net = _small_net(3)
    rng = np.random.default_rng(5)
    x, xt = rng.standard_normal((4, 3)), rng.standard_normal((9, 3))
    y = rng.standard_normal(4)
    pen, pen_t = networks.penultimate_features(net, x), networks.penultimate_features(net, xt)
    fit = networks.linearised_predictor(net, x, y, xt, parameters="last")
    # the head alone: linear fine-tuning on the penultimate features from the source head
    theta = linear.finetune(pen.design(), y, pen.theta)
    np.testing.assert_allclose(fit.predictions, pen_t.design() @ theta, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(fit.fitted, y, atol=1e-10)
    ridge = networks.linearised_predictor(net, x, y, xt, parameters="last", ridge=0.3)
    theta_r = linear.finetune(pen.design(), y, pen.theta, ridge=0.3)
    np.testing.assert_allclose(ridge.predictions, pen_t.design() @ theta_r, rtol=1e-9)


def test_train_on_the_head_is_gradient_descent_on_the_penultimate_features() -> None:
    net = _small_net(3)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 6, 3))  # two problems at once
    y = rng.standard_normal((2, 6))
    res = networks.train(net, x, y, lr=0.3, max_steps=60, parameters="last")
    for r in range(2):
        pen = networks.penultimate_features(net, x[r])
        a, theta = pen.design(), pen.theta.copy()
        for _ in range(60):
            theta -= 0.3 * a.T @ (a @ theta - y[r]) / 6
        head = res.replica(r)
        w = np.append(head["4.weight"].numpy()[0], head["4.bias"].numpy()[0])
        np.testing.assert_allclose(w, theta, rtol=1e-10, atol=1e-12)
        assert res.loss[r] == pytest.approx(0.5 * np.mean((a @ theta - y[r]) ** 2), rel=1e-10)
    np.testing.assert_allclose(res.time, 18.0)


def test_early_stopping_in_kernel_form_is_gradient_flow() -> None:
    rng = np.random.default_rng(6)
    phi, phit = rng.standard_normal((6, 10)), rng.standard_normal((3, 10))
    theta_s, y = rng.standard_normal(10), rng.standard_normal(6)
    t, lr = 2.0, 1e-3
    fit = networks.kernel_finetune(phi @ phi.T, phit @ phi.T, y, phi @ theta_s, phit @ theta_s,
                                   time=t)
    theta = theta_s.copy()  # small steps of GD on (1/2n)||X theta - y||^2 approach the flow
    for _ in range(int(t / lr)):
        theta -= lr * phi.T @ (phi @ theta - y) / 6
    np.testing.assert_allclose(fit.predictions, phit @ theta, rtol=5e-3)
    late = networks.kernel_finetune(phi @ phi.T, phit @ phi.T, y, phi @ theta_s, phit @ theta_s,
                                    time=1e9)
    end = networks.kernel_finetune(phi @ phi.T, phit @ phi.T, y, phi @ theta_s, phit @ theta_s)
    np.testing.assert_allclose(late.predictions, end.predictions, rtol=1e-8)


def _signs(rng: np.random.Generator, rows: int, lam: np.ndarray) -> np.ndarray:
    """Features ``z_k sqrt(lam_k)`` with independent random signs ``z_k``: a kernel whose
    spectrum is exactly ``lam`` (``E[phi phi^T] = diag(lam)``), with non-Gaussian features."""
    return rng.choice([-1.0, 1.0], size=(rows, lam.size)) * np.sqrt(lam)


@pytest.mark.parametrize("ridge", [0.0, 1e-3])
def test_kernel_ridge_deterministic_equivalent_matches_monte_carlo(ridge: float) -> None:
    rng = np.random.default_rng(7)
    lam = np.arange(1, 201) ** -2.0
    beta = rng.standard_normal(200) * lam**0.25
    n, reps = 30, 200
    phit = _signs(rng, 400, lam)
    risks = []
    for _ in range(reps):
        phi = _signs(rng, n, lam)
        fit = networks.kernel_finetune(phi @ phi.T, phit @ phi.T, phi @ beta, np.zeros(n),
                                       np.zeros(400), ridge=ridge)
        risks.append(np.mean((fit.predictions - phit @ beta) ** 2))
    cov = Covariance(lam)
    pred = linear.expected_risk(cov, np.zeros(200), beta, n, ridge=ridge)
    mc = np.mean(risks)
    assert abs(pred / mc - 1) < 0.12, (pred, mc)
    # a planted error in the kernel-ridge convention (ridge without the factor n) shows
    wrong = linear.expected_risk(cov, np.zeros(200), beta, n, ridge=ridge * n)
    assert ridge == 0 or abs(wrong / mc - 1) > 0.12


def test_curve_from_unlabelled_spectrum_and_labelled_profile_matches_monte_carlo() -> None:
    rng = np.random.default_rng(8)
    lam = np.arange(1, 121) ** -1.5
    beta = rng.standard_normal(120) * lam**0.25
    noise = 0.05
    u = _signs(rng, 2000, lam)
    lab = _signs(rng, 150, lam)
    spec = networks.kernel_spectrum(u @ u[:300].T, u[:300] @ u[:300].T)  # Nystrom
    exact = networks.feature_spectrum(u)
    np.testing.assert_allclose(spec.eigvals[:20], exact.eigvals[:20], rtol=0.05)
    resid = lab @ beta + noise * rng.standard_normal(150)
    ns = np.array([10, 40])
    curve = networks.predict_from_spectrum(spec, spec.coords(lab @ u[:300].T), resid, ns)
    xt = _signs(rng, 400, lam)
    for j, n in enumerate(ns):
        mse = []
        for _ in range(60):
            phi = _signs(rng, n, lam)
            y = phi @ beta + noise * rng.standard_normal(n)
            fit = networks.kernel_finetune(phi @ phi.T, xt @ phi.T, y, np.zeros(n), np.zeros(400))
            mse.append(np.mean((fit.predictions - xt @ beta) ** 2) + noise**2)
        assert 0.6 < curve.mse[j] / np.mean(mse) < 1.6, (n, curve.mse[j], np.mean(mse))


@pytest.mark.slow
def test_wide_network_fine_tuned_with_small_steps_follows_its_linearisation() -> None:
    torch.manual_seed(9)
    width = 1024
    net = torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.Tanh(),
                              torch.nn.Linear(width, 1)).double()
    with torch.no_grad():  # NTK scaling: unit-variance weights, output divided by sqrt(width)
        net[0].weight.normal_()
        net[0].bias.zero_()
        net[2].weight.normal_().mul_(1 / math.sqrt(width))
        net[2].bias.zero_()
    rng = np.random.default_rng(9)
    x, xt = rng.standard_normal((12, 3)), rng.standard_normal((50, 3))
    y = np.sin(x[:, 0]) + x[:, 1]
    k = networks.empirical_ntk(net, x)
    lr = 0.5 / np.linalg.eigvalsh(k / 12)[-1]
    res = networks.train(net, x, y, lr=lr, max_steps=400)
    fn_params = res.replica(0)
    with torch.no_grad():
        out = torch.func.functional_call(net, fn_params, (torch.as_tensor(xt),))[:, 0].numpy()
    lin = networks.linearised_predictor(net, x, y, xt, time=float(res.time[0]))
    src = lin.source_predictions
    change = np.linalg.norm(out - src)
    assert np.linalg.norm(out - lin.predictions) < 0.05 * change
    assert res.movement[0] < 0.05  # lazy: the weights barely moved
    assert res.loss[0] < 0.05 * res.start_loss[0]


def test_predict_curve_routes_and_nystrom_agree_with_the_exact_spectrum() -> None:
    net = _small_net(10)
    rng = np.random.default_rng(10)
    u, x = rng.standard_normal((120, 3)), rng.standard_normal((30, 3))
    y = np.tanh(x[:, 0]) + 0.1 * rng.standard_normal(30)
    full = networks.predict_curve(net, u, x, y, [5, 10, 20])
    nys = networks.predict_curve(net, u, x, y, [5, 10, 20], landmarks=100, seed=1)
    last = networks.predict_curve(net, u, x, y, [5, 10, 20], route="last")
    assert full.route == "full" and last.route == "last"
    np.testing.assert_allclose(nys.mse, full.mse, rtol=0.15)
    assert last.eigvals.size == 6  # five features and the constant
    # stopped at once: the source unchanged
    stopped = networks.predict_curve(net, u, x, y, [5, 10, 20], time=1e-9)
    np.testing.assert_allclose(stopped.mse, full.source_mse, rtol=1e-6)


def test_penultimate_features_and_the_head() -> None:
    net = _small_net(11, outputs=3)
    x = np.random.default_rng(11).standard_normal((4, 3))
    pen = networks.penultimate_features(net, x, output=2)
    out = net(torch.as_tensor(x)).detach().numpy()[:, 2]
    np.testing.assert_allclose(pen.outputs(), out, rtol=1e-12)
    feats, src = networks.advisor_inputs(net, x, output=2)
    np.testing.assert_array_equal(feats, pen.features)
    assert src["coef"].shape == (5,)


def test_bad_inputs_raise_one_readable_error() -> None:
    net = _small_net(12, outputs=2)
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="output="):
        networks.empirical_ntk(net, x)
    with pytest.raises(ValueError, match="unknown parameter"):
        networks.empirical_ntk(net, x, parameters=["nope"], output=0)
    with pytest.raises(ValueError, match="method"):
        networks.empirical_ntk(net, x, output=0, method="magic")
    with pytest.raises(ValueError, match="non-finite"):
        networks.empirical_ntk(net, [[np.nan, 0, 0]], output=0)
    with pytest.raises(ValueError, match="route"):
        networks.predict_curve(net, x, x, [1, 2], 2, route="middle", output=0)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        networks.empirical_ntk(lambda z: z, x)
    with pytest.raises(ValueError, match="not the output"):
        networks.penultimate_features(torch.nn.Sequential(torch.nn.Linear(3, 1),
                                                          torch.nn.Tanh()), x)


def test_a_padded_batch_of_problems_trains_each_as_alone() -> None:
    net = _small_net(13)
    rng = np.random.default_rng(13)
    x, y = rng.standard_normal((2, 6, 3)), rng.standard_normal((2, 6))
    moved = {k: v.detach().clone() + 0.1 for k, v in net.named_parameters()}
    start = {k: torch.stack([dict(net.named_parameters())[k].detach(), moved[k]]) for k in moved}
    both = networks.train(net, x, y, lr=[0.1, 0.05], max_steps=20, rows=[4, 6], start=start)
    alone = networks.train(net, x[0, :4], y[0, :4], lr=0.1, max_steps=20)
    for k in moved:
        np.testing.assert_allclose(both.params[k][0].numpy(), alone.params[k][0].numpy(),
                                   rtol=1e-12, atol=1e-14)
    with torch.no_grad():
        for v in net.parameters():
            v.add_(0.1)
    second = networks.train(net, x[1], y[1], lr=0.05, max_steps=20)
    for k in moved:
        np.testing.assert_allclose(both.params[k][1].numpy(), second.params[k][0].numpy(),
                                   rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(both.time, [2.0, 1.0])
    with pytest.raises(ValueError, match="rows"):
        networks.train(net, x, y, lr=0.1, max_steps=1, rows=[0, 6])
