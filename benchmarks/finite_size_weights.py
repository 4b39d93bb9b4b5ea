"""Accuracy of the finite-size bias weights against Monte Carlo (a benchmark, not a test).

For Gaussian designs ``X = Z Lambda^{1/2}`` (``n x d``, in the eigenbasis) the exact
``(P_perp Sigma P_perp)_ii`` of each draw is ``lambda_i (1 - 2 h_i) + (Q Q^T Lambda Q Q^T)_ii``
with ``Q`` an orthonormal basis of the row space (``h_i = ||Q_i||^2``), computed by QR for a
batch of draws at once. Its mean over the draws is compared with
``asymptotics.deterministic_equivalent(...).bias_weights``, summed over blocks of
eigen-directions (the risk of a difference spread evenly over the block). Prints the table of
docs/linear.md, section 3.2: relative error of the prediction in %, Monte Carlo standard error
in brackets.

With ``--near-rank`` it prints the table of docs/linear.md, section 3.3 instead: ``n = d - k``
for ``k`` from 1 to 16 at ``d = 200`` (blocks: the top 3 directions, 4-10, the rest, all),
beside the first order.

Run: ``python benchmarks/finite_size_weights.py [--quick] [--near-rank]`` (about 10 minutes on
2 cores each; ``--quick``: 300 draws, n = 10 and 20 (k = 1 and 4 near the rank), a few
seconds).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from finetune_theory import asymptotics

BLOCKS = [(0, 5), (5, 10), (10, 20), (20, 40), (40, 100), (100, 400), (0, 400)]


def spectra(d: int) -> dict[str, np.ndarray]:
    i = np.arange(1, d + 1, dtype=np.float64)
    return {
        "`i^-1`": i**-1.0,
        "`i^-1.5`": i**-1.5,
        "`i^-2`": i**-2.0,
        "`i^-3`": i**-3.0,
        "`0.97^i`": 0.97**i,
        "one spike 20 on 1": np.r_[20.0, np.ones(d - 1)],
        "three spikes 100 on 1": np.r_[[100.0] * 3, np.ones(d - 3)],
    }


def monte_carlo_weights(
    lam: np.ndarray, n: int, draws: int, seed: int, batch: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of ``(P_perp Sigma P_perp)_ii`` over Gaussian designs."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    root = np.sqrt(lam)
    total = np.zeros(lam.size)
    square = np.zeros(lam.size)
    done = 0
    while done < draws:
        b = min(batch, draws - done)
        x = rng.standard_normal((b, n, lam.size)) * root
        q, _ = np.linalg.qr(np.swapaxes(x, 1, 2))  # (b, d, n), orthonormal columns
        m = np.einsum("bdn,d,bdm->bnm", q, lam, q)
        w = lam * (1.0 - 2.0 * (q * q).sum(axis=-1)) + np.einsum("bdn,bnm,bdm->bd", q, m, q)
        total += w.sum(axis=0)
        square += (w * w).sum(axis=0)
        done += b
    mean = total / draws
    return mean, np.sqrt(np.maximum(square / draws - mean**2, 0.0) / draws)


def near_rank(d: int, quick: bool) -> None:
    """The near-rank table: ``n = d - k``, the package and the first order against Monte Carlo."""
    blocks = [(0, 3), (3, 10), (10, d), (0, d)]
    ks = [1, 4] if quick else [1, 2, 3, 4, 6, 8, 12, 16]
    draws = 300 if quick else 1000
    print("| spectrum, k = d - n | top 3 | dirs 4-10 | the rest | all | all, first order |")
    print("|---" * 6 + "|")
    start = time.perf_counter()
    for name, lam in spectra(d).items():
        if name == "`i^-1.5`":
            continue
        for k in ks:
            n = d - k
            mean, se = monte_carlo_weights(lam, n, draws, seed=500 + k)
            eq = asymptotics.deterministic_equivalent(np.diag(lam), n)
            pred = eq.bias_weights[0]
            first = eq.kappa[0] ** 2 * lam / (lam + eq.kappa[0]) ** 2 / (1.0 - eq.rho[0])
            cells = []
            for lo, hi in blocks:
                ref = mean[lo:hi].sum()
                err = 100.0 * (pred[lo:hi].sum() / ref - 1.0)
                cells.append(f"{err:+.1f} ({100.0 * np.sqrt((se[lo:hi] ** 2).sum()) / ref:.1f})")
            cells.append(f"{100.0 * (first.sum() / mean.sum() - 1.0):+.1f}")
            print(f"| {name}, {k} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{draws} designs per row; {time.perf_counter() - start:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--near-rank", action="store_true")
    parser.add_argument("--d", type=int, default=None)
    args = parser.parse_args()
    if args.near_rank:
        near_rank(args.d or 200, args.quick)
        return
    args.d = args.d or 400
    ns = [10, 20] if args.quick else [10, 20, 50, 100]
    head = " | ".join(f"dirs {lo + 1}-{hi}" if lo else f"dirs 1-{hi}" for lo, hi in BLOCKS[:-1])
    print(f"| spectrum, n | designs | {head} | all |")
    print("|---" * (len(BLOCKS) + 2) + "|")
    start = time.perf_counter()
    for name, lam in spectra(args.d).items():
        for n in ns:
            steep = "-3" in name  # the noisiest blocks: more draws, their own seeds
            if args.quick:
                draws = 300
            elif steep:
                draws = {10: 12000, 20: 12000, 50: 6000}.get(n, 3000)
            else:
                draws = 1500 if n <= 50 else 600
            mean, se = monte_carlo_weights(lam, n, draws, seed=100 + n if steep else n)
            pred = asymptotics.deterministic_equivalent(np.diag(lam), n).bias_weights[0]
            cells = []
            for lo, hi in BLOCKS:
                ref = mean[lo:hi].sum()
                err = 100.0 * (pred[lo:hi].sum() / ref - 1.0)
                cells.append(f"{err:+.1f} ({100.0 * np.sqrt((se[lo:hi] ** 2).sum()) / ref:.1f})")
            print(f"| {name}, {n} | {draws} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
