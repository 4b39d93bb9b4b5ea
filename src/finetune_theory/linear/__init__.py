"""Fine-tuning in linear regression.

Gradient descent on ``(1/2n) ||X theta - y||^2`` started from the source weights ``theta_S``
moves only inside the row space of ``X``; with a small enough step it converges to

    theta_hat = theta_S + X^+ (y - X theta_S) = P_X theta_T + P_perp theta_S + X^+ xi,

the interpolant closest to the start when ``n < d``, least squares when ``X`` has full column
rank, and the pseudo-inverse limit in between. Everything here follows from that identity:
the excess risk ``(theta - theta_T)^T Sigma (theta - theta_T)``, its expectation over Gaussian
designs (exact for isotropic covariances, the deterministic equivalent of
:mod:`finetune_theory.asymptotics` otherwise), Monte Carlo estimates, sample complexity and the
covariance-aware similarity measure. Training from scratch is ``theta_S = 0``.

:func:`finetune` is the limit; :func:`train` runs the gradient descent itself, with the
settings (``lr``, ``max_steps``, ``tol``) and the :class:`TrainResult` shared by the three
architectures (see :mod:`finetune_theory._training`).
"""

from __future__ import annotations

from .._risk import SimulatedRisk
from .._training import TrainResult
from ..exceptions import ConvergenceError, DivergenceError, UnreachableRiskError
from ._finetune import finetune
from ._risk import (
    excess_risk,
    expected_risk,
    expected_risk_early_stopping,
    optimal_ridge,
    optimal_stopping_time,
    simulate_risk,
)
from ._sample_complexity import SampleComplexity, sample_complexity, sample_complexity_reduction
from ._similarity import MEASURES, similarity
from ._train import default_lr, train

__all__ = [
    "ConvergenceError",
    "DivergenceError",
    "UnreachableRiskError",
    "TrainResult",
    "SimulatedRisk",
    "SampleComplexity",
    "finetune",
    "default_lr",
    "train",
    "excess_risk",
    "expected_risk",
    "optimal_ridge",
    "expected_risk_early_stopping",
    "optimal_stopping_time",
    "simulate_risk",
    "sample_complexity",
    "sample_complexity_reduction",
    "similarity",
    "MEASURES",
]
