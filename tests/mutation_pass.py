"""A small hand-made mutation pass over the theory modules (run by hand, not collected by pytest).

Each mutant is one textual change to a copy of ``src/`` (never to the working tree): flip a
sign, drop a term, change an exponent, swap an argument. For each, the relevant test files run
against the mutated copy with ``-x -p no:xdist``; the mutant is *killed* when a test fails.

    .venv/bin/python tests/mutation_pass.py            # every mutant
    .venv/bin/python tests/mutation_pass.py 3 7        # only mutants 3 and 7

Results (one line per mutant) go to stdout; ``docs/mutation.md`` records the last full run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: seconds a mutated test run may take; longer counts as killed (the mutant hangs the tests)
TIMEOUT = 300
PKG = "src/finetune_theory"

ASYM = f"{PKG}/asymptotics.py"
LIN = f"{PKG}/linear.py"
DEEP = f"{PKG}/deep_linear/_risk.py"
CLOSED = f"{PKG}/deep_linear/_closed.py"
RELU = f"{PKG}/relu/_bound.py"

T_ASYM = ["tests/test_asymptotics.py", "tests/test_linear.py"]
T_LIN = ["tests/test_linear.py", "tests/test_reduction.py"]
T_DEEP = ["tests/test_deep_linear.py"]
T_RELU = ["tests/test_relu.py"]

#: (file, old text, new text, tests, what the mutant does)
MUTANTS: list[tuple[str, str, str, list[str], str]] = [
    (
        ASYM,
        "(frac**2).sum(axis=1) / nf, 1.0)",
        "(frac**2).sum(axis=1) / (nf + 1), 1.0)",
        T_ASYM,
        "rho: n + 1 in the denominator",
    ),
    (
        ASYM,
        "lam[None, :] * (1.0 - frac) ** 2 / one_minus_rho[:, None]",
        "lam[None, :] * (1.0 - frac) ** 2",
        T_ASYM,
        "bias weights: 1 / (1 - rho) dropped",
    ),
    (
        ASYM,
        "lam[None, :] * (1.0 - frac) ** 2 / one_minus_rho",
        "lam[None, :] * (1.0 - frac) / one_minus_rho",
        T_ASYM,
        "bias weights: exponent 2 -> 1",
    ),
    (
        ASYM,
        "room = one_minus_rho - rho / nf",
        "room = one_minus_rho",
        T_ASYM,
        "noise factor (anisotropic): finite-size correction dropped",
    ),
    (
        ASYM,
        "below = np.where(nf >= r - 1, np.inf, below)",
        "below = below",
        T_ASYM,
        "noise factor (anisotropic): no divergence at n = r - 1",
    ),
    (
        ASYM,
        "nf / np.where(r - nf - 1 > 0, r - nf - 1, 1.0)",
        "nf / np.where(r - nf - 1 > 0, r - nf, 1.0)",
        T_ASYM,
        "isotropic noise factor n / (d - n) instead of n / (d - n - 1)",
    ),
    (
        ASYM,
        "r / np.where(nf - r - 1 > 0, nf - r - 1, 1.0)",
        "r / np.where(nf - r - 1 > 0, nf - r, 1.0)",
        T_ASYM,
        "least-squares noise r / (n - r) instead of r / (n - r - 1)",
    ),
    (
        ASYM,
        "pinv_below = 1.0 / np.where(kappa > 0, kappa, 1.0)",
        "pinv_below = nf / np.where(kappa > 0, kappa, 1.0) / r",
        T_ASYM + T_DEEP,
        "pinv trace below the rank scaled by n / r",
    ),
    (
        ASYM,
        "perp = np.where(interp[:, None], 1.0 - frac, 0.0)",
        "perp = np.where(interp[:, None], 1.0 - frac**2, 0.0)",
        T_ASYM + T_DEEP,
        "perp weights: 1 - frac^2",
    ),
    (
        ASYM,
        "f = q.sum(axis=1) - m",
        "f = q.sum(axis=1) - m + 0.5",
        T_ASYM,
        "kappa solves n - 1/2 = sum lambda / (lambda + kappa)",
    ),
    (
        ASYM,
        "exact = r > 0 and bool(",
        "exact = r < 0 and bool(",
        T_ASYM,
        "isotropic covariances lose their exact formulas",
    ),
    (
        LIN,
        "risk = risk + sigma**2 * eq.noise_factor",
        "risk = risk + sigma * eq.noise_factor",
        T_LIN,
        "expected_risk: sigma instead of sigma^2",
    ),
    (
        LIN,
        "    if float(c.quad(ts - tt)) <= eps:\n        return 0",
        "    if float(c.quad(ts - tt)) < 0:\n        return 0",
        T_LIN,
        "sample_complexity: the source-suffices case dropped",
    ),
    (
        LIN,
        "hits = np.flatnonzero(risk <= eps)",
        "hits = np.flatnonzero(risk < 0.9 * eps)",
        T_LIN,
        "sample_complexity: 10% slack in the crossing",
    ),
    (
        LIN,
        "        reduction = n_sc / n_ft\n",
        "        reduction = n_ft / n_sc\n",
        T_LIN,
        "reduction: ratio inverted",
    ),
    (
        LIN,
        "        n_ls = r\n",
        "        n_ls = r + 1\n",
        T_LIN,
        "noiseless n_eps above the curve: r + 1",
    ),
    (
        LIN,
        '"source_risk": np.broadcast_to((sq @ lam)[..., None], shape)',
        '"source_risk": np.broadcast_to(sq.sum(axis=-1)[..., None], shape)',
        T_LIN,
        "similarity: source risk without Sigma",
    ),
    (
        DEEP,
        "target_sq = target_sq + sigma**2 * eq.pinv_trace",
        "target_sq = target_sq",
        T_DEEP,
        "expected_scale: sigma^2 E||X^+||_F^2 dropped (issue's survivor)",
    ),
    (
        DEEP,
        "seen_sq = (1.0 - eq.perp_weights) @ cs",
        "seen_sq = eq.perp_weights @ cs",
        T_DEEP,
        "expected_scale: seen part of the source uses the unseen weights",
    ),
    (
        DEEP,
        "target_sq = (1.0 - eq.perp_weights) @ ct",
        "target_sq = ct.sum() + 0.0 * (eq.perp_weights @ ct)",
        T_DEEP,
        "expected_scale: ||X^+ y||^2 as the whole ||theta_T||^2",
    ),
    (
        DEEP,
        "np.where(finite, s, 0.0)[:, None] * c.coords(ts)",
        "np.where(finite, 1.0, 0.0)[:, None] * c.coords(ts)",
        T_DEEP,
        "expected_risk: scale s_N not applied",
    ),
    (
        DEEP,
        "a = cross / qs if qs > 0 else 0.0",
        "a = 0.0",
        T_DEEP,
        "frozen_risk_floor: no rescaling",
    ),
    (
        RELU,
        "np.sqrt(8.0 * s * s * dist * dist / n)",
        "np.sqrt(4.0 * s * s * dist * dist / n)",
        T_RELU,
        "predicted_bound: 4 instead of 8",
    ),
    (
        RELU,
        "np.sqrt(2.0 * q / x.shape[-2])",
        "np.sqrt(q / x.shape[-2])",
        T_RELU,
        "residual_bound: factor 2 dropped",
    ),
    (
        RELU,
        "np.log(2.0 * (1.0 + np.sqrt(n_arr / 2.0)) / delta) / (2.0 * n_arr)",
        "np.log(2.0 / delta) / (2.0 * n_arr)",
        T_RELU,
        "confidence term: union over the grid dropped",
    ),
    (
        RELU,
        "return 3.0 * np.sqrt(np.log(",
        "return 2.0 * np.sqrt(np.log(",
        T_RELU,
        "confidence term: constant 3 -> 2",
    ),
    (
        RELU,
        "hi = np.where(good, mid, hi)",
        "hi = np.where(good, mid + 1, hi)",
        T_RELU,
        "sample_complexity_bound: off by one in the bisection",
    ),
]


def _apply(tree: Path, path: str, old: str, new: str) -> bool:
    target = tree / path
    text = target.read_text()
    if text.count(old) != 1:
        return False
    target.write_text(text.replace(old, new))
    return True


def run(selected: list[int]) -> int:
    killed = survived = skipped = 0
    for i, (path, old, new, tests, what) in enumerate(MUTANTS):
        if selected and i not in selected:
            continue
        with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
            tree = Path(tmp)
            shutil.copytree(ROOT / "src", tree / "src")
            shutil.copytree(ROOT / "tests", tree / "tests")
            shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
            if not _apply(tree, path, old, new):
                print(f"{i:2d} SKIP     {what} (text not found once in {path})", flush=True)
                skipped += 1
                continue
            env = {**os.environ, "PYTHONPATH": str(tree / "src")}
            start = time.perf_counter()
            cmd = [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-p",
                "no:xdist",
                "-p",
                "no:cacheprovider",
                "-m",
                "not slow",
                *tests,
            ]
            try:
                proc = subprocess.run(
                    cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=TIMEOUT
                )
                code, out = proc.returncode, proc.stdout
            except subprocess.TimeoutExpired:  # a mutant that hangs the tests is detected too
                code, out = -1, "FAILED (timeout)"
            took = time.perf_counter() - start
            status = "KILLED" if code != 0 else "SURVIVED"
            killed += code != 0
            survived += code == 0
            first = ""
            for line in out.splitlines():
                if line.startswith("FAILED"):
                    first = line.split(" - ")[0].removeprefix("FAILED ")
                    break
            print(f"{i:2d} {status:8s} {what} [{took:.0f}s] {first}", flush=True)
    total = killed + survived
    print(f"score: {killed} / {total} killed ({skipped} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(run([int(a) for a in sys.argv[1:]]))
