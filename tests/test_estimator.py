"""FineTunedRegressor: scikit-learn's estimator contract, and agreement with the theory."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from finetune_theory import deep_linear, linear
from finetune_theory.estimator import FineTunedRegressor


def _expected_failures(estimator):
    # Leave-one-out with a weight-2 row leaves the whole row out; with the row given twice it
    # leaves out one copy, so the chosen alpha may differ (as for scikit-learn's RidgeCV). The
    # fit at a given alpha is checked against repeated rows in test_integer_weights_equal_...
    if estimator.alpha == "loo":
        return {"check_sample_weight_equivalence_on_dense_data": "leave-one-out of a copy"}
    return {}


@parametrize_with_checks(
    [
        FineTunedRegressor(),
        FineTunedRegressor(solver="gd"),
        FineTunedRegressor(fit_intercept=False, depth=2),
        FineTunedRegressor(alpha="loo"),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _problem(n=8, d=20, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    ts = rng.standard_normal(d)
    y = x @ (ts + 0.3 * rng.standard_normal(d)) + 0.1 * rng.standard_normal(n)
    return x, y, ts


def test_fit_equals_linear_finetune_with_frozen_intercept():
    x, y, ts = _problem()
    model = FineTunedRegressor(ts, source_intercept=1.5, fit_intercept=False).fit(x, y)
    np.testing.assert_allclose(model.coef_, linear.finetune(x, y - 1.5, ts), atol=1e-12)
    assert model.intercept_ == 1.5
    # n < d: the fine-tuned model interpolates and moves only inside the row space of X
    np.testing.assert_allclose(model.predict(x), y, atol=1e-10)
    null = np.linalg.svd(x)[2][x.shape[0] :]
    np.testing.assert_allclose(null @ (model.coef_ - ts), 0.0, atol=1e-10)


def test_fit_intercept_centres_and_is_shift_equivariant():
    x, y, ts = _problem(seed=1)
    model = FineTunedRegressor(ts).fit(x, y)
    xm, ym = x.mean(axis=0), y.mean()
    np.testing.assert_allclose(model.coef_, linear.finetune(x - xm, y - ym, ts), atol=1e-12)
    np.testing.assert_allclose(model.intercept_, ym - xm @ model.coef_, atol=1e-12)
    shifted = FineTunedRegressor(ts).fit(x, y + 7.0)
    np.testing.assert_allclose(shifted.coef_, model.coef_, atol=1e-10)
    np.testing.assert_allclose(shifted.intercept_, model.intercept_ + 7.0, atol=1e-10)


def test_full_rank_forgets_the_source_and_equals_least_squares():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((60, 5))
    y = x @ rng.standard_normal(5) + 2.0 + 0.1 * rng.standard_normal(60)
    ols = LinearRegression().fit(x, y)
    for source in (None, 10 * rng.standard_normal(5)):
        model = FineTunedRegressor(source).fit(x, y)
        np.testing.assert_allclose(model.coef_, ols.coef_, atol=1e-10)
        np.testing.assert_allclose(model.intercept_, ols.intercept_, atol=1e-10)


def test_gd_equals_closed_form():
    x, y, ts = _problem(seed=3)
    closed = FineTunedRegressor(ts).fit(x, y)
    gd = FineTunedRegressor(ts, solver="gd", tol=1e-13, max_steps=200_000).fit(x, y)
    np.testing.assert_allclose(gd.coef_, closed.coef_, atol=1e-6)
    np.testing.assert_allclose(gd.intercept_, closed.intercept_, atol=1e-6)


def test_depth_closed_form_equals_deep_linear_finetune():
    x, y, ts = _problem(seed=4)
    for depth in (2, 3):
        model = FineTunedRegressor(ts, depth=depth, fit_intercept=False).fit(x, y)
        np.testing.assert_allclose(model.coef_, deep_linear.finetune(x, y, ts, depth), atol=1e-12)
    # depth changes the answer (the source is rescaled in the unseen directions)
    one = FineTunedRegressor(ts, fit_intercept=False).fit(x, y).coef_
    assert np.linalg.norm(model.coef_ - one) > 1e-3


def test_depth_gd_approaches_closed_form_as_the_step_shrinks():
    x, y, ts = _problem(n=6, d=12, seed=5)
    closed = FineTunedRegressor(ts, depth=3, fit_intercept=False).fit(x, y).coef_
    base = deep_linear.default_lr(x, y, deep_linear.balanced_init(ts, 3, 12))
    gaps = []
    for lr in (base, base / 4):
        gd = FineTunedRegressor(
            ts, depth=3, fit_intercept=False, solver="gd", lr=lr, tol=1e-14, max_steps=400_000
        ).fit(x, y)
        np.testing.assert_allclose(gd.predict(x), y, atol=1e-5)  # it interpolates
        assert len(gd.weights_) == 3
        gaps.append(np.linalg.norm(gd.coef_ - closed))
    # the drift from gradient flow is linear in the step size
    assert gaps[1] < 0.5 * gaps[0]
    assert gaps[1] < 1e-2 * np.linalg.norm(closed)


def test_from_scratch_depth_is_the_minimum_norm_solution():
    x, y, _ = _problem(seed=6)
    for solver in ("closed_form", "gd"):
        model = FineTunedRegressor(depth=3, solver=solver, fit_intercept=False).fit(x, y)
        np.testing.assert_allclose(model.coef_, np.linalg.pinv(x) @ y, atol=1e-10)


def test_pipeline_and_grid_search_pick_the_right_source():
    rng = np.random.default_rng(7)
    d, n = 40, 30
    theta = rng.standard_normal(d)
    x = rng.standard_normal((n, d))
    y = x @ theta + 0.05 * rng.standard_normal(n)
    pipe = make_pipeline(StandardScaler(with_std=False), FineTunedRegressor(theta))
    assert pipe.fit(x, y).score(x, y) > 0.99
    grid = GridSearchCV(
        FineTunedRegressor(),
        {"source_coef": [None, theta, -theta], "fit_intercept": [True, False]},
        cv=3,
    ).fit(x, y)
    np.testing.assert_array_equal(grid.best_params_["source_coef"], theta)
    assert grid.best_estimator_.score(x, y) > 0.99


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"source_coef": np.ones(3)}, "source_coef has 3 entries but X has 20 features"),
        ({"source_coef": [1.0, np.nan] * 10}, "source_coef"),
        ({"solver": "newton"}, "solver"),
        ({"depth": 0}, "depth"),
        ({"source_intercept": "a"}, "source_intercept"),
        ({"fit_intercept": "yes"}, "fit_intercept"),
        ({"max_steps": 0}, "max_steps"),
        ({"lr": -0.1, "solver": "gd"}, "'lr' parameter"),
        ({"width": 0}, "width"),
        ({"tol": -1.0}, "tol"),
        ({"depth": 1.5}, "depth"),
    ],
)
def test_bad_parameters_raise_at_fit(params, match):
    x, y, _ = _problem()
    model = FineTunedRegressor(**params)  # no validation in __init__
    with pytest.raises(ValueError, match=match):
        model.fit(x, y)


# ------------------------------------------------------------- ridge towards the source
def test_alpha_is_ridge_towards_the_source_in_sklearn_units():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(20)
    X = rng.standard_normal((15, 8))
    y = X @ rng.standard_normal(8) + 0.3 + 0.1 * rng.standard_normal(15)
    ts = rng.standard_normal(8)
    model = FineTunedRegressor(ts, alpha=2.5).fit(X, y)
    # Ridge on the residuals y - X ts with the same alpha, shifted back by the source
    ref = Ridge(alpha=2.5).fit(X, y - X @ ts)
    np.testing.assert_allclose(model.coef_, ts + ref.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=1e-9)
    assert model.alpha_ == 2.5
    np.testing.assert_allclose(FineTunedRegressor(ts, alpha=1e12).fit(X, y).coef_, ts, atol=1e-8)
    zero = FineTunedRegressor(ts, alpha=0.0).fit(X, y)
    np.testing.assert_array_equal(zero.coef_, FineTunedRegressor(ts).fit(X, y).coef_)


def test_alpha_loo_is_the_brute_force_leave_one_out_choice():
    rng = np.random.default_rng(21)
    X = rng.standard_normal((14, 6))
    y = X @ rng.standard_normal(6) + rng.standard_normal(14)
    ts = rng.standard_normal(6) * 0.3
    alphas = np.logspace(-2, 3, 9)
    model = FineTunedRegressor(ts, alpha="loo", alphas=alphas).fit(X, y)
    brute = []
    for a in alphas:
        errs = []
        for i in range(14):
            keep = np.arange(14) != i
            m = FineTunedRegressor(ts, alpha=a).fit(X[keep], y[keep])
            errs.append((m.predict(X[i : i + 1])[0] - y[i]) ** 2)
        brute.append(np.mean(errs))
    # the leave-one-out fits use alpha in sklearn units, so n - 1 rows carry the same penalty
    np.testing.assert_allclose(model.loo_mse_, brute, rtol=1e-8)
    assert model.alpha_ == alphas[int(np.argmin(brute))]


def test_source_coef_by_feature_name_and_mismatches():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(22)
    X = pd.DataFrame(rng.standard_normal((10, 3)), columns=["a", "b", "c"])
    y = rng.standard_normal(10)
    vec = np.array([1.0, 2.0, 3.0])
    by_name = {"c": 3.0, "a": 1.0, "b": 2.0}
    want = FineTunedRegressor(vec).fit(X, y).coef_
    np.testing.assert_allclose(FineTunedRegressor(by_name).fit(X, y).coef_, want)
    series = pd.Series(by_name)
    np.testing.assert_allclose(FineTunedRegressor(series).fit(X, y).coef_, want)
    with pytest.raises(ValueError, match=r"missing \['b'\], unknown \['z'\]"):
        FineTunedRegressor({"a": 1.0, "c": 1.0, "z": 1.0}).fit(X, y)
    with pytest.raises(ValueError, match="no column names"):
        FineTunedRegressor(by_name).fit(X.to_numpy(), y)


def test_refit_clears_state_and_gd_reports_iterations():
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(23)
    X = rng.standard_normal((6, 5))
    y = rng.standard_normal(6)
    model = FineTunedRegressor(np.ones(5), depth=2, solver="gd", fit_intercept=False)
    model.fit(X, y)
    assert hasattr(model, "weights_") and model.n_iter_ > 0
    model.set_params(depth=1, solver="closed_form").fit(X, y)
    assert not hasattr(model, "weights_") and not hasattr(model, "n_iter_")
    gd = FineTunedRegressor(np.ones(5), solver="gd").fit(X, y)
    assert 0 < gd.n_iter_ <= gd.max_steps
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        FineTunedRegressor(np.ones(5), solver="gd", max_steps=3).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        FineTunedRegressor(np.ones(5), solver="gd").fit(X, y)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"alpha": -1.0}, "'alpha' parameter"),
        ({"alpha": "gcv"}, "'alpha' parameter"),
        ({"alpha": 1.0, "depth": 2}, "needs depth=1"),
        ({"alpha": "loo", "alphas": [0.0]}, "alphas"),
    ],
)
def test_bad_alpha_raises_at_fit(params, match):
    X = np.random.default_rng(24).standard_normal((6, 3))
    with pytest.raises(ValueError, match=match):
        FineTunedRegressor(np.ones(3), **params).fit(X, np.arange(6.0))


# ------------------------------------------------ scikit-learn conventions: constraints, weights
def test_parameter_constraints_cover_every_parameter_and_raise_sklearns_error():
    from sklearn.utils._param_validation import InvalidParameterError

    assert set(FineTunedRegressor._parameter_constraints) == set(
        FineTunedRegressor().get_params()
    )
    x, y, _ = _problem()
    with pytest.raises(InvalidParameterError, match="'solver' parameter of FineTunedRegressor"):
        FineTunedRegressor(solver="newton").fit(x, y)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"fit_intercept": False},
        {"alpha": 3.0},
        {"alpha": "loo", "alphas": np.logspace(-2, 2, 5)},
        {"depth": 3, "fit_intercept": False},
    ],
    ids=["finetune", "no-intercept", "ridge", "loo", "depth-3"],
)
def test_integer_weights_equal_repeated_rows(params):
    """A row of weight k is that row given k times (the closed forms; for the leave-one-out
    choice, with the candidate alphas fixed, the fitted model at the chosen alpha)."""
    rng = np.random.default_rng(30)
    x = rng.standard_normal((9, 12))
    ts = rng.standard_normal(12)
    y = x @ (ts + 0.4 * rng.standard_normal(12)) + 0.2 * rng.standard_normal(9) + 1.0
    w = np.array([1, 2, 3, 1, 1, 2, 1, 4, 1])
    rep = np.repeat(np.arange(9), w)
    weighted = FineTunedRegressor(ts, **params).fit(x, y, sample_weight=w)
    repeated = FineTunedRegressor(ts, **params)
    if params.get("alpha") == "loo":  # leaving out a row differs from leaving out one copy
        repeated.set_params(alpha=weighted.alpha_)
    repeated.fit(x[rep], y[rep])
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(weighted.intercept_, repeated.intercept_, rtol=1e-8, atol=1e-10)
    # and unit weights change nothing
    plain = FineTunedRegressor(ts, **params).fit(x, y)
    ones = FineTunedRegressor(ts, **params).fit(x, y, sample_weight=np.ones(9))
    np.testing.assert_allclose(plain.coef_, ones.coef_, rtol=1e-10, atol=1e-12)


def test_weighted_ridge_equals_sklearn_ridge_with_sample_weight():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(31)
    X = rng.standard_normal((20, 6))
    y = X @ rng.standard_normal(6) + 0.5 + 0.3 * rng.standard_normal(20)
    w = rng.uniform(0.1, 3.0, 20)
    ts = rng.standard_normal(6)
    model = FineTunedRegressor(ts, alpha=1.7).fit(X, y, sample_weight=w)
    ref = Ridge(alpha=1.7).fit(X, y - X @ ts, sample_weight=w)
    np.testing.assert_allclose(model.coef_, ts + ref.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=1e-9)


def test_weighted_loo_is_the_brute_force_weighted_leave_one_out():
    rng = np.random.default_rng(32)
    X = rng.standard_normal((12, 5))
    y = X @ rng.standard_normal(5) + rng.standard_normal(12)
    w = rng.uniform(0.2, 2.0, 12)
    ts = 0.3 * rng.standard_normal(5)
    alphas = np.logspace(-2, 3, 7)
    model = FineTunedRegressor(ts, alpha="loo", alphas=alphas).fit(X, y, sample_weight=w)
    brute = []
    for a in alphas:
        errs = []
        for i in range(12):
            keep = np.arange(12) != i
            m = FineTunedRegressor(ts, alpha=a).fit(X[keep], y[keep], sample_weight=w[keep])
            errs.append(w[i] * (m.predict(X[i : i + 1])[0] - y[i]) ** 2)
        brute.append(np.sum(errs) / w.sum())
    np.testing.assert_allclose(model.loo_mse_, brute, rtol=1e-8)


def test_zero_weight_rows_are_left_out():
    x, y, ts = _problem(n=10, d=6, seed=33)
    w = np.ones(10)
    w[[2, 7]] = 0.0
    keep = w > 0
    for params in ({}, {"alpha": 2.0}):
        a = FineTunedRegressor(ts, **params).fit(x, y, sample_weight=w)
        b = FineTunedRegressor(ts, **params).fit(x[keep], y[keep])
        np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (-np.ones(8), "Negative values in data passed to `sample_weight`"),
        (np.zeros(8), "at least one non-zero"),
        (np.ones(5), "sample_weight"),
    ],
    ids=["negative", "all-zero", "wrong-length"],
)
def test_bad_sample_weight_raises(weights, match):
    x, y, ts = _problem()
    with pytest.raises(ValueError, match=match):
        FineTunedRegressor(ts).fit(x, y, sample_weight=weights)


def test_several_targets_are_refused_with_a_readable_error():
    x, y, ts = _problem()
    with pytest.raises(ValueError, match=r"fits one target, but y has shape \(8, 2\)"):
        FineTunedRegressor(ts).fit(x, np.column_stack([y, y]))
    # a single column is one target
    model = FineTunedRegressor(ts).fit(x, y)
    with pytest.warns(Warning, match="column-vector y"):
        column = FineTunedRegressor(ts).fit(x, y[:, None])
    np.testing.assert_allclose(column.coef_, model.coef_)
