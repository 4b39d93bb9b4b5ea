"""Real pretrained networks: fine-tuning predicted from the linearisation at the source weights.

For any ``torch.nn.Module`` with one output per row (or a chosen output column):

* :func:`empirical_ntk` and :func:`jacobian`: the empirical neural tangent kernel at given
  weights, in all parameters, the head's (``"last"``) or a named subset, by per-row Jacobians
  (``vmap(jacrev)``) or by Jacobian-vector products that never hold the Jacobian whole;
* :func:`penultimate_features`: what the head (the last ``nn.Linear``) sees, and
  :func:`advisor_inputs` to hand a network to :func:`finetune_theory.advisor.advise`;
* :func:`linearised_predictor` / :func:`kernel_finetune`: the network fine-tuned in its
  linearisation, ``f_S(x) + K(x, X) alpha`` (ridge and early stopping included), and
  :func:`train`: real gradient descent from the pretrained weights, a batch of problems at once;
* :func:`advise`: the advisor's table for a pretrained network, with fine-tuning of the head
  (``finetune_last_layer``), of the linearised network (``finetune_linearised``) and, when
  asked, of the real network (``finetune_network``) beside the advisor's strategies;
* :func:`predict_curve`: the fine-tuning learning curve from unlabelled target inputs (the
  spectrum) and a few labelled rows (the residual's energy profile), by the deterministic
  equivalents of :mod:`finetune_theory.linear`, for full fine-tuning or the head alone.

torch is imported only when a function needs it (``pip install 'finetune-theory[torch]'``);
this module itself imports without it. Computation is float64 on the CPU by default; every
function takes ``device=`` (a GPU device is accepted but has not been tested). Private
modules: ``_core`` (the functional view of a module), ``_ntk``, ``_linearised`` (features,
predictor, training), ``_curve`` (the learning-curve prediction), ``_advise`` (the advisor
with a network as the source).
"""

from ._advise import NETWORK_STRATEGIES, advise
from ._core import torch_module
from ._curve import (
    ROUTES,
    CurvePrediction,
    ResidualProfile,
    Spectrum,
    feature_spectrum,
    fit_residual_profile,
    kernel_spectrum,
    predict_curve,
    predict_from_profile,
    predict_from_spectrum,
    residual_profile,
)
from ._linearised import (
    LinearisedFit,
    NetworkTrainResult,
    Penultimate,
    advisor_inputs,
    kernel_finetune,
    linearised_predictor,
    penultimate_features,
    train,
)
from ._ntk import empirical_ntk, jacobian

__all__ = [
    "NETWORK_STRATEGIES",
    "advise",
    "ROUTES",
    "CurvePrediction",
    "LinearisedFit",
    "NetworkTrainResult",
    "Penultimate",
    "ResidualProfile",
    "Spectrum",
    "advisor_inputs",
    "empirical_ntk",
    "feature_spectrum",
    "fit_residual_profile",
    "jacobian",
    "kernel_finetune",
    "kernel_spectrum",
    "linearised_predictor",
    "penultimate_features",
    "predict_curve",
    "predict_from_profile",
    "predict_from_spectrum",
    "residual_profile",
    "torch_module",
    "train",
]
