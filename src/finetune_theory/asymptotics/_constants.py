"""The numerical constants of the finite-size routes, each with where its value comes from.

Most set quadrature resolutions and work sizes, not the formulas: each was chosen so that the
result moves by less than the figure quoted when the constant is made finer (docs/linear.md,
sections 3.2 and 3.3, where the comparisons are reported). Five are fitted, not derived: the
near-rank factor, its ridge fade, the taper and the two ends of the dual blend. Each one's
effect on the stored Monte Carlo grid (``tests/data/finite_size_mc.json``) when it is dropped
or moved by 10 % is measured in docs/linear.md, section 3.4, and docs/mutation.md.
"""

from __future__ import annotations

#: nodes per e-fold of the grid in ``y = log(kappa' / kappa - 1)`` of the Laplace route: the
#: cumulative Simpson rule converges as ``h^4``; 3 nodes are within 4e-4 of a grid eight
#: times finer
NODES_PER_EFOLD = 3
#: default lowest node of that grid (``log(kappa' / kappa - 1)``); lower where ``n (1 - rho)``
#: is large, so that ``int_0^{nu_1} delta`` stays below ``HEAD_MASS`` (with ``-18`` and
#: ``1e-7`` instead, every weight moves by less than 8e-7: power laws, spikes and ridge at
#: d = 60 and 300, n from 3 to d - 3)
GRID_LOW = -12.0
#: how far past each direction's decay scale the grid runs (``e^-45`` of the integrand left)
GRID_REACH = 45.0
#: most eigenvalues evaluated directly; beyond, a log-spaced set of them interpolated
#: monotonically in ``log lambda`` (against evaluating every eigenvalue, power laws
#: ``i^-0.5 .. i^-3`` at d = 300 and 1000: each weight within 2.6e-4, their totals within 3e-5;
#: 160 nodes: 1.6e-5 and 1.3e-6 at three times the cost of this step)
EVAL_EIGVALS = 64
#: cells (rows x grid nodes x directions) per vectorised block: bounds the temporaries to
#: about 32 MB each
CHUNK_CELLS = 4_000_000
#: probabilists' Gauss-Hermite nodes of the log-normal average over the scale of ``tr A``
#: (the integrand is smooth in the log-scale; 5 nodes change the weights by under 1e-4)
SCALE_NODES = 3
#: below this first-node value of ``v`` the head of the outer integral is the closed-form
#: ``P(2, v_1)``; above it (a huge ridge) the ``nu -> 0`` limit is integrated whole
HEAD_SPLIT = 1e-3
#: Gauss-Laguerre nodes of the dual route's ``v`` integral (agrees with a 300-node trapezoid
#: in ``log v`` to 1e-6 at d = 30 and 200, k = 1, 3, 9)
DUAL_NODES = 64
#: most eigenvalues at which the dual route is evaluated (the others interpolated; totals
#: within 6e-4 of evaluating every node at d = 200 and 2000)
DUAL_EIGVALS = 48
#: the near-rank factor ``1 + NEAR_RANK / (m^2 + 6)`` that divides the Laplace route's weights,
#: ``m = r - 1 - sum q`` the room left: fitted to the route's overshoot on ``i^-1`` and
#: ``i^-2`` at d = 30, 60 and 200 (+3 % at m = 9, +10 % at m = 5, +23 % at m = 3). Dropped, the
#: stored near-rank cells at d = 60 move by up to +3.5 points (to +3.8 %) and the tiny ranks
#: by up to +7.5; moved by 10 %, no stored cell by more than 0.7 points
NEAR_RANK = 3.0
#: a ridge fades the near-rank factor and the dual route by ``(1 + c0)^-RIDGE_FADE``, ``c0 = n
#: ridge / kappa``, so that the ridge path tends to the interpolation path as the ridge
#: vanishes. Dropped, the stored ridge ``1e-4`` cell at the rank's edge moves by -4 points; 4
#: -> 3 moves it by 0.4 points, no other cell at all
RIDGE_FADE = 4.0
#: below ``m = 1`` the first-order weights, from ``m = 1 + TAPER_WIDTH`` on the Laplace route,
#: linear in between. For interpolation ``m = r - 1 - n`` is a whole number, so only ``m = 2``
#: (``k = 3`` with ``n < 6``: ranks up to 8) takes a blend; a ridge makes ``m`` continuous. 2
#: -> 3 moves the stored ``i^-1``, d = 8, n = 4 cell by 4 points (-0.8 % to -5.1 % on its top
#: two directions)
TAPER_WIDTH = 2.0
#: the dual route is used alone up to this many samples below the rank ...
DUAL_FULL = 4
#: ... and blended linearly into the Laplace route until this many
DUAL_LAST = 10
#: directions below this fraction of ``kappa`` enter the Laplace grid's spectral sums through
#: a power series in ``lambda / kappa'`` (``kappa' >= kappa`` on the grid) ...
TAIL_X = 0.05
#: ... of this many terms (the first omitted term is below ``0.05^17 C(16, 2)`` = 1e-20
#: of the sum): exact to rounding, at a cost independent of ``d``
TAIL_TERMS = 16
#: the most ``int_0^{nu_1} delta`` (in units where ``delta(mu0) = 1 / kappa``) below the
#: first node, where the grid assumes ``L = 1``
HEAD_MASS = 1e-5
