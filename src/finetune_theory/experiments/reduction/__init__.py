"""E7 - the sample-complexity reduction: how many fewer samples fine-tuning needs.

The headline claim of the theory: when the covariance-aware measure is low, fine-tuning reaches
a target risk ``eps`` with far fewer samples than training from scratch. This experiment puts
numbers on it. For every spectrum (isotropic, power laws ``i^-a`` with ``a`` in 1, 1.5, 2,
spiked), dimension ``d`` and risk level ``eps = f R_0`` (``R_0 = ||theta_T||^2_Sigma``, the
risk of the zero predictor, which is normalised to 1), it computes

* ``n_eps`` for fine-tuning and for training from scratch
  (:func:`finetune_theory.linear.sample_complexity`, from the deterministic equivalent), for
  sources whose difference ``Delta = theta_S - theta_T`` sits in the ``k`` top, ``k`` tail or
  all (random) eigen-directions, at Euclidean distances ``||Delta|| = c ||theta_T||``;
* the covariance-aware measure at the sample size fine-tuning needs, normalised by the
  scratch risk there: ``m = E L_ft(n_ft) / E L_scratch(n_ft)`` (how small fine-tuning's risk
  is next to scratch's at the same ``n``; at ``n = 0`` the source risk over ``R_0``);
* at a size that fits (``sim_d``) the same from *simulation*: real fine-tuning
  (:func:`linear.simulate_risk`) on drawn Gaussian designs, the simulated ``n_eps`` taken where
  the Monte Carlo learning curve crosses ``eps``;
* with label noise, the floor: the lowest risk interpolation reaches below the rank, under
  which no ``n < r`` suffices and ``n_eps`` jumps past the rank to least squares;
* deep linear networks (:func:`deep_linear.expected_risk`) for scaled targets
  ``theta_T = alpha theta_S + xi``: the reduction at depth ``N`` and at infinite depth;
* two-layer ReLU networks: the predicted ``n_eps`` from the teacher distance
  (:func:`relu.sample_complexity_bound`) against scratch.

Cases where the source alone already meets ``eps`` (``n_eps = 0``, "the source suffices") are
recorded with ``source_suffices = True`` and kept apart in every figure and verdict; reductions
below 1 (fine-tuning needs more samples) are flagged with ``hurts = True``.

Records carry a ``kind``: ``theory``, ``simulated``, ``floor``, ``depth`` or ``relu``.
"""

from __future__ import annotations

from ..base import Experiment
from ._compute import first_below, run, run_unit
from ._figures import plot
from ._setting import (
    PARTS,
    PLACEMENTS,
    SIZES,
    SPECTRA,
    Config,
    make_covariance,
    placed_differences,
    target_teacher,
    units,
)
from ._verdicts import (
    BIG_REDUCTION,
    LOW_MEASURE,
    RANK_AGREEMENT,
    RELU_CAP,
    SIM_N_SLACK,
    SIM_N_TOL,
    SIM_RISK_TOL,
    SPREAD,
    claims,
    table,
)

__all__ = [
    "BIG_REDUCTION",
    "Config",
    "EXPERIMENT",
    "LOW_MEASURE",
    "PARTS",
    "PLACEMENTS",
    "RANK_AGREEMENT",
    "RELU_CAP",
    "SIM_N_SLACK",
    "SIM_N_TOL",
    "SIM_RISK_TOL",
    "SIZES",
    "SPECTRA",
    "SPREAD",
    "claims",
    "first_below",
    "make_covariance",
    "placed_differences",
    "plot",
    "run",
    "run_unit",
    "table",
    "target_teacher",
    "units",
]

EXPERIMENT = Experiment(
    name="reduction",
    title="E7 - the sample-complexity reduction against the covariance-aware measure",
    description=(
        "Samples needed to reach a risk, scratch over fine-tuning, against the covariance-aware "
        "measure, over spectra, placements of the difference, distances, risk levels and d; "
        "simulated points from real fine-tuning; the label-noise floor; depth and ReLU."
    ),
    config_cls=Config,
    sizes=SIZES,
    run_unit=run_unit,
    claims=claims,
    plot=plot,
    table=table,
    units=units,
)
