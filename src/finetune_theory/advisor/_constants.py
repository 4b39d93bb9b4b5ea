"""Every constant the advisor's predictions depend on, with where its value comes from.

Private to :mod:`finetune_theory.advisor`; re-exported names are documented in
``docs/advisor.md`` (section "Constants"). A constant that was set by looking at data names
the data: the *development* tables of ``benchmarks/validate_advisor.py`` (never the
validation tables).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "NOISE_FLOOR",
    "MODEL_SE",
    "MISFIT_SE",
    "TIE_SE",
    "TAIL_PRIOR",
    "TAIL_PRIOR_ROWS",
    "USER_ALPHAS",
    "BOOT_SEED",
    "BOOT_BUDGET",
    "BOOT_DRAWS",
]

#: the noise variance is never taken below this fraction of the smallest residual variance of
#: any start when ``n - 1 <= d`` stops least squares from estimating it (a guard against the
#: marginal likelihood's collapse to zero noise; set on the development tables)
NOISE_FLOOR = 0.25
#: model-error allowance (standard error of log risk) of a learned strategy's prediction at
#: the labelled n, added in quadrature to the error of what it is scaled to; it grows by half
#: of itself per unit of ``|log(n / n_labelled)|``. Set on the development tables so that the
#: 80% intervals of ``finetune_ridge`` and ``scratch`` cover 78-80% there (0.2: 55-58%; 0.5:
#: 70%; ``benchmarks/validate_advisor.py --development --save``, then replaying the records)
MODEL_SE = 0.7
#: spread (standard error of log) of the Gaussian-linear theory's test MSE of a learned
#: strategy on real rows, before those rows are consulted: ``log 2``, the factor by which the
#: theory missed the learned strategies' measured MSE on the development tables (1.7 to 2.5;
#: the measured allowance then weighs the user's own leave-one-out error against it)
MISFIT_SE = math.log(2.0)
#: a simpler strategy is advised instead of the lowest prediction when its own prediction is
#: within this many standard errors of the difference (log scale: the paired sampling error
#: of the two pairs' held-out errors on the labelled rows): the "one standard error" rule of
#: cross-validation (Breiman et al. 1984; Hastie, Tibshirani and Friedman, The Elements of
#: Statistical Learning, section 7.10), not fitted to data. Replaying the development tables'
#: records (``validate_advisor.py --development --splits 3 --save``), advised MSE over
#: "refit the intercept of the leave-one-out source": 1.065 at 0, 1.026 at 0.5, 1.003 at 1,
#: 1.011 at 1.5, 1.030 at 2
TIE_SE = 1.0
#: prior ``Var(r^2) / E[r^2]^2`` of residuals (2: Gaussian): the mean over the seven
#: development tables of each table's median population value (``validate_advisor.py
#: --tails``: 20.1, 4.5, 2.5, 2.5, 1.9, 2.0, 1.8)
TAIL_PRIOR = 5.0
#: weight of that prior, in rows
TAIL_PRIOR_ROWS = 10.0
#: the user's ridge grid, in units of the mean eigenvalue of the target covariance (a
#: log grid wide enough that ``RidgeCV`` picks inside it on every table tried; the benchmark
#: gives the same grid to its independent ``RidgeCV``)
USER_ALPHAS = np.logspace(-3, 4, 36)
#: seed of the bootstrap's SeedSequence (the advice is deterministic)
BOOT_SEED = 20261201
#: synthetic labelled sets per sample size in the bootstrap of the user's ridge choice, at
#: most and at least (Monte Carlo error of the mean excess about 1/sqrt(draws) of its spread)
BOOT_DRAWS = (48, 4)
#: work allowed to the bootstrap, in multiply-adds (per draw at size ``k``, with
#: ``r = min(k, d)``: ``k r (d + 36 J) + 10 r^3``), once for the labelled n and once for the
#: sizes around it (n/2, 2n, n/4, 4n, 3, in that order): about a quarter of a CPU-second each
#: on one core; a size that does not fit is left out (the curve is interpolated between the
#: others and decays as 1/n beyond the largest)
BOOT_BUDGET = 5e8
