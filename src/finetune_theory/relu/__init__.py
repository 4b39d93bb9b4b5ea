"""Two-layer ReLU networks in the NTK (lazy) regime: network, kernel, predictor and bound.

The model is ``f(x) = (1/sqrt(m)) sum_r a_r relu(w_r^T x)`` with fixed output signs
``a_r = +-1`` and a trained first layer ``W = (w_1 .. w_m)``. Inputs live on the unit sphere.
With ``w_r ~ N(0, I)`` the neural tangent kernel of the first layer is

    K(x, x') = E_w[ x^T x' 1(w^T x > 0) 1(w^T x' > 0) ] = u (pi - arccos u) / (2 pi),
    u = x^T x',

whose odd part is exactly ``u / 4``: a linear teacher ``beta^T x`` has squared RKHS norm
``4 ||beta||^2`` (see ``docs/relu.md``).

The same verbs as the other architectures, where the theory has them, each job in its own
private module:

- ``finetune`` (``_predictor``): the limit of fine-tuning, the kernel predictor
  ``f_0(x) + K(x, X) H^-1 (y - f_0(X))`` of lazy training from a start network (also known as
  :func:`kernel_predictor`); it is returned through its predictions, being a function rather
  than a finite weight vector, and it is exact only in the lazy, infinite-width limit;
- ``train``, ``default_lr``, ``pretrain`` (``_train``): full-batch gradient descent with the
  settings, result types and errors shared by the three architectures. Fine-tuning is
  ``train(X, y, pretrain(...).weights)``, training from scratch
  ``train(X, y, init_network(...))``;
- ``risk_bound`` and ``sample_complexity`` (``_bound``): the risk statement of the theory, a
  bound holding with probability ``1 - delta``, from the teachers, and the sample size it
  asks for; built on the distance-based :func:`predicted_bound` and
  :func:`sample_complexity_bound`, the data-dependent :func:`residual_bound` and the full
  :func:`generalization_bound` (constants and ``delta`` documented there: a reconstruction);
- the analytic kernel :func:`ntk`, its smallest eigenvalue :func:`ntk_lambda_min` and the
  residual norm ``r^T H^-1 r`` (:func:`rkhs_norm_sq`, by Cholesky) (``_kernel``);
- :class:`ReluNetwork` (weights ``(..., m, d)``, leading axes a batch), its empirical NTK
  :meth:`ReluNetwork.ntk`, the symmetric initialisation :func:`init_network`, inputs on the
  sphere :func:`sample_sphere` and the hand gradients :func:`loss_and_gradient`
  (``_network``).

There is no ``expected_risk`` or ``simulate_risk``: the theory of this architecture is a bound.
Training that diverges or does not converge raises :class:`DivergenceError` or
:class:`ConvergenceError` (both :class:`TrainingError`); it never returns numbers.
"""

from __future__ import annotations

from .._training import PretrainResult, TrainResult
from ..exceptions import (
    ConvergenceError,
    DivergenceError,
    TrainingError,
    UnreachableRiskError,
)
from ._bound import (
    DEFAULT_DELTA,
    confidence_term,
    generalization_bound,
    predicted_bound,
    residual_bound,
    risk_bound,
    sample_complexity,
    sample_complexity_bound,
)
from ._kernel import SPHERE_TOL, ntk, ntk_lambda_min, rkhs_norm_sq
from ._network import ReluNetwork, init_network, loss_and_gradient, sample_sphere
from ._predictor import finetune, kernel_predictor
from ._train import DEFAULT_LR_FRACTION, default_lr, pretrain, train

__all__ = [
    "DEFAULT_DELTA",
    "SPHERE_TOL",
    "ntk",
    "ntk_lambda_min",
    "rkhs_norm_sq",
    "residual_bound",
    "confidence_term",
    "generalization_bound",
    "predicted_bound",
    "sample_complexity_bound",
    "risk_bound",
    "sample_complexity",
    "sample_sphere",
    "ReluNetwork",
    "init_network",
    "loss_and_gradient",
    "TrainResult",
    "PretrainResult",
    "TrainingError",
    "DivergenceError",
    "ConvergenceError",
    "UnreachableRiskError",
    "DEFAULT_LR_FRACTION",
    "default_lr",
    "train",
    "pretrain",
    "finetune",
    "kernel_predictor",
]
