"""Speed of the linear engine, as ratios measured in one run.

1. A whole learning curve: ``expected_risk`` at 100 sample sizes (d = 2000, power-law spectrum)
   against ``simulate_risk`` with 100 repeats at the same sizes. Simulating all 100 points
   takes hours, so every tenth point is simulated and the total is scaled up by the number of
   points (stated in the output). Target: at least 1000x.
2. ``simulate_risk`` (all repeats in one batch) against a plain per-repeat loop written the way a
   researcher writes it first (``multivariate_normal`` from the covariance matrix, then
   ``np.linalg.pinv`` and the risk), at d = 100, n = 10, 2000 repeats. Target: at least 5x.
   Also against a tuned loop that shares the package's cheap draws: there, drawing the 2
   million Gaussian numbers is a floor common to both, so the ratio is printed with and
   without it.

Run: ``.venv/bin/python benchmarks/bench_linear.py`` (pass ``--quick`` for a smaller check).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from finetune_theory import covariance, linear


def _timed(fn, repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def learning_curve(d: int, points: int, stride: int, repeats: int) -> None:
    cov = covariance.power_law(d, 1.0)
    rng = np.random.default_rng(0)
    ts, tt = rng.standard_normal((2, d)) / np.sqrt(d)
    ns = np.unique(np.linspace(2, d - 10, points).astype(int))
    t_pred = _timed(lambda: linear.expected_risk(cov, ts, tt, ns))
    sub = ns[::stride]
    t0 = time.perf_counter()
    linear.simulate_risk(cov, ts, tt, sub, repeats=repeats, seed=1)
    t_sim = (time.perf_counter() - t0) * len(ns) / len(sub)
    print(f"[1] learning curve, d={d}, {len(ns)} sizes of n, {repeats} repeats per size")
    print(f"    expected_risk: {t_pred * 1e3:.1f} ms for the whole curve")
    print(f"    simulate_risk: {t_sim:.1f} s (measured on {len(sub)} of {len(ns)} sizes, scaled)")
    print(f"    ratio simulate / predict = {t_sim / t_pred:,.0f}x (target >= 1000x)")


def batched_vs_loop(d: int, n: int, repeats: int) -> None:
    cov = covariance.power_law(d, 1.0)
    sigma = cov.matrix
    rng = np.random.default_rng(0)
    ts, tt = rng.standard_normal((2, d)) / np.sqrt(d)

    def batched() -> None:
        linear.simulate_risk(cov, ts, tt, n, repeats=repeats, seed=2)

    def first_loop() -> None:
        # what a researcher writes first: one design at a time from the covariance matrix
        g = np.random.default_rng(2)
        risks = []
        for _ in range(repeats):
            x = g.multivariate_normal(np.zeros(d), sigma, size=n)
            theta = ts + np.linalg.pinv(x) @ (x @ tt - x @ ts)
            risks.append((theta - tt) @ sigma @ (theta - tt))
        np.mean(risks)

    def tuned_loop() -> None:
        # the same loop with the package's cheap sampling (scaled standard normals)
        g = np.random.default_rng(2)
        sqrt_lam = np.sqrt(cov.eigvals)
        risks = []
        for _ in range(repeats):
            x = g.standard_normal((n, d)) * sqrt_lam
            theta = ts + np.linalg.pinv(x) @ (x @ tt - x @ ts)
            diff = theta - tt
            risks.append(diff @ (cov.eigvals * diff))
        np.mean(risks)

    def draws_only() -> None:
        np.random.default_rng(2).standard_normal((repeats, n, d))

    t_b = _timed(batched)
    t_f = _timed(first_loop)
    t_t = _timed(tuned_loop)
    t_z = _timed(draws_only)
    print(f"[2] simulate_risk d={d}, n={n}, {repeats} repeats")
    print(
        f"    batched {t_b * 1e3:.1f} ms (of which drawing the Gaussian designs alone "
        f"{t_z * 1e3:.1f} ms)"
    )
    print(
        f"    first per-repeat loop (multivariate_normal, pinv) {t_f * 1e3:.1f} ms: "
        f"ratio {t_f / t_b:.1f}x (target >= 5x)"
    )
    print(
        f"    tuned per-repeat loop (same cheap draws, pinv) {t_t * 1e3:.1f} ms: "
        f"ratio {t_t / t_b:.1f}x; excluding the draws both share: "
        f"{(t_t - t_z) / max(t_b - t_z, 1e-9):.1f}x"
    )


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    if quick:
        learning_curve(d=300, points=100, stride=20, repeats=20)
        batched_vs_loop(d=100, n=10, repeats=200)
    else:
        learning_curve(d=2000, points=100, stride=10, repeats=100)
        batched_vs_loop(d=100, n=10, repeats=2000)
