"""Accuracy of ``deep_linear.expected_risk`` against Monte Carlo (a benchmark, not a test).

Prints the table of docs/deep_linear.md ("Accuracy (measured)"): relative error of the
prediction, without (``correct=False``, the plug-in) and with the second-order correction,
against ``deep_linear.simulate_risk`` (4000 designs, seed 11), ``d = 200``, ``theta_T = 0.5
theta_S + 0.1 xi`` (``teachers.scaled_pair(d, alpha=0.5, eps=0.1, seed=3)``).

Run: ``python benchmarks/deep_linear_accuracy.py`` (about 1.5 min on 2 cores).
"""

from __future__ import annotations

import time

import numpy as np

from finetune_theory import covariance, deep_linear, teachers

_NOISELESS = [(10, 10), (20, 10), (50, 10), (20, 3), (10, None), (20, None), (50, None)]
_NOISY = [(10, 5), (20, 10), (10, None), (20, None), (50, None)]
CELLS = [
    (name, noise, n, depth)
    for name, noise, rows in [
        ("isotropic", 0.0, _NOISELESS),
        ("`i^-1`", 0.0, _NOISELESS),
        ("`i^-2`", 0.0, _NOISELESS),
        ("isotropic", 0.3, _NOISY),
        ("`i^-1`", 0.3, _NOISY),
    ]
    for n, depth in rows
]


def main() -> None:
    d = 200
    pair = teachers.scaled_pair(d, alpha=0.5, eps=0.1, seed=3)
    ts, tt = pair.theta_source, pair.theta_target
    start = time.perf_counter()
    print("| covariance | noise | n | depth | plug-in | corrected | s.e. |")
    print("|---|---|---|---|---|---|---|")
    for name, noise, n, depth in CELLS:
        cov = (
            covariance.isotropic(d)
            if name == "isotropic"
            else covariance.power_law(d, 1.0 if "-1" in name else 2.0)
        )
        dep = np.inf if depth is None else depth
        sim = deep_linear.simulate_risk(cov, ts, tt, n, dep, noise=noise, repeats=4000, seed=11)
        mean, se = float(np.ravel(sim.mean)[0]), float(np.ravel(sim.stderr)[0])
        plug = float(deep_linear.expected_risk(cov, ts, tt, n, dep, noise=noise, correct=False))
        pred = float(deep_linear.expected_risk(cov, ts, tt, n, dep, noise=noise))
        print(
            f"| {name} | {noise:g} | {n} | {'inf' if depth is None else depth} | "
            f"{100 * (plug / mean - 1):+.1f}% | {100 * (pred / mean - 1):+.1f}% | "
            f"{100 * se / mean:.1f}% |",
            flush=True,
        )
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
