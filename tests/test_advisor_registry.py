"""The advisor's strategies as a registry, its recommendation rule, and its calibration on
planted problems (plain theory, and the misspecification allowance)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from finetune_theory.advisor import (
    TIE_SE,
    Strategy,
    advise,
    get,
    register,
    registered,
    unregister,
)
from finetune_theory.advisor._constants import USER_ALPHAS
from finetune_theory.advisor._spectrum import ledoit_wolf_spectrum


class HalfRidge(Strategy):
    """A toy strategy: the mean of keeping the source and ridge towards it (what a user who
    averages two predictions would get, roughly); only the registry is under test."""

    name = "half_ridge"
    abbrev = "half"
    simplicity = 2.5
    fits = "a toy average"

    def median(self, engine, source, ns):
        keep = get("refit_intercept").median(engine, source, ns)
        return 0.5 * (keep + get("finetune_ridge").median(engine, source, ns))


@pytest.fixture
def toy():
    register(HalfRidge())
    yield
    unregister("half_ridge")


def _problem(seed=0, n=25, d=6):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    theta = rng.standard_normal(d)
    y = x @ theta + 0.5 * rng.standard_normal(n)
    return x, y, {"near": theta + 0.2 * rng.standard_normal(d)}


def test_a_strategy_added_in_one_place_joins_the_table(toy):
    x, y, src = _problem()
    adv = advise(x, y, src)
    assert ("near", "half_ridge") in adv.pairs()
    text = adv.summary()
    row = [ln for ln in text.splitlines() if "half_ridge" in ln]
    assert len(row) == 1 and "near" in row[0]
    assert "half = half_ridge (a toy average)" in " ".join(adv.summary(80).split())
    frame = adv.to_frame()
    got = frame[(frame.strategy == "half_ridge") & (frame.n == 25)].risk.iloc[0]
    want = 0.5 * (
        adv.predict_risk("near", "refit_intercept", 25)
        + adv.predict_risk("near", "finetune_ridge", 25)
    )
    assert got == pytest.approx(want, rel=1e-12)
    assert "near/half_ridge" in {
        r["source"] + "/" + r["strategy"] for r in adv.to_dict()["rows"] if r["source"]
    }


def test_a_strategy_given_for_one_call_joins_that_table_only():
    x, y, src = _problem()
    adv = advise(x, y, src, strategies=[HalfRidge()])
    assert ("near", "half_ridge") in adv.pairs() and "half_ridge" not in registered()
    order = list(adv.strategies)
    assert order.index("refit_intercept") < order.index("half_ridge") < order.index("finetune")
    want = 0.5 * (
        adv.predict_risk("near", "refit_intercept", 25)
        + adv.predict_risk("near", "finetune_ridge", 25)
    )
    assert adv.predict_risk("near", "half_ridge", 25) == pytest.approx(want, rel=1e-12)
    assert "half_ridge" not in advise(x, y, src).strategies


def test_a_call_strategy_passes_the_registry_checks():
    x, y, src = _problem()

    class Clash(HalfRidge):
        name = "as_is"

    class Wide(HalfRidge):
        abbrev = "toolong"

    with pytest.raises(ValueError, match="registered or given twice"):
        advise(x, y, src, strategies=[Clash()])
    with pytest.raises(ValueError, match="registered or given twice"):
        advise(x, y, src, strategies=[HalfRidge(), HalfRidge()])
    with pytest.raises(ValueError, match="abbrev"):
        advise(x, y, src, strategies=[Wide()])
    with pytest.raises(TypeError, match="Strategy"):
        advise(x, y, src, strategies=["half_ridge"])  # type: ignore[list-item]


def test_registry_refuses_what_it_cannot_show():
    class Bad(Strategy):
        name, abbrev = "as_is", "x"

    with pytest.raises(ValueError, match="registered"):
        register(Bad())
    Bad.name, Bad.abbrev = "fine", "toolong"
    with pytest.raises(ValueError, match="abbrev"):
        register(Bad())
    with pytest.raises(TypeError):
        register("as_is")  # type: ignore[arg-type]
    assert registered()[0] == "as_is" and "half_ridge" not in registered()


SENTENCE = re.compile(
    r"Recommended: (?P<strategy>\w+)(?: from (?P<source>\S+))? \(predicted test MSE "
    r"(?P<risk>[0-9.e+-]+), interval"
)


@pytest.mark.parametrize("seed", range(6))
def test_the_printed_recommendation_is_the_lowest_unless_the_tie_rule_says_so(seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(4, 30))
    n = int(rng.integers(5, 60))
    x = rng.standard_normal((n, d)) * rng.uniform(0.5, 2, d)
    theta = rng.standard_normal(d) * rng.uniform(0.05, 1)
    y = x @ theta + rng.uniform(0.1, 2) * rng.standard_normal(n)
    srcs = {f"s{k}": theta + rng.uniform(0, 1) * rng.standard_normal(d) for k in range(2)}
    adv = advise(x, y, srcs)
    text = adv.summary()
    m = SENTENCE.search(text)
    table = [ln.split("│") for ln in text.splitlines() if ln.startswith("│")]
    risks = {(c[2].strip(), c[3].strip()): float(c[4].split("[")[0]) for c in table}
    chosen = risks[(m["source"] or "-", m["strategy"])]
    lowest = min(risks.values())
    best = min(risks, key=risks.get)
    if chosen > lowest:
        # the tie rule: a simpler strategy within TIE_SE standard errors of the difference,
        # which the sentence prints (log scale)
        assert "cannot be told apart" in text
        se = float(re.search(r", ([0-9.e+-]+) on the log scale\)", text)[1])
        assert se > 0
        assert chosen <= lowest * np.exp(TIE_SE * se) * 1.01  # three printed digits
        assert get(m["strategy"]).simplicity < get(best[1]).simplicity
    else:
        assert "cannot be told apart" not in text


def test_thin_ledoit_wolf_is_scikit_learns():
    from sklearn.covariance import ledoit_wolf

    rng = np.random.default_rng(3)
    for rows, d in ((40, 12), (12, 40)):
        x = rng.standard_normal((rows, d)) * np.linspace(0.3, 3.0, d) + 1.0
        spec = ledoit_wolf_spectrum(x)
        dense = ledoit_wolf(x)[0]
        assert np.allclose(spec.eigvals, np.linalg.eigvalsh(dense)[::-1], atol=1e-12)
        v = rng.standard_normal((3, d))
        assert np.allclose(spec.quad(v), np.einsum("id,de,ie->i", v, dense, v), rtol=1e-10)


# ------------------------------------------------------------------------- calibration
def _planted_truth(lam, tt, ts, noise, n, reps, rng):
    """Expected test MSE of each learned strategy by brute force (scikit-learn, numpy)."""
    from sklearn.linear_model import RidgeCV

    alphas = float(np.mean(lam)) * USER_ALPHAS
    out = {"finetune_ridge": [], "scratch": [], "finetune": []}

    def mse(coef, b):
        e = coef - tt
        return float((e * e * lam).sum() + b**2 + noise**2)

    for _ in range(reps):
        x = rng.standard_normal((n, lam.size)) * np.sqrt(lam)
        y = x @ tt + noise * rng.standard_normal(n)
        z = y - x @ ts
        m = RidgeCV(alphas=alphas).fit(x, z)
        out["finetune_ridge"].append(mse(ts + m.coef_, m.intercept_))
        m0 = RidgeCV(alphas=alphas).fit(x, y)
        out["scratch"].append(mse(m0.coef_, m0.intercept_))
        xc = x - x.mean(axis=0)
        step = np.linalg.pinv(xc) @ (z - z.mean())
        out["finetune"].append(mse(ts + step, z.mean() - x.mean(axis=0) @ step))
    return {k: (np.mean(v), np.std(v, ddof=1) / np.sqrt(reps)) for k, v in out.items()}


@pytest.mark.slow
@pytest.mark.parametrize(("d", "n"), [(12, 8), (12, 30)])
def test_plain_theory_is_calibrated_on_planted_gaussian_problems(d, n):
    """Every learned strategy's median prediction over labelled draws (misspecification off)
    lies within the Monte Carlo error (and the prediction's own draw-to-draw spread) of the
    brute-force mean; the observed strategies are checked in test_advisor.py."""
    rng = np.random.default_rng(d + n)
    lam = np.linspace(2.0, 0.4, d)
    tt = rng.standard_normal(d) * 0.5
    ts = tt + rng.standard_normal(d) * 0.3
    noise = 0.5
    truth = _planted_truth(lam, tt, ts, noise, n, 200, rng)
    preds: dict[str, list[float]] = {k: [] for k in truth}
    for _ in range(12):
        x = rng.standard_normal((n, d)) * np.sqrt(lam)
        y = x @ tt + noise * rng.standard_normal(n)
        xu = rng.standard_normal((2000, d)) * np.sqrt(lam)
        adv = advise(x, y, {"s": ts}, X_unlabelled=xu, misspecification=False)
        for k in preds:
            preds[k].append(adv.predict_risk("s", k, n))
    for k, (mean, se) in truth.items():
        logs = np.log(np.array(preds[k]) / mean)
        tol = 2.5 * np.hypot(se / mean, np.std(logs) / np.sqrt(len(logs))) + 0.05
        assert abs(np.median(logs)) <= max(tol, 0.2), (k, np.exp(np.median(logs)), tol)


@pytest.mark.slow
def test_the_rows_measurement_recovers_a_planted_non_linearity():
    """Labels with a non-linear part (tanh of a projection) and fewer rows than features: the
    Gaussian-linear theory over-predicts scratch's test MSE; the rows' own measurement (the
    leave-one-out error of the user's ridge, corrected for the choice's optimism) finds it, and
    the allowance moves the prediction towards it."""
    from sklearn.linear_model import RidgeCV

    d, n = 40, 30
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(d) / np.sqrt(d)
    w = rng.standard_normal(d) / np.sqrt(d)

    def draw(m):
        x = rng.standard_normal((m, d))
        return x, x @ theta + np.tanh(2 * x @ w) + 0.2 * rng.standard_normal(m)

    xt, yt = draw(4000)
    meas = []
    for _ in range(60):
        x, y = draw(n)
        fit = RidgeCV(alphas=USER_ALPHAS).fit(x, y)
        meas.append(np.mean((yt - fit.predict(xt)) ** 2))
    truth = float(np.mean(meas))
    plain, shown, allowed, f = [], [], [], []
    for _ in range(8):
        x, y = draw(n)
        xu = draw(400)[0]
        adv = advise(x, y, X_unlabelled=xu)
        ref = advise(x, y, X_unlabelled=xu, misspecification=False)
        plain.append(ref.predict_risk(None, "scratch", n) / truth)
        shown.append(adv.engine.measured(None) / truth)
        allowed.append(adv.predict_risk(None, "scratch", n) / truth)
        f.append(adv.allowance["scratch"])
    assert np.median(plain) > 1.4  # the theory is off here (measured: 1.75)
    assert 0.8 <= np.median(shown) <= 1.25, np.median(shown)
    assert np.median(f) < 0.9  # the allowance says: less excess than the theory
    assert abs(np.log(np.median(allowed))) < 0.6 * abs(np.log(np.median(plain)))
