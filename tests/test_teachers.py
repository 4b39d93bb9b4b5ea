"""Source/target teacher generators."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_theory import covariance as cv
from finetune_theory import teachers as te


def _uniform_sphere_check(units: np.ndarray) -> None:
    """Rows uniform on the unit sphere of R^d: every squared coordinate has mean 1/d.

    A squared coordinate of a uniform unit vector is Beta(1/2, (d-1)/2): mean 1/d and variance
    2 (d - 1) / (d^2 (d + 2)); the test allows 5 standard errors of the mean.
    """
    p, d = units.shape
    se = np.sqrt(2 * (d - 1) / (d**2 * (d + 2)) / p)
    assert np.all(np.abs((units**2).mean(axis=0) - 1 / d) < 5 * se)


def test_random_unit_is_unit_seeded_and_uniform():
    v = te.random_unit(7, seed=3)
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-14)
    assert np.array_equal(v, te.random_unit(7, seed=3))
    assert not np.allclose(v, te.random_unit(7, seed=4))
    _uniform_sphere_check(np.stack([te.random_unit(5, seed=s) for s in range(2000)]))


def test_teacher_pair():
    p = te.TeacherPair([1.0, 2.0], [0.5, 0.0])
    np.testing.assert_array_equal(p.delta, [0.5, 2.0])
    assert p.d == 2
    with pytest.raises(ValueError, match=r"theta_source has dimension 2 but theta_target"):
        te.TeacherPair([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"theta_target contains 1 non-finite"):
        te.TeacherPair([1.0, 2.0], [1.0, np.nan])


# ------------------------------------------------------------------ scaled
def test_scaled_pair_relation():
    p = te.scaled_pair(20, alpha=0.7, eps=0.3, seed=1)
    assert np.linalg.norm(p.theta_source) == pytest.approx(1.0)
    assert np.linalg.norm(p.theta_target - 0.7 * p.theta_source) == pytest.approx(0.3)
    src = np.arange(5.0)
    q = te.scaled_pair(alpha=-2.0, eps=0.0, theta_source=src, seed=0)
    np.testing.assert_array_equal(q.theta_source, src)
    np.testing.assert_allclose(q.theta_target, -2.0 * src)
    again = te.scaled_pair(20, alpha=0.7, eps=0.3, seed=1)
    assert np.array_equal(again.theta_target, p.theta_target)
    other = te.scaled_pair(20, alpha=0.7, eps=0.3, seed=2)
    assert not np.allclose(other.theta_target, p.theta_target)


# ------------------------------------------------------------------ placed
@pytest.mark.parametrize("rotate", [False, True])
@pytest.mark.parametrize("where", ["top", "tail"])
def test_placed_pair_direction_and_norm(where, rotate):
    c = cv.power_law(12, 1.0)
    c = cv.rotated(c, seed=5) if rotate else c
    p = te.placed_pair(c, distance=2.5, where=where, k=3, seed=4)
    assert np.linalg.norm(p.delta) == pytest.approx(2.5, rel=1e-12)
    coords = c.coords(p.delta)
    inside = slice(0, 3) if where == "top" else slice(9, 12)
    outside = np.ones(12, bool)
    outside[inside] = False
    np.testing.assert_allclose(coords[outside], 0.0, atol=1e-12)
    assert np.linalg.norm(coords[inside]) == pytest.approx(2.5, rel=1e-12)
    assert np.linalg.norm(p.theta_source) == pytest.approx(1.0)
    again = te.placed_pair(c, distance=2.5, where=where, k=3, seed=4)
    assert np.array_equal(again.theta_target, p.theta_target)


def test_placed_pair_random_direction_is_uniform_and_source_kept():
    c = cv.power_law(4, 1.0)
    deltas = np.stack([te.placed_pair(c, where="random", seed=s).delta for s in range(2000)])
    np.testing.assert_allclose(np.linalg.norm(deltas, axis=1), 1.0, rtol=1e-12)
    _uniform_sphere_check(deltas)
    src = np.array([1.0, -1.0, 2.0, 0.0])
    p = te.placed_pair(c, theta_source=src, where="top", k=1, distance=0.5, seed=0)
    np.testing.assert_array_equal(p.theta_source, src)
    assert abs(p.delta[0]) == pytest.approx(0.5)


# ------------------------------------------------------------------ profiled
@pytest.mark.parametrize("tilt", [-2.0, 0.0, 1.5])
def test_profiled_energy_follows_the_power(tilt):
    # coords_i = g_i i^(tilt/2) rescaled: undoing the power leaves a uniform direction
    c = cv.power_law(6, 1.0)
    p = 3000
    deltas = te.profiled_deltas(c, np.full(p, 2.0), tilt, seed=1)
    assert deltas.shape == (p, 6)
    np.testing.assert_allclose(np.linalg.norm(deltas, axis=1), 2.0, rtol=1e-12)
    u = c.coords(deltas) / np.arange(1, 7) ** (tilt / 2)
    _uniform_sphere_check(u / np.linalg.norm(u, axis=1, keepdims=True))


def test_profiled_pair_matches_profiled_deltas_and_reproduces():
    c = cv.rotated(cv.power_law(9, 1.0), seed=2)
    p = te.profiled_pair(c, distance=1.5, tilt=-1.0, seed=3)
    assert np.linalg.norm(p.delta) == pytest.approx(1.5)
    again = te.profiled_pair(c, distance=1.5, tilt=-1.0, seed=3)
    assert np.array_equal(p.theta_target, again.theta_target)
    head_heavy = te.profiled_deltas(c, np.ones(500), -3.0, seed=0)
    tail_heavy = te.profiled_deltas(c, np.ones(500), 3.0, seed=0)
    assert np.mean(c.coords(head_heavy)[:, 0] ** 2) > 0.5
    assert np.mean(c.coords(tail_heavy)[:, -1] ** 2) > 0.3
    one = te.profiled_deltas(c, 1.0, 0.0, seed=0)
    assert one.shape == (9,)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: te.random_unit(0), r"d must be >= 1"),
        (lambda: te.scaled_pair(), r"give d or theta_source"),
        (lambda: te.scaled_pair(3, eps=-1.0), r"eps must be >= 0"),
        (lambda: te.scaled_pair(3, alpha=np.inf), r"alpha must be finite"),
        (lambda: te.scaled_pair(3, theta_source=np.ones(4)), r"theta_source has dimension 4"),
        (lambda: te.scaled_pair(theta_source=[1.0, np.nan]), r"theta_source contains 1"),
        (lambda: te.placed_pair(np.eye(3), k=4), r"k = 4 exceeds the dimension d = 3"),
        (lambda: te.placed_pair(np.eye(3), k=0), r"k must be >= 1"),
        (lambda: te.placed_pair(np.eye(3), where="middle"), r"where must be 'top'"),
        (lambda: te.placed_pair(np.eye(3), k=1, distance=-1.0), r"distance must be >= 0"),
        (lambda: te.placed_pair(np.eye(3), k=1, theta_source=np.ones(2)), r"theta_source has"),
        (lambda: te.placed_pair([[1.0, 0.0], [1.0, 1.0]]), r"cov must be symmetric"),
        (lambda: te.profiled_pair(np.eye(3), tilt=np.nan), r"tilt must be finite"),
        (lambda: te.profiled_pair(np.eye(3), distance=-2.0), r"distance must be >= 0"),
        (lambda: te.profiled_deltas(np.eye(3), [1.0, -1.0], 0.0), r"distance must be >= 0"),
        (lambda: te.profiled_deltas(np.eye(3), [1.0, 1.0], [0.0, 1, 2]), r"do not broadcast"),
    ],
)
def test_bad_input_names_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()
