"""The shared tolerances and guards of ``finetune_theory._numerics``, against numpy itself."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_theory._numerics import EIG_RTOL, ROUNDING, TINY, pinv, safe_divide


def test_the_constants_are_what_they_claim():
    eps = np.finfo(np.float64).eps
    assert ROUNDING == 8 * eps
    # far above float64's smallest normal number, far below anything computed with
    assert np.finfo(np.float64).tiny < TINY < 1e-250
    assert np.isfinite(1.0 / TINY) and np.log(TINY) > -700
    assert 100 * eps < EIG_RTOL < 1e-8


def test_safe_divide_is_division_where_the_denominator_is_not_zero():
    rng = np.random.default_rng(0)
    num = rng.standard_normal((4, 5))
    den = rng.standard_normal((4, 5))
    den[1, 2] = den[3, 0] = 0.0
    with np.errstate(all="raise"):  # no warning where den is zero
        out = safe_divide(num, den, where_zero=-7.0)
    ok = den != 0
    np.testing.assert_array_equal(out[ok], num[ok] / den[ok])
    np.testing.assert_array_equal(out[~ok], -7.0)
    assert out.dtype == np.float64 and out.shape == (4, 5)


def test_safe_divide_broadcasts_and_takes_lists():
    out = safe_divide([[1.0], [2.0]], [0.0, 4.0])
    np.testing.assert_array_equal(out, [[0.0, 0.25], [0.0, 0.5]])
    assert safe_divide(3, 0, where_zero=np.inf) == np.inf


def test_pinv_matches_numpy_on_well_conditioned_batches():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 4))
    np.testing.assert_allclose(pinv(x), np.linalg.pinv(x), rtol=1e-12, atol=1e-14)
    assert pinv(x).shape == (3, 4, 6)


def test_pinv_treats_rounding_as_zero_and_keeps_the_penrose_identities():
    rng = np.random.default_rng(2)
    u, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    v, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    s = np.array([3.0, 1.0, 0.5, 1e-3, 1e-14, 1e-16, 0.0, 0.0])
    a = u[:, :8] @ np.diag(s) @ v.T  # numerical rank 4: 1e-14 is below 30 * eps * 3
    p = pinv(a)
    sv = np.linalg.svd(p, compute_uv=False)
    np.testing.assert_allclose(sv[:4], np.sort(1.0 / s[:4])[::-1], rtol=1e-8)
    assert sv[4:].max() < 1e-6  # numpy's default cutoff would keep 1 / 1e-14
    assert np.linalg.svd(np.linalg.pinv(a), compute_uv=False).max() > 1e10
    a4 = u[:, :4] @ np.diag(s[:4]) @ v[:, :4].T
    np.testing.assert_allclose(a4 @ p @ a4, a4, atol=1e-10)
    np.testing.assert_allclose(p @ a4 @ p, p, atol=1e-8)


@pytest.mark.parametrize("shape", [(0, 3), (3, 0)])
def test_pinv_of_an_empty_matrix_is_empty(shape):
    assert pinv(np.zeros(shape)).shape == shape[::-1]
