"""Accuracy of ``deep_linear.expected_risk`` against Monte Carlo (a benchmark, not a test).

Prints the table of docs/deep_linear.md ("Accuracy (measured)"): relative error of the
prediction, without (``correct=False``, the plug-in) and with the second-order correction,
against ``deep_linear.simulate_risk`` (4000 designs, seed 11), ``d = 200``, ``theta_T = 0.5
theta_S + 0.1 xi`` (``teachers.scaled_pair(d, alpha=0.5, eps=0.1, seed=3)``).

Run: ``python benchmarks/deep_linear_accuracy.py`` (about 1.5 min on 2 cores).

``--references`` writes ``tests/data/deep_linear_mc.json`` instead: the noisy infinite-depth
cells where the noise cross term matters (``i^-1``, d = 200, noise 0.3, ``theta_T = alpha
theta_S + 0.1 xi``), 80 000 designs each (``simulate_risk``, seed 27100 plus the cell's
position), and the Monte Carlo mean of ``theta_T' (X'X)^+ Sigma P_perp theta_S`` that the
cross term's formula predicts (20 000 designs, seed 27200; about 1 CPU-minute in all).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

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


#: (alpha, n) of the stored cells: i^-1, d = 200, noise 0.3, infinite depth
REFERENCE_CELLS = [(2.0, 10), (0.5, 10), (2.0, 20)]
REFERENCES = Path(__file__).resolve().parent.parent / "tests" / "data" / "deep_linear_mc.json"


def cross_form(alpha: float, n: int, draws: int, seed: int) -> tuple[float, float]:
    """Mean and standard error of ``theta_T' (X'X)^+ Sigma P_perp theta_S`` over designs."""
    d = 200
    cov = covariance.power_law(d, 1.0)
    lam = cov.eigvals
    pair = teachers.scaled_pair(d, alpha=alpha, eps=0.1, seed=3)
    u, v = cov.coords(pair.theta_source), cov.coords(pair.theta_target)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    vals = []
    for start in range(0, draws, 1000):
        x = rng.standard_normal((min(1000, draws - start), n, d)) * np.sqrt(lam)
        xp = np.linalg.pinv(x)
        perp_u = u - np.einsum("bdn,bnk,k->bd", xp, x, u)
        # theta_T' X^+ X^{+T} (Sigma P_perp theta_S)
        vals.append(np.einsum("d,bdn,bn->b", v, xp, np.einsum("bdn,bd->bn", xp, lam * perp_u)))
    a = np.concatenate(vals)
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(a.size))


def references() -> None:
    d, noise, draws = 200, 0.3, 80_000
    cov = covariance.power_law(d, 1.0)
    start = time.process_time()
    rows = []
    for j, (alpha, n) in enumerate(REFERENCE_CELLS):
        pair = teachers.scaled_pair(d, alpha=alpha, eps=0.1, seed=3)
        seed = 27_100 + j
        sim = deep_linear.simulate_risk(
            cov,
            pair.theta_source,
            pair.theta_target,
            n,
            np.inf,
            noise=noise,
            repeats=draws,
            seed=seed,
        )
        row = {
            "spectrum": "i^-1",
            "d": d,
            "n": n,
            "alpha": alpha,
            "eps": 0.1,
            "teacher_seed": 3,
            "noise": noise,
            "depth": "inf",
            "draws": draws,
            "seed": seed,
            "risk": [float(np.ravel(sim.mean)[0]), float(np.ravel(sim.stderr)[0])],
        }
        if j == 0:
            row["cross_form"] = list(cross_form(alpha, n, 20_000, 27_200))
        rows.append(row)
        print(row, f"{time.process_time() - start:.0f} CPU-s", file=sys.stderr, flush=True)
    doc = {
        "command": "python benchmarks/deep_linear_accuracy.py --references",
        "description": "Monte Carlo references for the noisy infinite-depth deep linear risk.",
        "cpu_seconds": round(time.process_time() - start),
        "settings": rows,
    }
    REFERENCES.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if "--references" in sys.argv:
        references()
    else:
        main()
