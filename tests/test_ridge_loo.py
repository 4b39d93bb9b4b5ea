"""``finetune_theory._ridge_loo``: the closed-form leave-one-out of ridge with a refitted
intercept, against refitting without each row (brute force)."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_theory._ridge_loo import gram_basis, loo_residuals


def _brute(x, z, alpha):
    """Leave-one-out residuals by n refits, each centring its own rows."""
    out = np.empty(len(z))
    for i in range(len(z)):
        keep = np.arange(len(z)) != i
        xk, zk = x[keep], z[keep]
        mx, mz = xk.mean(0), zk.mean()
        w = np.linalg.solve((xk - mx).T @ (xk - mx) + alpha * np.eye(x.shape[1]),
                            (xk - mx).T @ (zk - mz))
        out[i] = z[i] - (mz + (x[i] - mx) @ w)
    return out


@pytest.mark.parametrize(("n", "d"), [(9, 3), (6, 10)])  # both Gram routes
def test_the_closed_form_is_the_refit_without_each_row(n, d):
    rng = np.random.default_rng(n + d)
    alphas = np.array([1e-3, 0.7, 40.0])
    x = rng.standard_normal((2, n, d))
    z = rng.standard_normal((3, 2, n))  # three label sets on two designs
    xc = x - x.mean(axis=1, keepdims=True)
    zc = z - z.mean(axis=2, keepdims=True)
    u, g = gram_basis(xc)
    res, uz = loo_residuals(u, g, zc, alphas, 1.0 / n)
    assert res.shape == (3, 2, 3, n) and uz.shape == (3, 2, min(n, d))
    for j in range(3):
        for b in range(2):
            for a, alpha in enumerate(alphas):
                np.testing.assert_allclose(res[j, b, a], _brute(x[b], z[j, b], alpha),
                                           rtol=1e-8, atol=1e-10)


def test_gram_basis_spans_the_rows_and_drops_null_directions():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 8, 3)) @ np.diag([1.0, 1.0, 0.0])  # rank 2
    u, g = gram_basis(x)
    assert np.count_nonzero(g[0]) == 2
    kept = u[0][:, g[0] > 0]
    np.testing.assert_allclose(kept.T @ kept, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(kept @ kept.T @ x[0], x[0], atol=1e-12)  # spans the columns
