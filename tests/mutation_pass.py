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

KAPPA = f"{PKG}/asymptotics/_kappa.py"
EQUIV = f"{PKG}/asymptotics/_equivalent.py"
FINITE = f"{PKG}/asymptotics/_finite_size.py"
CONST = f"{PKG}/asymptotics/_constants.py"
RIDGE = f"{PKG}/asymptotics/_ridge.py"
LIN_RISK = f"{PKG}/linear/_risk.py"
LIN_SC = f"{PKG}/linear/_sample_complexity.py"
SEARCH = f"{PKG}/_sample_search.py"
LIN_SIM = f"{PKG}/linear/_similarity.py"
DEEP = f"{PKG}/deep_linear/_risk.py"
CLOSED = f"{PKG}/deep_linear/_closed.py"
RELU = f"{PKG}/relu/_bound.py"

T_ASYM = ["tests/test_asymptotics.py", "tests/test_linear.py"]
#: the accuracy tests against the stored Monte Carlo and the exact cases: seconds per mutant
T_ACC = [
    "tests/test_asymptotics.py",
    "-k",
    "stored or isotropic or continuous or kappa or rank_deficient or vectorised or infinite",
]
T_LIN = ["tests/test_linear.py", "tests/test_experiments_reduction.py"]
T_LIN_FAST = ["tests/test_linear.py", "-k", "sample_complexity or bracket or similarity"]
T_DEEP = ["tests/test_deep_linear.py"]
T_RELU = ["tests/test_relu.py"]
T_DEEP_NOISE = ["tests/test_deep_linear_fluctuations.py", "-k", "stored"]

