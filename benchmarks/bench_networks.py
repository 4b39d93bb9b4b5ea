"""Scale of the empirical NTK: the Jacobian-vector route at a million parameters.

A tanh MLP 20-1000-980-1 (1,002,961 parameters, float64), the 40 x 40 kernel of 40 rows by
the ``"jvp"`` route (gradients of blocks of rows, forward-mode products over the others: the
Jacobian of the first rows, 40 x 10^6 floats = 320 MB, is never held), then by the
``"jacobian"`` route (which holds it) for comparison. Printed: the CPU time of each route,
the peak resident memory of the process after each (``ru_maxrss``: the JVP route runs
first, so its figure is its own peak), and their largest relative difference.

Targets: the JVP route under 30 s of CPU and under 1 GB of peak resident memory; the two
routes equal to 1e-10 (relative).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_networks.py`` (``--quick``: width
300, about 10^5 parameters).
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from finetune_theory import networks

TARGET_CPU_S = 30.0
TARGET_PEAK_MB = 1024.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(width: int = 1000, rows: int = 40) -> None:
    import torch

    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(nn.Linear(20, width), nn.Tanh(), nn.Linear(width, width - 20), nn.Tanh(),
                        nn.Linear(width - 20, 1)).double()
    params = sum(p.numel() for p in net.parameters())
    x = np.random.default_rng(0).standard_normal((rows, 20))
    networks.empirical_ntk(net, x[:2], method="jvp")  # first call: torch.func's imports
    base = _peak_mb()
    t0 = time.process_time()
    k_jvp = networks.empirical_ntk(net, x, method="jvp")
    t_jvp = time.process_time() - t0
    peak_jvp = _peak_mb()
    t0 = time.process_time()
    k_jac = networks.empirical_ntk(net, x, method="jacobian")
    t_jac = time.process_time() - t0
    peak_jac = _peak_mb()
    gap = float(np.abs(k_jvp - k_jac).max() / np.abs(k_jac).max())
    jac_mb = rows * params * 8 / 2**20
    print(f"MLP 20-{width}-{width - 20}-1: {params:,} parameters, {rows} x {rows} kernel "
          f"(the Jacobian of {rows} rows is {jac_mb:.0f} MB)")
    print(f"jvp route:      {t_jvp:6.2f} s CPU, peak resident {peak_jvp:6.0f} MB "
          f"(before: {base:.0f} MB)")
    print(f"jacobian route: {t_jac:6.2f} s CPU, peak resident {peak_jac:6.0f} MB")
    print(f"largest relative difference: {gap:.1e}")
    ok = t_jvp < TARGET_CPU_S and peak_jvp < TARGET_PEAK_MB and gap < 1e-10
    print(f"targets (jvp < {TARGET_CPU_S:g} s CPU, < {TARGET_PEAK_MB:g} MB, gap < 1e-10): "
          f"{'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main(width=300) if "--quick" in sys.argv else main()
