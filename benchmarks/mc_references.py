"""Monte Carlo references for the accuracy tests of the deterministic equivalent.

Writes ``tests/data/finite_size_mc.json``: for each setting (a spectrum, ``d``, ``n`` and a
ridge) the Monte Carlo mean and standard error of

* ``noise``: the noise factor ``E tr(Sigma X^+ X^{+T})`` (interpolation) or ``E tr((K + mu)^-1
  M (K + mu)^-1)`` with ``K = X X^T``, ``M = X Sigma X^T``, ``mu = n ridge`` (ridge towards
  the source): the label-noise part of the risk per unit noise variance;
* ``inverse_trace``: ``E tr (K + mu)^-1``, the pseudo-inverse trace ``E ||X^+||_F^2`` for
  interpolation;
* ``bias``: the bias weights ``E (P Sigma P)_ii`` summed over blocks of eigen-directions (the
  risk of a difference spread evenly over the block), ``P = I - P_X`` (interpolation) or
  ``ridge (X^T X / n + ridge)^-1`` (ridge).

Designs are Gaussian, ``X = Z Lambda^{1/2}`` in the eigenbasis, drawn from
``numpy.random.SeedSequence(seed)`` with one seed per setting (listed in the file). The
spectra are stored beside the numbers, so the tests rebuild exactly what was simulated; the
"patches" spectrum is that of 12 x 12 patches of scikit-learn's sample images
(:func:`finetune_theory.data.images.image_patches`) interpolated in log-log to ``d``.

Run: ``python benchmarks/mc_references.py`` (about 8 CPU-minutes; ``--quick`` divides every
draw count by 20 and writes to stdout only; ``--missing`` simulates only the settings the file
lacks and keeps the others, which gives the same numbers as a full run: each setting has its
own seed, ``27000`` plus its position in ``SETTINGS``). ``--table`` prints the tables of
docs/linear.md (sections 3.1 and 3.2) from the stored file: the package's predictions
against it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "finite_size_mc.json"


def patches(d: int) -> np.ndarray:
    """The eigenvalues of natural-image patch covariances, interpolated in log-log to ``d``."""
    from finetune_theory.data.images import image_patches

    p = image_patches(size=12, stride=6)
    ev = np.sort(np.linalg.eigvalsh(np.cov(p, rowvar=False)))[::-1]
    ev = ev[ev > 1e-10 * ev[0]]
    x = np.log(np.arange(1, ev.size + 1))
    xi = np.log(np.linspace(1, ev.size, d))
    out = np.exp(np.interp(xi, x, np.log(ev)))
    return out / out.mean()


def spectrum(name: str, d: int) -> np.ndarray:
    i = np.arange(1, d + 1, dtype=np.float64)
    if name == "ten spikes 100 on 1":
        return np.r_[[100.0] * 10, np.ones(d - 10)]
    if name == "three spikes 100 on 1":
        return np.r_[[100.0] * 3, np.ones(d - 3)]
    if name == "patches":
        return patches(d)
    if name.startswith("i^-"):
        return i ** -float(name[3:])
    raise ValueError(name)


def simulate(lam: np.ndarray, n: int, ridge: float, draws: int, seed: int, batch: int = 500):
    """Per-draw noise factor and per-direction bias weights: (mean, se) of each."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    d = lam.size
    root = np.sqrt(lam)
    noise, trace, bias, bias2 = [], [], np.zeros(d), np.zeros(d)
    done = 0
    while done < draws:
        b = min(batch, draws - done)
        x = rng.standard_normal((b, n, d)) * root
        k = x @ np.swapaxes(x, 1, 2)
        if ridge > 0:
            k = k + n * ridge * np.eye(n)
        # noise: ||(K + mu)^-1 X Lambda^{1/2}||_F^2
        y = np.linalg.solve(k, x * root)
        noise.append((y * y).sum(axis=(1, 2)))
        trace.append(np.trace(np.linalg.inv(k), axis1=1, axis2=2))
        # bias: P = I - H, H = X^T (K + mu)^-1 X = U^T U with U = L^-1 X (K + mu = L L^T);
        # (P Lambda P)_ii = lambda_i (1 - 2 H_ii) + u_i^T (U Lambda U^T) u_i
        u = np.linalg.solve(np.linalg.cholesky(k), x)
        s = (u * lam) @ np.swapaxes(u, 1, 2)
        w = lam * (1.0 - 2.0 * (u * u).sum(axis=1)) + np.einsum("bni,bnm,bmi->bi", u, s, u)
        bias += w.sum(axis=0)
        bias2 += (w * w).sum(axis=0)
        done += b
    v, tr = np.concatenate(noise), np.concatenate(trace)
    mean = bias / draws
    se = np.sqrt(np.maximum(bias2 / draws - mean**2, 0.0) / draws)
    return (
        (float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))),
        (mean, se),
        (float(tr.mean()), float(tr.std(ddof=1) / np.sqrt(tr.size))),
    )


