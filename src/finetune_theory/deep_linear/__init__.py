"""Fine-tuning deep linear networks: what gradient descent converges to from pretrained weights.

The network ``f(x) = W_N ... W_1 x`` (scalar output, hidden widths ``h_j``) realises the
end-to-end vector ``theta^T = W_N ... W_1``. Started from *balanced* weights
(``W_{j+1}^T W_{j+1} = W_j W_j^T``) whose product is the source ``theta_S``, gradient descent on
``(1/2n) ||X theta - y||^2`` with small steps converges to

    theta_hat_N = X^+ y + s_N P_perp theta_S,

where ``P_perp`` projects onto the directions the data does not see and ``s_N > 0`` is the root
of ``s^(N/(N-1)) ||theta_S|| = sqrt(||X^+ y||^2 + s^2 ||P_perp theta_S||^2)`` (``s_1 = 1``). Depth
lets the network rescale the source inside the unseen subspace; as ``N -> inf`` the scale tends
to ``||X^+ y|| / ||P_X theta_S||``. See ``docs/deep_linear.md`` for the derivation.

Contents, each job in its own private module: weights (``_weights``: :func:`balanced_init`,
:func:`end_to_end`, :func:`imbalance`), training (``_train``: :func:`train`, :func:`default_lr`,
:func:`pretrain`), the closed-form limit (``_limit``: :func:`finetune`, :func:`finetune_scale`;
``_closed``: :func:`solve_scale` and the other closed-form pieces), risks (``_risk``:
:func:`expected_scale`, :func:`expected_risk`, :func:`simulate_risk`,
:func:`frozen_risk_floor`; ``_sample_complexity``: :func:`sample_complexity`); ``_nets`` is the
gradient-descent engine. Batches follow the package's convention: leading axes, ``X (..., n, d)``,
layers ``(..., h_j, h_{j-1})``.
"""

from .._risk import SimulatedRisk
from .._training import PretrainResult, TrainResult
from ..exceptions import ConvergenceError, DivergenceError, UnreachableRiskError
from ._closed import solve_scale
from ._limit import finetune, finetune_scale
from ._risk import (
    expected_risk,
    expected_scale,
    frozen_risk_floor,
    simulate_risk,
)
from ._sample_complexity import sample_complexity
from ._train import DEFAULT_LR_FRACTION, default_lr, pretrain, train
from ._weights import balanced_init, end_to_end, imbalance

__all__ = [
    "ConvergenceError",
    "DivergenceError",
    "UnreachableRiskError",
    "TrainResult",
    "PretrainResult",
    "SimulatedRisk",
    "DEFAULT_LR_FRACTION",
    "balanced_init",
    "pretrain",
    "end_to_end",
    "imbalance",
    "default_lr",
    "train",
    "solve_scale",
    "finetune_scale",
    "finetune",
    "expected_scale",
    "expected_risk",
    "simulate_risk",
    "frozen_risk_floor",
    "sample_complexity",
]
