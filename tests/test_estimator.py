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


@parametrize_with_checks(
    [
        FineTunedRegressor(),
        FineTunedRegressor(solver="gd"),
        FineTunedRegressor(fit_intercept=False, depth=2),
        FineTunedRegressor(alpha="loo"),
    ]
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
        ({"alpha": -1.0}, "alpha must be >= 0"),
        ({"alpha": "gcv"}, "alpha must be"),
        ({"alpha": 1.0, "depth": 2}, "needs depth=1"),
        ({"alpha": "loo", "alphas": [0.0]}, "alphas"),
    ],
)
def test_bad_alpha_raises_at_fit(params, match):
    X = np.random.default_rng(24).standard_normal((6, 3))
    with pytest.raises(ValueError, match=match):
        FineTunedRegressor(np.ones(3), **params).fit(X, np.arange(6.0))
