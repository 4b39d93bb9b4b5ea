"""The advisor: its statistical core against oracles, planted truths, inputs, the CLI logic."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal
from sklearn.linear_model import LinearRegression

from finetune_theory import advise, covariance, linear, teachers
from finetune_theory.advisor._advise import _Model, _risk_curve
from finetune_theory.advisor._fit import (
    _posterior_energy,
    _posterior_moments,
    fit_profiles,
    helmert,
)
from finetune_theory.advisor._logme import log_evidence, logme
from finetune_theory.cli import main

# --------------------------------------------------------------------------- the core


def test_helmert_is_an_orthonormal_basis_of_zero_mean_vectors():
    a = np.random.default_rng(0).standard_normal((7, 3))
    h = helmert(a)
    assert h.shape == (6, 3)
    ac = a - a.mean(axis=0)
    np.testing.assert_allclose(h.T @ h, ac.T @ ac, atol=1e-12)  # same Gram matrix
    np.testing.assert_allclose(helmert(np.ones((5, 2))), 0.0, atol=1e-12)
    q = helmert(np.eye(5))  # the basis itself: orthonormal rows orthogonal to ones
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(q @ np.ones(5), 0.0, atol=1e-12)


def test_posterior_energy_matches_dense_gaussian_conditioning():
    rng = np.random.default_rng(1)
    m, d, s, t, noise = 6, 9, 0.3, -0.5, 0.05
    p = rng.standard_normal((m, d))
    r = rng.standard_normal((2, m))
    prior = s * np.arange(1, d + 1.0) ** t
    k = p @ np.diag(prior) @ p.T + noise * np.eye(m)
    gain = np.diag(prior) @ p.T @ np.linalg.inv(k)  # c | r for r = -P c + noise
    post_cov = np.diag(prior) - gain @ p @ np.diag(prior)
    want = (gain @ r.T).T ** 2 + np.diag(post_cov)
    got = _posterior_energy(p, r, np.full(2, s), t, np.full(2, noise))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    # the signed posterior mean (used to anchor the sources on the reference)
    mean, second = _posterior_moments(p, r, np.full(2, s), t, np.full(2, noise))
    np.testing.assert_allclose(mean, -(gain @ r.T).T, rtol=1e-9, atol=1e-12)  # r = -P c + e
    np.testing.assert_allclose(second, want, rtol=1e-9, atol=1e-12)


def test_profile_fit_recovers_planted_tilt_energy_and_noise():
    rng = np.random.default_rng(2)
    m, d = 300, 60
    k = np.arange(1, d + 1.0)
    lam = 1.0 / k
    tilts = []
    for t_true in (-1.5, 0.5):
        c = rng.standard_normal((8, d)) * np.sqrt(0.02 * k**t_true)
        p = rng.standard_normal((m, d)) * np.sqrt(lam)
        r = -(c @ p.T) + 0.1 * rng.standard_normal((8, m))
        f = fit_profiles(p, r)
        tilts.append(np.median(f.tilt))
        assert abs(tilts[-1] - t_true) <= 0.5
        # the covariance-weighted energy (the source's own excess risk) and the noise
        ratio = (f.energy @ lam) / (c**2 @ lam)
        assert 0.8 <= np.median(ratio) <= 1.25
        assert 0.5 <= np.median(f.noise_var) / 0.01 <= 2.0
    assert tilts[0] < tilts[1]


def test_risk_curve_matches_the_exact_isotropic_formula():
    d, norm2, noise_var = 50, 0.7, 0.04
    energy = np.full((1, d), norm2 / d)
    model = _Model(np.ones(d), energy, np.array([noise_var]))
    ns = np.array([5, 20, 40, 80])
    excess, risk = _risk_curve(model, ns)

    def exact(n):  # E L(n) for isotropic Gaussian inputs (theory, section 1)
        if n < d:
            return (1 - n / d) * norm2 + noise_var * n / (d - n - 1)
        return noise_var * d / (n - d - 1)

    np.testing.assert_allclose(excess[0], [exact(n) for n in ns], rtol=1e-9)
    np.testing.assert_allclose(
        risk[0], [(exact(n - 1) + noise_var) * (1 + 1 / n) for n in ns], rtol=1e-9
    )


def test_logme_is_the_maximum_of_the_bayesian_evidence():
    rng = np.random.default_rng(3)
    f = rng.standard_normal((40, 3))
    y = f @ np.array([1.0, -0.5, 0.2]) + 0.3 * rng.standard_normal(40)
    score, alpha, beta = logme(f, y)
    direct = multivariate_normal(np.zeros(40), np.eye(40) / beta + f @ f.T / alpha).logpdf(y)
    assert score == pytest.approx(direct / 40, rel=1e-9)  # closed form = density
    for da, db in ((2, 1), (0.5, 1), (1, 2), (1, 0.5)):
        assert log_evidence(f, y, alpha * da, beta * db) < score  # a maximum


# ---------------------------------------------------------------------- planted truth
def _planted(seed, d=200, n=30, noise=0.1, unlabelled=2000):
    rng = np.random.default_rng(seed)
    cov = covariance.rotated(covariance.power_law(d, 1.0), seed=1000 + seed)
    pair = teachers.profiled_pair(cov, distance=1.0, tilt=0.0, seed=2000 + seed)
    x = cov.sample(n, seed=rng)
    y = x @ pair.theta_target + noise * rng.standard_normal(n)
    return cov, pair, x, y, cov.sample(unlabelled, seed=rng)


def test_predicted_risk_against_known_truth_on_planted_problems():
    # measured over 40 such problems: median |relative error| 0.31 at n and 0.29 at 2n;
    # the median over any 5 of them stayed below 0.66
    errs = []
    for seed in range(6):
        cov, pair, x, y, xu = _planted(seed)
        adv = advise(x, y, [pair.theta_source], X_unlabelled=xu, n_boot=0, holdout_splits=0)
        ns = [30, 60]
        truth = linear.expected_risk(cov, pair.theta_source, pair.theta_target, ns, noise=0.1)
        pred = [adv.sources[0].excess[adv.n_grid.index(m)] for m in ns]
        errs.append(np.abs(np.array(pred) / truth - 1))
    med = np.median(errs, axis=0)
    assert np.all(med < 0.7), med


def test_ranking_in_a_planted_case_follows_the_covariance_not_the_distance():
    # same Euclidean distance, different places: a difference in the top eigen-directions is
    # learned from the target data, one in the middle of the spectrum is not; plus a far source
    d, n = 120, 40
    cov = covariance.power_law(d, 1.0)
    rng = np.random.default_rng(4)
    theta = rng.standard_normal(d) / math.sqrt(d) * 3
    top = np.zeros(d)
    top[:5] = rng.standard_normal(5)
    mid = np.zeros(d)
    mid[50:70] = rng.standard_normal(20)
    top *= 1.0 / np.linalg.norm(top)
    mid *= 1.0 / np.linalg.norm(mid)
    sources = {"top": theta + top, "mid": theta + mid, "far": -theta, "near": theta + 0.1 * mid}
    truth = {k: linear.expected_risk(cov, v, theta, n, noise=0.05) for k, v in sources.items()}
    want = sorted(truth, key=truth.get)
    assert want == ["near", "top", "mid", "far"]
    x = cov.sample(n, seed=5)
    y = x @ theta + 0.05 * rng.standard_normal(n)
    adv = advise(x, y, sources, X_unlabelled=cov.sample(3000, seed=6), n_boot=0)
    assert adv.ranking == want
    assert adv.best.name == "near"
    # the bad source loses to training from scratch right away; the good one never does
    assert adv.source("far").crossover_n == 2
    assert adv.source("near").crossover_n is None


def test_bootstrap_intervals_seed_determinism_and_eps():
    cov, pair, x, y, xu = _planted(7, d=60, n=25, unlabelled=300)
    kw = {"X_unlabelled": xu, "n_boot": 8, "eps": 0.2, "seed": 3}
    a = advise(x, y, [pair.theta_source], **kw)
    b = advise(x, y, [pair.theta_source], **kw)
    assert a.to_json() == b.to_json()
    s = a.sources[0]
    lo, hi = np.array(s.risk_low), np.array(s.risk_high)
    mid = np.array(s.risk)
    assert np.all(lo <= mid + 1e-12) and np.all(mid <= hi + 1e-12)
    assert s.similarity_interval[0] <= s.similarity <= s.similarity_interval[1]
    assert 0.0 <= a.rank_stability <= 1.0
    # n_for_eps: the first grid-free n whose predicted test MSE is at most eps
    if s.n_for_eps is not None:
        _, r = _risk_curve(_model_of(a, s), [s.n_for_eps - 1, s.n_for_eps])
        assert r[0, 1] <= 0.2 < r[0, 0] or s.n_for_eps == 2


def _model_of(adv, entry):
    """A model reproducing ``entry``'s curve, to check n_for_eps independently."""
    ns = np.array(adv.n_grid)
    eigvals = np.array(adv.eigvals)
    eq = covariance.Covariance(eigvals)
    from finetune_theory.asymptotics import deterministic_equivalent

    w = deterministic_equivalent(eq, ns)
    # solve for a flat energy that reproduces nothing in particular: instead re-run advise's
    # own model through the public numbers: the excess curve minus the noise part is the bias
    bias = np.array(entry.excess) - np.where(
        entry.noise_var > 0, entry.noise_var * w.noise_factor, 0.0
    )
    energy, *_ = np.linalg.lstsq(w.bias_weights, bias, rcond=None)
    return _Model(eigvals, energy[None, :], np.array([entry.noise_var]))