#: (spectrum, d, n, ridge, draws, blocks of directions for the bias)
SETTINGS = [
    # the settings of the issue: ten spikes on a unit bulk, small n
    ("ten spikes 100 on 1", 300, 5, 0.0, 20000, [(0, 10), (10, 300), (0, 300)]),
    ("ten spikes 100 on 1", 300, 10, 0.0, 20000, [(0, 10), (10, 300), (0, 300)]),
    ("ten spikes 100 on 1", 1000, 10, 0.0, 4000, [(0, 10), (10, 1000), (0, 1000)]),
    # real-data spectra (image patches) and steep power laws at small n
    ("patches", 300, 5, 0.0, 20000, [(0, 5), (5, 30), (30, 300), (0, 300)]),
    ("patches", 300, 10, 0.0, 20000, [(0, 5), (5, 30), (30, 300), (0, 300)]),
    ("patches", 1000, 5, 0.0, 4000, [(0, 5), (5, 30), (30, 1000), (0, 1000)]),
    ("i^-3", 300, 10, 0.0, 20000, [(0, 5), (5, 20), (20, 300), (0, 300)]),
    ("i^-1", 300, 10, 0.0, 20000, [(0, 5), (5, 20), (20, 300), (0, 300)]),
    ("i^-3", 300, 20, 0.0, 10000, [(0, 5), (5, 20), (20, 300), (0, 300)]),
    # near the rank (d = 60): k = d - n from 1 to 12
    ("i^-1", 60, 48, 0.0, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    ("i^-1", 60, 52, 0.0, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    ("i^-1", 60, 55, 0.0, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    ("i^-1", 60, 57, 0.0, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    ("i^-2", 60, 52, 0.0, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    ("i^-2", 60, 56, 0.0, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    ("three spikes 100 on 1", 60, 54, 0.0, 20000, [(0, 3), (3, 60), (0, 60)]),
    ("i^-3", 60, 58, 0.0, 40000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    # ridge towards the source
    ("i^-2", 60, 20, 1e-2, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    ("i^-2", 60, 50, 1e-3, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    ("i^-1", 300, 10, 1e-2, 10000, [(0, 5), (5, 20), (20, 300), (0, 300)]),
    ("ten spikes 100 on 1", 300, 10, 1.0, 10000, [(0, 10), (10, 300), (0, 300)]),
    # between the dual route and the expansions (d = 60, k = 8 to 30), where the near-rank
    # knobs act, and a vanishing ridge at the rank's edge
    ("i^-1", 60, 30, 0.0, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    ("i^-1", 60, 40, 0.0, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    ("i^-1", 60, 45, 0.0, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    ("i^-2", 60, 40, 0.0, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    ("i^-2", 60, 45, 0.0, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    ("three spikes 100 on 1", 60, 45, 0.0, 20000, [(0, 3), (3, 60), (0, 60)]),
    ("i^-1", 60, 52, 1e-4, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    ("i^-2", 60, 45, 1e-3, 20000, [(0, 3), (3, 10), (10, 60), (0, 60)]),
    # tiny ranks, where the dual route does not apply (n < 2 (d - n)): the taper's cells
    ("i^-1", 8, 3, 0.0, 40000, [(0, 2), (2, 8), (0, 8)]),
    ("i^-1", 8, 4, 0.0, 40000, [(0, 2), (2, 8), (0, 8)]),
    ("i^-2", 12, 5, 0.0, 40000, [(0, 2), (2, 12), (0, 12)]),
    ("three spikes 100 on 1", 12, 6, 0.0, 40000, [(0, 3), (3, 12), (0, 12)]),
    # the audit settings at d = 200, n = 20 (strong spikes, a steep power law)
    ("three spikes 100 on 1", 200, 20, 0.0, 10000, [(0, 3), (3, 200), (0, 200)]),
    ("i^-3", 200, 20, 0.0, 10000, [(0, 10), (10, 200), (0, 200)]),
]


def tables() -> None:
    """The package's predictions against the stored references (docs/linear.md, 3.1, 3.2)."""
    from finetune_theory import asymptotics, covariance

    doc = json.loads(OUT.read_text(encoding="utf-8"))
    print("| spectrum | d | n | ridge | noise: package | fitted | first | bias by blocks |")
    print("|---" * 8 + "|")
    for s in doc["settings"]:
        lam = np.array(s["eigvals"]) if s["eigvals"] else spectrum(s["spectrum"], s["d"])
        c, n, ridge = covariance.Covariance(lam), s["n"], s["ridge"]
        if ridge > 0:
            eq = asymptotics.ridge_equivalent(c, n, ridge)
        else:
            eq = asymptotics.deterministic_equivalent(c, n)
        kappa = float(eq.kappa[0])
        q = lam / (lam + kappa)
        rho = float((q * q).sum() / n)
        eps = float((q * q * (1 - q)).sum() / (n * (q * (1 - q)).sum()))
        mean, se = s["noise"]

        def err(x: float, ref: float) -> str:
            return f"{100 * (x / ref - 1):+.1f}"

        blocks = ", ".join(
            f"{lo + 1}-{hi}: {err(float(eq.bias_weights[0, lo:hi].sum()), bm)} "
            f"({100 * bse / bm:.1f})"
            for lo, hi, bm, bse in s["bias"]
        )
        fitted = "" if ridge > 0 else err(rho / (1 - rho - eps), mean)
        print(
            f"| {s['spectrum']} | {s['d']} | {n} | {ridge:g} | "
            f"{err(float(eq.noise_factor[0]), mean)} ({100 * se / mean:.2f}) | {fitted} | "
            f"{err(rho / (1 - rho), mean)} | {blocks} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--missing", action="store_true")
    args = parser.parse_args()
    if args.table:
        tables()
        return
    rows = []
    start = time.process_time()
    stored: dict[tuple, dict] = {}
    spent = 0
    if args.missing and OUT.exists():
        old = json.loads(OUT.read_text(encoding="utf-8"))
        spent = old["cpu_seconds"]
        stored = {(s["spectrum"], s["d"], s["n"], s["ridge"]): s for s in old["settings"]}
    for j, (name, d, n, ridge, draws, blocks) in enumerate(SETTINGS):
        if (name, d, n, ridge) in stored:
            rows.append(stored[(name, d, n, ridge)])
            continue
        draws = max(200, draws // 20) if args.quick else draws
        lam = spectrum(name, d)
        seed = 27_000 + j
        (nm, nse), (bm, bse), (tm, tse) = simulate(lam, n, ridge, draws, seed)
        rows.append(
            {
                "spectrum": name,
                "d": d,
                "n": n,
                "ridge": ridge,
                "draws": draws,
                "seed": seed,
                "noise": [nm, nse],
                "inverse_trace": [tm, tse],
                "bias": [
                    [lo, hi, float(bm[lo:hi].sum()), float(np.sqrt((bse[lo:hi] ** 2).sum()))]
                    for lo, hi in blocks
                ],
                "eigvals": [float(f"{v:.15g}") for v in lam] if name == "patches" else None,
            }
        )
        print(
            f"{name}, d={d}, n={n}, ridge={ridge}: noise {nm:.5g} ({100 * nse / nm:.2f} %)",
            f"{time.process_time() - start:.0f} CPU-s",
            file=sys.stderr,
            flush=True,
        )
    doc = {
        "command": "python benchmarks/mc_references.py" + (" --quick" if args.quick else ""),
        "description": (__doc__ or "").split("\n\n")[0],
        "cpu_seconds": spent + round(time.process_time() - start),
        "settings": rows,
    }
    if args.quick:
        json.dump(doc, sys.stdout, indent=1)
        return
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
