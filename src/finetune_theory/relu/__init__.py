"""Two-layer ReLU networks in the NTK (lazy) regime: network, kernel, predictor and bound.

The model is ``f(x) = (1/sqrt(m)) sum_r a_r relu(w_r^T x)`` with fixed output signs
``a_r = +-1`` and a trained first layer ``W = (w_1 .. w_m)``. Inputs live on the unit sphere.
With ``w_r ~ N(0, I)`` the neural tangent kernel of the first layer is

    K(x, x') = E_w[ x^T x' 1(w^T x > 0) 1(w^T x' > 0) ] = u (pi - arccos u) / (2 pi),
    u = x^T x',

whose odd part is exactly ``u / 4``: a linear teacher ``beta^T x`` has squared RKHS norm
``4 ||beta||^2`` (see ``docs/relu.md``).

What lives here:

- the analytic kernel :func:`ntk`, its smallest eigenvalue :func:`ntk_lambda_min`, the
  residual norm ``r^T H^-1 r`` (:func:`rkhs_norm_sq`, by Cholesky) and the data-dependent
  bound :func:`residual_bound` ``sqrt(2 r^T H^-1 r / n)``;
- the full bound :func:`generalization_bound`, its prediction from the teacher distance alone
  :func:`predicted_bound`, and the predicted sample complexity :func:`sample_complexity_bound`
  (constants and the confidence ``delta`` documented there: a reconstruction);
- :class:`ReluNetwork` (weights with a leading batch axis of repeats), the symmetric
  initialisation :func:`init_network`, hand gradients :func:`loss_and_gradient` and
  full-batch gradient descent :func:`train` (step :func:`default_lr`), with the settings and
  result shared by the three architectures. Fine-tuning is ``train(X, y, pretrained)`` from
  the weights of :func:`pretrain` (source teacher, random initialisation); training from
  scratch is ``train(X, y, init_network(...))``;
- the empirical NTK of a finite network (:meth:`ReluNetwork.ntk`) and the kernel predictor of
  training from given weights, :func:`kernel_predictor`: the closed-form (lazy, infinite
  width) limit of :func:`train`. It keeps its name rather than ``finetune``: it is a
  prediction of the trained network, exact only in the limit, not the limit of the finite
  network's own gradient descent.

Training that diverges or does not converge raises :class:`DivergenceError` or
:class:`ConvergenceError` (both :class:`TrainingError`); it never returns numbers.
"""

from __future__ import annotations

from .._training import TrainResult
from ..exceptions import ConvergenceError, DivergenceError, TrainingError
from ._bound import (
    DEFAULT_DELTA,
    confidence_term,
    generalization_bound,
    predicted_bound,
    residual_bound,
    sample_complexity_bound,
)
from ._kernel import SPHERE_TOL, ntk, ntk_lambda_min, rkhs_norm_sq
from ._network import ReluNetwork, init_network, loss_and_gradient, sample_sphere
from ._predictor import kernel_predictor
from ._train import default_lr, pretrain, train

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
    "sample_sphere",
    "ReluNetwork",
    "init_network",
    "loss_and_gradient",
    "TrainResult",
    "TrainingError",
    "DivergenceError",
    "ConvergenceError",
    "default_lr",
    "train",
    "pretrain",
    "kernel_predictor",
]