def test_outputs_json_plot_and_table(tmp_path):
    cov, pair, x, y, xu = _planted(8, d=40, n=20, unlabelled=200)
    adv = advise(x, y, {"a": pair.theta_source}, X_unlabelled=xu, n_boot=4, eps=0.5)
    data = json.loads(adv.to_json(tmp_path / "a.json"))
    json.dumps(data, allow_nan=False)  # strict JSON: no NaN or inf
    assert data["ranking"] == ["a"]
    assert {20, 40, 100} <= set(data["n_grid"])
    assert (tmp_path / "a.json").exists()
    png = adv.plot(tmp_path / "a.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = adv.summary()
    assert "scratch" in text and "risk @ n=40" in text
    assert any("Gaussian" in line for line in adv.assumptions)


def test_source_formats_agree(tmp_path):
    rng = np.random.default_rng(9)
    cols = [f"f{i}" for i in range(6)]
    x = pd.DataFrame(rng.standard_normal((30, 6)), columns=cols)
    theta = rng.standard_normal(6)
    y = x.to_numpy() @ theta + 0.3 + 0.1 * rng.standard_normal(30)
    fitted = LinearRegression().fit(x.to_numpy()[:20], y[:20])
    coef, icpt = fitted.coef_, float(fitted.intercept_)
    (tmp_path / "list.json").write_text(json.dumps(list(coef)))
    (tmp_path / "obj.json").write_text(
        json.dumps({"coef": dict(zip(cols, coef, strict=True)), "intercept": icpt})
    )
    (tmp_path / "row.csv").write_text(",".join(cols) + "\n" + ",".join(map(str, coef)) + "\n")
    pd.DataFrame({"feature": cols + ["intercept"], "coef": list(coef) + [icpt]}).to_csv(
        tmp_path / "two.csv", index=False
    )
    forms = {
        "vector": coef,
        "model": fitted,
        "mapping": dict(zip(cols, coef, strict=True)),
        "list_json": tmp_path / "list.json",
        "obj_json": str(tmp_path / "obj.json"),
        "row_csv": tmp_path / "row.csv",
        "two_csv": tmp_path / "two.csv",
    }
    adv = advise(x, y, forms, n_boot=0, holdout_splits=0)
    risks = [s.risk for s in adv.sources]
    for r in risks[1:]:
        np.testing.assert_allclose(r, risks[0], rtol=1e-10)
    with_icpt = [s.source_mse for s in adv.sources if s.name in ("model", "obj_json", "two_csv")]
    assert max(with_icpt) == pytest.approx(min(with_icpt), rel=1e-10)


# -------------------------------------------------------------------------- bad inputs
@pytest.fixture
def small():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((12, 4))
    return x, x @ np.ones(4) + 0.1 * rng.standard_normal(12)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda x, y: (x, y, {"sources": np.ones(3)}), "source 'source_1' has 3 coefficients"),
        (lambda x, y: (x[:1], y[:1], {}), "at least 2 labelled samples"),
        (lambda x, y: (x, y[:-1], {}), "y has 11 labels but X has 12 rows"),
        (lambda x, y: (np.where(np.arange(4) == 2, np.nan, x), y, {}), "X column 2 has 12 missing"),
        (lambda x, y: (np.column_stack([x, np.ones(12)]), y, {}), "X column 4 is constant"),
        (lambda x, y: (x, y, {"X_unlabelled": np.ones((5, 3))}), "X_unlabelled has 3 columns"),
        (lambda x, y: (x, y, {"eps": -1.0}), "eps"),
        (lambda x, y: (x, y, {"sources": [np.ones(4)] * 2, "names": ["a", "a"]}), "two sources"),
        (lambda x, y: (x, y, {"sources": "missing.json"}), "does not exist"),
        (lambda x, y: (x, y, {"n_boot": -1}), "n_boot"),
    ],
)
def test_bad_inputs_name_the_problem(small, mutate, match):
    x, y, extra = mutate(*small)
    sources = extra.pop("sources", None)
    extra.setdefault("n_boot", 0)
    with pytest.raises(ValueError, match=match):
        advise(x, y, sources, **extra)