#: (file, old text, new text, tests, what the mutant does)
MUTANTS: list[tuple[str, str, str, list[str], str]] = [
    (
        EQUIV,
        "rho = np.where(interp, (frac**2).sum(axis=1) / nf, 1.0)",
        "rho = np.where(interp, (frac**2).sum(axis=1) / (nf + 1), 1.0)",
        T_ACC,
        "rho: n + 1 in the denominator",
    ),
    (
        KAPPA,
        "lam[None, :] * (1.0 - q) ** 2 / (1.0 - rho)[:, None]",
        "lam[None, :] * (1.0 - q) ** 2",
        T_ACC,
        "first-order bias weights: 1 / (1 - rho) dropped",
    ),
    (
        KAPPA,
        "lam[None, :] * (1.0 - q) ** 2 / (1.0 - rho)[:, None]",
        "lam[None, :] * (1.0 - q) / (1.0 - rho)[:, None]",
        T_ACC,
        "first-order bias weights: exponent 2 -> 1",
    ),
    (
        FINITE,
        "c = -(tau * s2 + ds2) / den**2 + 2.0 * s2 * dden / den**3",
        "c = -(tau * s2 + ds2) / den**2",
        T_ACC,
        "noise correction: the D' term dropped",
    ),
    (
        FINITE,
        "c = -(tau * s2 + ds2) / den**2 + 2.0 * s2 * dden / den**3",
        "c = 1.1 * (-(tau * s2 + ds2) / den**2 + 2.0 * s2 * dden / den**3)",
        T_ACC,
        "noise correction: 10 % larger",
    ),
    (
        FINITE,
        "tau = -sum_qq / den",
        "tau = -1.1 * sum_qq / den",
        T_ACC,
        "noise correction: d log delta / dt 10 % off",
    ),
    (
        FINITE,
        "return den * den * c / (n * np.where(sum_qq > 0, sum_qq, 1.0))",
        "return den * c / (n * np.where(sum_qq > 0, sum_qq, 1.0))",
        T_ACC,
        "noise eps: (1 - rho)^2 -> (1 - rho)",
    ),
    (
        FINITE,
        "noise = rho / np.maximum(1.0 - rho - eps, 0.5 * (1.0 - rho))",
        "noise = rho / np.maximum(1.0 - rho - eps, 0.55 * (1.0 - rho))",
        T_ACC,
        "noise factor cap: 1/2 -> 0.55",
    ),
    (
        FINITE,
        "mean = 1.0 + s2 / den**2",
        "mean = 1.0 + 1.1 * s2 / den**2",
        T_ACC,
        "central-limit mean of tr A: 10 % larger",
    ),
    (
        FINITE,
        "var = np.maximum(2.0 * (d3 / (6.0 * d1) - (d2 / (2.0 * d1)) ** 2), 0.0)",
        "var = np.maximum(2.2 * (d3 / (6.0 * d1) - (d2 / (2.0 * d1)) ** 2), 0.0)",
        T_ACC,
        "central-limit variance of tr A: 10 % larger",
    ),
    (CONST, "NEAR_RANK = 3.0", "NEAR_RANK = 3.3", T_ACC, "near-rank fitted factor: 3 -> 3.3"),
    (CONST, "RIDGE_FADE = 4.0", "RIDGE_FADE = 3.6", T_ACC, "ridge fade exponent 4 -> 3.6"),
    (CONST, "TAPER_WIDTH = 2.0", "TAPER_WIDTH = 2.2", T_ACC, "taper width 2 -> 2.2"),
    (CONST, "DUAL_LAST = 10", "DUAL_LAST = 11", T_ACC, "dual blend ends at 11 instead of 10"),
    (
        EQUIV,
        "below = np.where(nf >= r - 1, np.inf, below)",
        "below = below",
        T_ACC,
        "noise factor (anisotropic): no divergence at n = r - 1",
    ),
    (
        EQUIV,
        "nf / np.where(r - nf - 1 > 0, r - nf - 1, 1.0)",
        "nf / np.where(r - nf - 1 > 0, r - nf, 1.0)",
        T_ACC,
        "isotropic noise factor n / (d - n) instead of n / (d - n - 1)",
    ),
    (
        EQUIV,
        "r / np.where(nf - r - 1 > 0, nf - r - 1, 1.0)",
        "r / np.where(nf - r - 1 > 0, nf - r, 1.0)",
        T_ASYM,
        "least-squares noise r / (n - r) instead of r / (n - r - 1)",
    ),
    (
        EQUIV,
        "pinv_below = 1.0 / np.where(kappa > 0, kappa, 1.0) / np.maximum(1.0 - x, 0.5)",
        "pinv_below = 1.0 / np.where(kappa > 0, kappa, 1.0)",
        T_ACC,
        "pinv trace: central-limit mean factor dropped",
    ),
    (
        EQUIV,
        "perp = np.where(interp[:, None], 1.0 - frac, 0.0)",
        "perp = np.where(interp[:, None], 1.0 - frac**2, 0.0)",
        T_ASYM,
        "perp weights: 1 - frac^2",
    ),
    (
        EQUIV,
        "bias = bias * (_isotropic_calibration(r, ns) ** _isotropy(lam))[:, None]",
        "bias = bias",
        T_ACC,
        "isotropic calibration dropped",
    ),
    (
        EQUIV,
        "    return float((r - n) / bias.sum())",
        "    return float((r - n + 0.5) / bias.sum())",
        T_ACC,
        "isotropic calibration: target total r - n + 1/2",
    ),
    (
        EQUIV,
        "return float(pos.sum() ** 2 / (pos.size * (pos * pos).sum()))",
        "return 1.0",
        T_ACC,
        "isotropy share always 1 (whole calibration for every spectrum)",
    ),
    (
        KAPPA,
        "f = q.sum(axis=1) - mm",
        "f = q.sum(axis=1) - mm + 0.5",
        T_ACC,
        "kappa solves n - 1/2 = sum lambda / (lambda + kappa)",
    ),
    (
        EQUIV,
        "exact = r > 0 and bool(",
        "exact = r < 0 and bool(",
        T_ACC,
        "isotropic covariances lose their exact formulas",
    ),
    (
        LIN_RISK,
        "        risk = risk + sigma**2 * noise_factor",
        "        risk = risk + sigma * noise_factor",
        T_LIN_FAST,
        "expected_risk: sigma instead of sigma^2",
    ),
    (
        SEARCH,
        "    if curve.source_risk <= eps:\n        return 0",
        "    if curve.source_risk < 0:\n        return 0",
        T_LIN_FAST,
        "sample_complexity: the source-suffices case dropped",
    ),
    (
        SEARCH,
        "                if curve(np.array([mid]))[0] <= eps:",
        "                if curve(np.array([mid]))[0] < 0.9 * eps:",
        T_LIN_FAST,
        "sample_complexity: 10% slack in the bisection",
    ),
    (
        SEARCH,
        "            lo = int(grid[i - 1]) if i > 0 else 1",
        "            lo = int(grid[i])",
        T_LIN_FAST,
        "sample_complexity: the dip below eps left of the lowest size missed",
    ),
    (
        LIN_SC,
        "        reduction = n_sc / n_ft\n",
        "        reduction = n_ft / n_sc\n",
        T_LIN_FAST,
        "reduction: ratio inverted",
    ),
    (
        LIN_SC,
        "        n_ls = r\n",
        "        n_ls = r + 1\n",
        T_LIN_FAST,
        "noiseless n_eps above the curve: r + 1",
    ),
    (
        LIN_SIM,
        '"source_risk": np.broadcast_to((sq @ lam)[..., None], shape)',
        '"source_risk": np.broadcast_to(sq.sum(axis=-1)[..., None], shape)',
        T_LIN_FAST,
        "similarity: source risk without Sigma",
    ),
    (
        LIN_SIM,
        "kj = min(max(1, int(nj) // 2) if k is None else k, d - 1)",
        "kj = min(max(1, int(nj) // 3) if k is None else k, d - 1)",
        T_LIN_FAST,
        "similarity: default split n // 2 -> n // 3 (issue 27's survivor)",
    ),
    (
        LIN_SIM,
        "cov_err = lam[0] * np.maximum(np.sqrt(ratio), ratio)",
        "cov_err = lam[0] * np.sqrt(ratio)",
        T_LIN_FAST,
        "similarity: the max(., ratio) branch dropped (issue 27's survivor)",
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
    (
        DEEP,
        "            + cross[j] * s_a\n",
        "\n",
        T_DEEP_NOISE,
        "deep noise cross term dropped (Beta rows)",
    ),
    (
        DEEP,
        "    m = first * (q - spread) / (kappa * den)",
        "    m = first * q / (kappa * den)",
        T_DEEP_NOISE,
        "deep noise cross term: the spread term of m_i dropped",
    ),
    (
        DEEP,
        "    return 4.0 * sigma**2 * (m @ (u * v))",
        "    return 4.4 * sigma**2 * (m @ (u * v))",
        T_DEEP_NOISE,
        "deep noise cross term: 10 % larger",
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
