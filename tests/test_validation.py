"""Argument validation (``_validation``) and random streams (``_random``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finetune_theory import _validation as ck
from finetune_theory._random import as_generator, seed_sequence, spawn_generators


# ------------------------------------------------------------------ arrays
def test_as_array_returns_float64_copy_of_valid_input():
    out = ck.as_array([[1, 2], [3, 4]], "X", min_ndim=2, max_ndim=2)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([1.0, np.nan], r"X contains 1 non-finite"),
        ([np.inf, -np.inf, 0.0], r"X contains 2 non-finite"),
        ([], r"X must not be empty"),
        ("abc", r"X must be numeric"),
        ([[1.0, 2.0], [3.0]], r"X must be numeric"),
        (1.0 + 2.0j, r"X must be numeric"),
    ],
)
def test_as_array_rejects_bad_values(value, match):
    with pytest.raises(ValueError, match=match):
        ck.as_array(value, "X", min_ndim=0)


def test_as_array_dimension_messages():
    with pytest.raises(ValueError, match=r"theta must have 1 dimensions, got shape \(\)"):
        ck.as_vector(3.0, "theta")
    with pytest.raises(ValueError, match=r"theta must have at least 1 dimensions"):
        ck.as_vector(3.0, "theta", batch=True)
    with pytest.raises(ValueError, match=r"X must have 2 dimensions, got shape \(3,\)"):
        ck.as_matrix([1.0, 2.0, 3.0], "X")
    with pytest.raises(ValueError, match=r"X must have 2 dimensions"):
        ck.as_matrix(np.ones((2, 2, 2)), "X")
    assert ck.as_matrix(np.ones((2, 3, 4)), "X", batch=True).shape == (2, 3, 4)
    assert ck.as_vector(np.ones((2, 3)), "v", batch=True).shape == (2, 3)


def test_check_same_dim():
    ck.check_same_dim(3, np.ones((2, 3)), "X")
    with pytest.raises(ValueError, match=r"X has 4 entries .* d = 3"):
        ck.check_same_dim(3, np.ones((2, 4)), "X")


# ------------------------------------------------------------------ scalars
@pytest.mark.parametrize("good", [1, 7, np.int64(3), 5.0, np.float64(2.0)])
def test_check_positive_int_accepts_whole_numbers(good):
    out = ck.check_positive_int(good, "n")
    assert isinstance(out, int)
    assert out == int(good)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (0, r"n must be >= 1, got 0"),
        (-3, r"n must be >= 1"),
        (2.5, r"n must be an integer"),
        (True, r"n must be an integer"),
        (math.nan, r"n must be an integer"),
        (math.inf, r"n must be an integer"),
        ("3", r"n must be an integer"),
        (None, r"n must be an integer"),
    ],
)
def test_check_positive_int_rejects(bad, match):
    with pytest.raises(ValueError, match=match):
        ck.check_positive_int(bad, "n")


def test_check_positive_int_minimum():
    assert ck.check_positive_int(0, "k", minimum=0) == 0
    with pytest.raises(ValueError, match=r"k must be >= 2"):
        ck.check_positive_int(1, "k", minimum=2)


def test_check_positive_int_array():
    ints, scalar = ck.check_positive_int_array(4, "n")
    assert scalar
    np.testing.assert_array_equal(ints, [4])
    ints, scalar = ck.check_positive_int_array([1, 2.0, 30], "n")
    assert not scalar
    assert ints.dtype == np.int64
    np.testing.assert_array_equal(ints, [1, 2, 30])


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([], r"n must not be empty"),
        ([1, 0], r"n must be >= 1, got 0"),
        ([1.5], r"n must hold whole numbers"),
        ([np.nan], r"n must hold whole numbers"),
        ([True], r"n must hold integers"),
        (["a"], r"n must hold integers"),
        (1e30, r"n is too large"),
    ],
)
def test_check_positive_int_array_rejects(bad, match):
    with pytest.raises(ValueError, match=match):
        ck.check_positive_int_array(bad, "n")


def test_real_scalar_checks():
    assert ck.check_finite_scalar(-2, "a") == -2.0
    assert ck.check_nonnegative(0, "noise") == 0.0
    assert ck.check_positive(0.5, "eps") == 0.5
    with pytest.raises(ValueError, match=r"a must be finite"):
        ck.check_finite_scalar(math.inf, "a")
    with pytest.raises(ValueError, match=r"a must be finite"):
        ck.check_finite_scalar(np.nan, "a")
    with pytest.raises(ValueError, match=r"a must be a real number"):
        ck.check_finite_scalar("0.5", "a")
    with pytest.raises(ValueError, match=r"a must be a real number"):
        ck.check_finite_scalar(True, "a")
    with pytest.raises(ValueError, match=r"a must be a real number"):
        ck.check_finite_scalar(1j, "a")
    with pytest.raises(ValueError, match=r"noise must be >= 0, got -0.1"):
        ck.check_nonnegative(-0.1, "noise")
    with pytest.raises(ValueError, match=r"eps must be > 0, got 0"):
        ck.check_positive(0.0, "eps")


def test_check_depth():
    assert ck.check_depth(3) == 3
    assert ck.check_depth(math.inf) == math.inf
    with pytest.raises(ValueError, match=r"depth must be >= 1"):
        ck.check_depth(0)
    with pytest.raises(ValueError, match=r"depth must be an integer"):
        ck.check_depth(-math.inf)


@pytest.mark.parametrize("good", [0.5, 1e-300, 1 - 1e-16, np.float32(0.25)])
def test_check_open_unit_accepts(good):
    assert ck.check_open_unit(good, "delta") == float(good)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, 2.0, math.nan, math.inf])
def test_check_open_unit_rejects_naming_the_argument(bad):
    with pytest.raises(ValueError, match=r"^delta must"):
        ck.check_open_unit(bad, "delta")


# ----------------------------------------------------- scalar in, scalar out
def test_sample_sizes_and_output_like_round_trip():
    ns, scalar = ck.sample_sizes(5)
    assert scalar and ns.tolist() == [5]
    # a result with the n axis last: dropped for a scalar n, kept for an array
    out = ns[None, :] * np.array([[1.0], [2.0]])
    np.testing.assert_array_equal(ck.output_like(out, scalar), [5.0, 10.0])
    assert ck.output_like(ns * 0.5, scalar) == 2.5 and isinstance(ck.output_like(ns, True), float)
    ns, scalar = ck.sample_sizes([3, 4])
    assert not scalar
    kept = ck.output_like(ns * 1.0, scalar)
    assert isinstance(kept, np.ndarray) and kept.shape == (2,)
    assert isinstance(ck.output_like(np.array(3), kind=int), int)
    assert isinstance(ck.output_like(np.array([3.0])), np.ndarray)  # no scalar asked: kept
    with pytest.raises(ValueError, match="n must be a scalar or a 1-D array"):
        ck.sample_sizes([[1, 2]])
    with pytest.raises(ValueError, match="n must be >= 1"):
        ck.sample_sizes([3, 0])


# ------------------------------------------------------------------ random streams
def test_same_seed_same_bits_and_different_seeds_differ():
    a = as_generator(5).standard_normal(50)
    b = as_generator(5).standard_normal(50)
    c = as_generator(6).standard_normal(50)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    d = as_generator(np.random.SeedSequence(5)).standard_normal(50)
    assert np.array_equal(a, d)


def test_generator_passes_through():
    g = np.random.default_rng(0)
    assert as_generator(g) is g


def test_spawned_streams_reproduce_and_are_distinct():
    first = [g.standard_normal(20) for g in spawn_generators(11, 3)]
    again = [g.standard_normal(20) for g in spawn_generators(11, 3)]
    for x, y in zip(first, again, strict=True):
        assert np.array_equal(x, y)
    assert not np.allclose(first[0], first[1])
    # children of a Generator also reproduce when the parent does
    kids1 = spawn_generators(np.random.default_rng(3), 2)
    kids2 = spawn_generators(np.random.default_rng(3), 2)
    assert np.array_equal(kids1[1].standard_normal(5), kids2[1].standard_normal(5))


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [(-1, ValueError, r"seed must be >= 0"), (1.5, TypeError, "seed"), (True, TypeError, "seed")],
)
def test_bad_seeds(bad, error, match):
    # a seed of the wrong type is a TypeError, a negative one a ValueError
    with pytest.raises(error, match=match):
        seed_sequence(bad)


def test_check_lr_broadcasts_to_the_batch_and_rejects_bad_steps():
    np.testing.assert_array_equal(ck.check_lr([0.1, 0.2], (3, 2)), [[0.1, 0.2]] * 3)
    assert ck.check_lr(0.5, ()).shape == ()
    with pytest.raises(ValueError, match="lr must be > 0"):
        ck.check_lr(0.0, (2,))
    with pytest.raises(ValueError, match="not broadcastable"):
        ck.check_lr([0.1, 0.2, 0.3], (2,))
    with pytest.raises(TypeError, match="lr must be numeric"):
        ck.check_lr("fast", (2,))


@pytest.mark.parametrize(
    ("call", "is_type_error"),
    [
        (lambda: ck.as_array(None, "x"), True),
        (lambda: ck.as_array("abc", "x"), True),
        (lambda: ck.as_array([[1.0], [1.0, 2.0]], "x"), False),  # ragged: a value problem
        (lambda: ck.check_positive_int("3", "k"), True),
        (lambda: ck.check_positive_int(True, "k"), True),
        (lambda: ck.check_positive_int(1.5, "k"), False),
        (lambda: ck.check_finite_scalar("1.0", "a"), True),
        (lambda: ck.check_finite_scalar(np.inf, "a"), False),
    ],
)
def test_wrong_types_are_input_type_errors_and_wrong_values_value_errors(call, is_type_error):
    from finetune_theory.exceptions import InputTypeError

    with pytest.raises(ValueError) as info:
        call()
    assert isinstance(info.value, InputTypeError) is is_type_error