def test_dataframe_errors_name_the_column(small):
    x, y = small
    df = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    bad = df.assign(c=["u"] * 12)
    with pytest.raises(ValueError, match="column 'c' is not numeric"):
        advise(bad, y, n_boot=0)
    with pytest.raises(ValueError, match="column 'b' has 1 missing"):
        advise(df.assign(b=[np.nan] + [0.0] * 11), y, n_boot=0)
    with pytest.raises(ValueError, match="column 'd' is constant"):
        advise(df.assign(d=1.0), y, n_boot=0)
    with pytest.raises(ValueError, match=r"missing \['d'\]"):
        advise(df, y, [{"a": 1.0, "b": 1.0, "c": 1.0}], n_boot=0)


# ------------------------------------------------------------------------------ CLI
def _write_cli_files(tmp_path):
    rng = np.random.default_rng(11)
    cols = ["u", "v", "w", "z"]
    x = rng.standard_normal((16, 4))
    theta = np.array([1.0, -1.0, 0.5, 0.0])
    data = pd.DataFrame(x, columns=cols).assign(price=x @ theta + 0.1 * rng.standard_normal(16))
    data.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "good.json").write_text(json.dumps({"coef": list(theta + 0.05), "intercept": 0}))
    (tmp_path / "bad.json").write_text(json.dumps(dict(zip(cols, -theta, strict=True))))
    return data


