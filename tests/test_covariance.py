"""Covariances held by their spectrum: families, sampling, estimates from data, rotations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf

from finetune_theory import covariance as cv


# ------------------------------------------------------------------ families
def test_isotropic_power_law_spiked_eigenvalues():
    np.testing.assert_array_equal(cv.isotropic(4, 2.5).eigvals, [2.5] * 4)
    np.testing.assert_allclose(
        cv.power_law(5, 2.0, scale=3.0).eigvals, 3.0 / np.array([1, 4, 9, 16, 25.0]), rtol=1e-15
    )
    np.testing.assert_array_equal(cv.power_law(3, 0.0).eigvals, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(cv.spiked(5, [3.0, 7.0], base=0.5).eigvals, [7, 3, 0.5, 0.5, 0.5])
    assert cv.isotropic(3).is_isotropic
    assert not cv.power_law(3, 1.0).is_isotropic


@pytest.mark.parametrize(
    "family",
    [lambda: cv.isotropic(6, 0.7), lambda: cv.power_law(6, 1.3), lambda: cv.spiked(6, [9.0, 4.0])],
)
def test_matrix_matches_spectrum(family):
    c = family()
    m = c.matrix
    np.testing.assert_allclose(m, m.T)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(m))[::-1], c.eigvals, rtol=1e-12)
    assert c.trace == pytest.approx(np.trace(m))
    r = cv.rotated(c, seed=4)
    np.testing.assert_allclose(
        np.sort(np.linalg.eigvalsh(r.matrix))[::-1], c.eigvals, rtol=1e-10, atol=1e-12
    )
    # eigvecs really are eigenvectors of the dense matrix
    np.testing.assert_allclose(r.matrix @ r.basis, r.basis * r.eigvals, atol=1e-12)


def test_coords_quad_and_rotation_agree_with_dense_algebra():
    rng = np.random.default_rng(0)
    c = cv.rotated(cv.power_law(7, 1.0), seed=1)
    theta = rng.standard_normal((3, 7))
    np.testing.assert_allclose(c.from_coords(c.coords(theta)), theta, atol=1e-13)
    np.testing.assert_allclose(c.quad(theta), np.einsum("bi,ij,bj->b", theta, c.matrix, theta))
    assert isinstance(c.quad(theta[0]), float)
    q = cv.random_rotation(7, seed=9)
    turned = c.rotate(q)
    np.testing.assert_allclose(turned.matrix, q @ c.matrix @ q.T, atol=1e-12)
    np.testing.assert_allclose(turned.quad(theta @ q.T), c.quad(theta), rtol=1e-12)


def test_random_rotation_is_orthogonal_seeded_and_haar_like():
    q = cv.random_rotation(5, seed=3)
    np.testing.assert_allclose(q.T @ q, np.eye(5), atol=1e-12)
    assert np.array_equal(q, cv.random_rotation(5, seed=3))
    assert not np.allclose(q, cv.random_rotation(5, seed=4))
    # Haar: every entry has mean 0 and second moment 1/d
    qs = np.stack([cv.random_rotation(4, seed=s) for s in range(400)])
    se = np.sqrt(qs.var(axis=0, ddof=1) / 400)
    assert np.all(np.abs(qs.mean(axis=0)) < 5 * se)
    sq = qs**2
    se2 = np.sqrt(sq.var(axis=0, ddof=1) / 400)
    assert np.all(np.abs(sq.mean(axis=0) - 0.25) < 5 * se2)
    assert cv.random_rotation(1).shape == (1, 1)


# ------------------------------------------------------------------ sampling
@pytest.mark.parametrize("rotate", [False, True])
def test_sample_covariance_converges(rotate):
    c = cv.spiked(4, [5.0], base=0.5)
    c = cv.rotated(c, seed=2) if rotate else c
    n = 40_000
    x = c.sample(n, seed=1)
    assert x.shape == (n, 4)
    s = x.T @ x / n
    m = c.matrix
    # Var of (1/n) sum x_i x_j for a centred Gaussian: (m_ii m_jj + m_ij^2) / n
    se = np.sqrt((np.outer(np.diag(m), np.diag(m)) + m**2) / n)
    assert np.all(np.abs(s - m) < 5 * se)
    assert np.all(np.abs(x.mean(axis=0)) < 5 * np.sqrt(np.diag(m) / n))


def test_sample_batch_and_seeds():
    c = cv.power_law(3, 1.0)
    x = c.sample(5, seed=7, batch=(2, 4))
    assert x.shape == (2, 4, 5, 3)
    assert c.sample(5, seed=7, batch=2).shape == (2, 5, 3)
    assert np.array_equal(x, c.sample(5, seed=7, batch=(2, 4)))
    assert not np.allclose(x, c.sample(5, seed=8, batch=(2, 4)))
    # a zero eigenvalue gives an exactly zero coordinate
    z = cv.Covariance(np.array([1.0, 0.0])).sample(10, seed=0)
    assert np.all(z[:, 1] == 0.0)


# ------------------------------------------------------------------ from_matrix / from_data
def test_from_matrix_round_trip():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((6, 6))
    m = a @ a.T
    c = cv.from_matrix(m)
    np.testing.assert_allclose(c.matrix, m, atol=1e-12)
    assert np.all(np.diff(c.eigvals) <= 0)
    assert cv.as_covariance(c) is c
    # rank-deficient PSD matrices are fine; tiny negative rounding is clipped to zero
    low = a[:, :2] @ a[:, :2].T
    c = cv.from_matrix(low)
    assert np.all(c.eigvals >= 0)
    np.testing.assert_allclose(c.eigvals[2:], 0.0, atol=1e-12)


def test_from_data_options():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 4)) @ np.diag([3.0, 1.0, 0.5, 0.2]) + 2.0
    np.testing.assert_allclose(cv.from_data(x).matrix, np.cov(x.T), atol=1e-12)
    raw = x.T @ x / 50
    np.testing.assert_allclose(cv.from_data(x, center=False).matrix, raw, atol=1e-12)
    s = np.cov(x.T)
    for w in (0.0, 0.3, 1.0):
        want = (1 - w) * s + w * np.trace(s) / 4 * np.eye(4)
        np.testing.assert_allclose(cv.from_data(x, shrinkage=w).matrix, want, atol=1e-12)
    lw = LedoitWolf().fit(x).covariance_
    np.testing.assert_allclose(cv.from_data(x, shrinkage="ledoit-wolf").matrix, lw, atol=1e-12)
    np.testing.assert_allclose(cv.from_data(x, shrinkage="Ledoit_Wolf").matrix, lw, atol=1e-12)
    # full shrinkage is isotropic with the same trace
    assert cv.from_data(x, shrinkage=1.0).is_isotropic


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: cv.isotropic(0), r"d must be >= 1"),
        (lambda: cv.isotropic(3, scale=-1.0), r"scale must be > 0"),
        (lambda: cv.isotropic(3, scale=np.nan), r"scale must be finite"),
        (lambda: cv.power_law(3, a=-1.0), r"a must be >= 0"),
        (lambda: cv.power_law(2.5), r"d must be an integer"),
        (lambda: cv.spiked(2, [5.0, 4.0, 3.0]), r"spikes has 3 values but d = 2"),
        (lambda: cv.spiked(3, [0.5]), r"spikes must each be >= base"),
        (lambda: cv.Covariance(np.array([1.0, -1.0])), r"eigvals must be >= 0"),
        (lambda: cv.Covariance(np.array([1.0, 2.0])), r"eigvals must be sorted"),
        (lambda: cv.Covariance(np.array([1.0, np.nan])), r"eigvals contains 1 non-finite"),
        (lambda: cv.Covariance(np.ones(2), np.eye(3)), r"eigvecs must have shape \(2, 2\)"),
        (lambda: cv.Covariance(np.ones(2), np.ones((2, 2))), r"eigvecs must have orthonormal"),
        (lambda: cv.from_matrix([[1.0, 2.0], [0.0, 1.0]]), r"cov must be symmetric"),
        (lambda: cv.from_matrix([[1.0, 2.0], [2.0, 1.0]]), r"cov must be positive semi-definite"),
        (lambda: cv.from_matrix(np.ones((2, 3))), r"cov must be square"),
        (lambda: cv.from_matrix([[1.0, np.inf], [np.inf, 1.0]]), r"cov contains 2 non-finite"),
        (lambda: cv.from_matrix([1.0, 2.0]), r"cov must have 2 dimensions"),
        (lambda: cv.as_covariance(np.eye(3), d=4), r"cov has dimension 3 but .* dimension 4"),
        (lambda: cv.from_data(np.ones((1, 3))), r"X needs at least 2 rows"),
        (lambda: cv.from_data(np.ones((5, 3)), shrinkage=1.5), r"shrinkage must lie in \[0, 1\]"),
        (lambda: cv.from_data(np.ones((5, 3)), shrinkage="oas"), r"shrinkage must be None"),
        (lambda: cv.from_data([[1.0, np.nan], [0.0, 1.0]]), r"X contains 1 non-finite"),
        (lambda: cv.isotropic(3).sample(0), r"n must be >= 1"),
        (lambda: cv.isotropic(3).sample(2, batch=-1), r"batch must be >= 0"),
        (lambda: cv.isotropic(3).rotate(np.eye(2)), r"rotation must have shape \(3, 3\)"),
        (lambda: cv.isotropic(2).rotate(np.ones((2, 2))), r"rotation must be orthogonal"),
        (lambda: cv.random_rotation(0), r"d must be >= 1"),
    ],
)
def test_bad_input_names_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_rotated_accepts_a_matrix():
    r = cv.rotated(np.diag([2.0, 1.0]), seed=0)
    np.testing.assert_allclose(r.eigvals, [2.0, 1.0], rtol=1e-12)