def test_cli_writes_table_json_and_plot(tmp_path, capsys):
    _write_cli_files(tmp_path)
    code = main(
        [
            "advise", "--data", str(tmp_path / "data.csv"), "--target", "price",
            "--source", str(tmp_path / "good.json"), "--source", str(tmp_path / "bad.json"),
            "--eps", "0.5", "--boot", "3",
            "--json", str(tmp_path / "out.json"), "--plot", str(tmp_path / "out.png"),
        ]
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "good" in out.out and "Best source" in out.out
    assert json.loads((tmp_path / "out.json").read_text())["ranking"] == ["good", "bad"]
    assert (tmp_path / "out.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "code", "match"),
    [
        (["--target", "nope"], 1, "--target column 'nope' is not in"),
        (["--target", "price", "--source", "{tmp}/short.json"], 1, "has 2 coefficients"),
        (["--target", "price", "--source", "{tmp}/broken.json"], 1, "not valid JSON"),
        (["--target", "price", "--features", "u,q"], 1, "--features columns not in --data: q"),
        (["--target", "price", "--eps", "abc"], 2, "expected a number"),
        (["--target", "price", "--data", "{tmp}/text.csv"], 1, "column 'label' is not numeric"),
        (["--target", "label", "--data", "{tmp}/text.csv"], 1, "'label' is not numeric"),
        (["--target", "price", "--data", "{tmp}/gap.csv"], 1, "column 'v' has 1 missing"),
        (["--target", "price", "--data", "{tmp}/const.csv"], 1, "column 'w' is constant"),
        (["--target", "price", "--data", "{tmp}/nope.csv"], 1, "does not exist"),
        (["--target", "price", "--data", "{tmp}/one.csv"], 1, "at least 2 labelled samples"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(tmp_path, capsys, args, code, match):
    data = _write_cli_files(tmp_path)
    data.assign(label=["x"] * len(data)).to_csv(tmp_path / "text.csv", index=False)
    data.assign(v=[np.nan] + list(data["v"][1:])).to_csv(tmp_path / "gap.csv", index=False)
    data.assign(w=2.0).to_csv(tmp_path / "const.csv", index=False)
    data[:1].to_csv(tmp_path / "one.csv", index=False)
    (tmp_path / "short.json").write_text("[1, 2]")
    (tmp_path / "broken.json").write_text("{oops")
    argv = ["advise", "--data", str(tmp_path / "data.csv")] + [a.format(tmp=tmp_path) for a in args]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert match in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
