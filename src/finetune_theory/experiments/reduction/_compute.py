"""E7's five parts (theory, simulated, floor, depth, ReLU) and the records they give."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import covariance as covmod
from ... import deep_linear as dl
from ... import linear, relu
from ..._numerics import TINY
from ..._random import as_generator
from ...asymptotics import deterministic_equivalent, reuse_equivalents
from ..base import run_units
from ._setting import PARTS, Config, _setting, make_covariance, target_teacher, units


def first_below(curve: np.ndarray, ns: np.ndarray, eps: float) -> int:
    """The first ``n`` of ``ns`` whose ``curve`` value is at most ``eps`` (``-1``: none).

    Parameters
    ----------
    curve : numpy.ndarray
        Risks, one per entry of ``ns``.
    ns : numpy.ndarray
        Sample sizes, increasing.
    eps : float
        The risk level.

    Returns
    -------
    int
        The sample size, or ``-1`` when no value of ``curve`` reaches ``eps``.
    """
    hits = np.flatnonzero(curve <= eps)
    return int(ns[hits[0]]) if hits.size else -1


def _reduction(n_ft: int, n_sc: int) -> float:
    if n_ft > 0:
        return n_sc / n_ft
    return math.inf if n_sc > 0 else 1.0


def _curve_record(base: dict[str, Any], n_ft: int, n_sc: int) -> dict[str, Any]:
    red = _reduction(n_ft, n_sc)
    return {
        **base,
        "n_finetune": int(n_ft),
        "n_scratch": int(n_sc),
        "reduction": float(red),
        "source_suffices": bool(n_ft == 0),
        "hurts": bool(n_ft > 0 and red < 1),
    }


def _eps_records(
    fields: dict[str, Any],
    curve: np.ndarray,
    scratch: np.ndarray,
    ns: np.ndarray,
    source_risk: float,
    eps_fractions: tuple[float, ...],
) -> list[dict[str, Any]]:
    """One record per risk level from a fine-tuning and a scratch curve over ``ns``.

    ``n_eps`` of fine-tuning is 0 where the source risk already meets the level; ``fields``
    lead each record, then ``eps_fraction``, ``source_risk``, ``measure`` and the reduction.
    """
    records = []
    for f in eps_fractions:
        n_sc = first_below(scratch, ns, f)
        n_ft = 0 if source_risk <= f else first_below(curve, ns, f)
        base = {
            **fields,
            "eps_fraction": float(f),
            "source_risk": source_risk,
            "measure": _measure(curve, scratch, n_ft, source_risk),
        }
        records.append(_curve_record(base, n_ft, n_sc))
    return records


def _theory(config: Config, spectrum: str, rng: np.random.Generator) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for d in config.dims:
        cov, tt, units_ = _setting(config, spectrum, d, config.placements, rng)
        norm_t = float(np.linalg.norm(tt))
        ns = np.arange(1, d + 1)
        # one deterministic equivalent per covariance serves every pair (noiseless: n_eps <= r)
        eq = deterministic_equivalent(cov, ns)
        scratch = eq.bias_weights @ cov.coords(tt) ** 2
        for j, where in enumerate(config.placements):
            for c in config.distances:
                delta = c * norm_t * units_[j]
                curve = eq.bias_weights @ cov.coords(delta) ** 2
                fields = {
                    "kind": "theory",
                    "spectrum": spectrum,
                    "d": d,
                    "placement": where,
                    "distance": float(c),
                    "delta_norm": float(c * norm_t),
                }
                source_risk = float(cov.quad(delta))
                records += _eps_records(
                    fields, curve, scratch, ns, source_risk, config.eps_fractions
                )
    return records


def _measure(curve: np.ndarray, scratch: np.ndarray, n_ft: int, source_risk: float) -> float:
    """Fine-tuning risk over scratch risk at ``n = n_eps(fine-tune)`` (``n = 0``: the source)."""
    if n_ft <= 0:
        return float(source_risk)
    ft, sc = float(curve[n_ft - 1]), float(scratch[n_ft - 1])
    if sc <= 0:  # at the rank both risks vanish: no advantage either way
        return 1.0 if ft <= 0 else math.inf
    return ft / sc


def _mc_crossing(
    cov: covmod.Covariance,
    start: np.ndarray,
    tt: np.ndarray,
    n_pred: int,
    eps: float,
    config: Config,
    rng: np.random.Generator,
) -> tuple[float, float, float, float]:
    """Simulated ``n_eps`` (log-linear interpolation of the Monte Carlo curve at ``eps``).

    Returns ``(n_sim, risk at n_pred, its standard error, predicted risk at n_pred)``;
    ``n_sim`` is ``nan`` when the simulated curve does not cross ``eps`` inside the grid.
    """
    lo, hi = max(1, n_pred // 3), min(cov.d, 3 * n_pred)
    ns = np.unique(np.concatenate([np.geomspace(lo, hi, config.sim_points).round(), [n_pred]]))
    ns = ns.astype(np.int64)
    sim = linear.simulate_risk(cov, start, tt, ns, repeats=config.sim_repeats, seed=rng)
    mean, stderr = np.asarray(sim.mean), np.asarray(sim.stderr)
    j = int(np.flatnonzero(ns == n_pred)[0])
    pred = float(linear.expected_risk(cov, start, tt, n_pred))
    below = np.flatnonzero(mean <= eps)
    n_sim = math.nan
    if below.size and below[0] > 0:
        i = below[0]
        x0, x1 = ns[i - 1], ns[i]
        y0, y1 = math.log(mean[i - 1]), math.log(max(mean[i], TINY))
        n_sim = float(x0 + (math.log(eps) - y0) * (x1 - x0) / (y1 - y0)) if y1 != y0 else x1
    elif below.size and ns[0] == 1:
        n_sim = 1.0
    return n_sim, float(mean[j]), float(stderr[j]), pred


def _simulated(config: Config, spectrum: str, rng: np.random.Generator) -> list[dict[str, Any]]:
    d = config.sim_d
    cov, tt, units_ = _setting(config, spectrum, d, config.sim_placements, rng)
    norm_t = float(np.linalg.norm(tt))
    eps = config.sim_eps
    zero = np.zeros(d)
    n_sc = linear.sample_complexity(cov, zero, tt, eps)
    sc = _mc_crossing(cov, zero, tt, n_sc, eps, config, rng)
    records = []
    for j, where in enumerate(config.sim_placements):
        for c in config.sim_distances:
            ts = tt + c * norm_t * units_[j]
            n_ft = linear.sample_complexity(cov, ts, tt, eps)
            if n_ft == 0:
                continue  # the source suffices: nothing to simulate
            ft = _mc_crossing(cov, ts, tt, n_ft, eps, config, rng)
            base = {
                "kind": "simulated",
                "spectrum": spectrum,
                "d": d,
                "placement": where,
                "distance": float(c),
                "eps_fraction": float(eps),
                "repeats": config.sim_repeats,
                "n_sim_finetune": ft[0],
                "n_sim_scratch": sc[0],
                "reduction_sim": sc[0] / ft[0],
                "risk_sim_finetune": ft[1],
                "se_finetune": ft[2],
                "risk_pred_finetune": ft[3],
                "risk_sim_scratch": sc[1],
                "se_scratch": sc[2],
                "risk_pred_scratch": sc[3],
            }
            records.append(_curve_record(base, n_ft, n_sc))
    return records


def _floor(config: Config, spectrum: str, rng: np.random.Generator) -> list[dict[str, Any]]:
    d = config.dims[0]
    cov, tt, (unit,) = _setting(config, spectrum, d, ("top",), rng)
    ts = tt + config.floor_distance * float(np.linalg.norm(tt)) * unit
    sigma = config.noise
    r = cov.d
    records = []
    for method, start in (("finetune", ts), ("scratch", np.zeros(d))):
        # n = 0 is the start itself: the floor is the lowest risk any n below the rank offers
        ns = np.arange(0, r)
        curve = np.concatenate(
            [
                [float(cov.quad(start - tt))],
                linear.expected_risk(cov, start, tt, ns[1:], noise=sigma),
            ]
        )
        floor = float(np.min(curve))
        for factor in config.floor_factors:
            eps = factor * floor
            n_eps = linear.sample_complexity(cov, start, tt, eps, noise=sigma)
            records.append(
                {
                    "kind": "floor",
                    "spectrum": spectrum,
                    "d": d,
                    "method": method,
                    "noise": sigma,
                    "floor": floor,
                    "n_floor": int(ns[np.argmin(curve)]),
                    "rank": r,
                    "factor": float(factor),
                    "eps": float(eps),
                    "n_eps": int(n_eps),
                    "least_squares_n": float(r + 1 + sigma**2 * r / eps),
                }
            )
    return records


def _depth(config: Config, rng: np.random.Generator) -> list[dict[str, Any]]:
    d = config.depth_d
    ns = np.arange(1, d + 1)
    records = []
    for spectrum in config.depth_spectra:
        cov = make_covariance(spectrum, d, config.spikes)
        ts = target_teacher(cov, config.target_decay, rng)
        ts /= np.linalg.norm(ts)
        xi = rng.standard_normal(d)
        xi *= config.xi / np.linalg.norm(xi)
        for alpha in config.alphas:
            tt = alpha * ts + xi
            r0 = float(cov.quad(tt))
            scratch = np.atleast_1d(linear.expected_risk(cov, np.zeros(d), tt, ns)) / r0
            source_risk = float(cov.quad(ts - tt)) / r0
            for depth in config.depths:
                curve = np.atleast_1d(dl.expected_risk(cov, ts, tt, ns, depth)) / r0
                fields = {
                    "kind": "depth",
                    "spectrum": spectrum,
                    "d": d,
                    "alpha": float(alpha),
                    "depth": float(depth),
                }
                records += _eps_records(
                    fields, curve, scratch, ns, source_risk, config.eps_fractions
                )
    return records


def _relu(config: Config) -> list[dict[str, Any]]:
    records = []
    for eps in config.relu_eps:
        n_sc = int(relu.sample_complexity_bound(1.0, eps))
        n_zero = int(relu.sample_complexity_bound(0.0, eps))
        for dist in config.relu_distances:
            n_ft = int(relu.sample_complexity_bound(dist, eps))
            base = {
                "kind": "relu",
                "distance": float(dist),
                "eps": float(eps),
                "n_source_exact": n_zero,
                "data_term_ratio": float(1.0 / dist**2),
            }
            records.append(_curve_record(base, n_ft, n_sc))
    return records


def run_unit(config: Config, seed: int) -> list[dict[str, Any]]:
    """Compute one unit of E7 (one part, and spectrum for the linear parts) from its own seed.

    Parameters
    ----------
    config : Config
        The unit (a larger sweep is split by :func:`units` and its units run in turn, all
        from the one generator).
    seed : int
        The unit's seed.

    Returns
    -------
    list of dict
        The tidy records of the unit.

    Raises
    ------
    ValueError
        If ``config.part`` is neither ``all`` nor one of :data:`PARTS`.
    """
    rng = as_generator(seed)
    # the curves of a unit share covariances and sizes: the depth part reads every curve of a
    # spectrum (scratch and each depth, at every alpha) off one deterministic equivalent, and
    # the sample-size searches of the simulated and floor parts ask for the same sizes again
    with reuse_equivalents():
        return _run_parts(config, rng)


def _run_parts(config: Config, rng: np.random.Generator) -> list[dict[str, Any]]:
    """The records of every unit of ``config``, in order, drawing from ``rng``."""
    records: list[dict[str, Any]] = []
    for unit in units(config):
        if unit.part == "theory":
            records += _theory(unit, unit.spectra[0], rng)
        elif unit.part == "simulated":
            records += _simulated(unit, unit.spectra[0], rng)
        elif unit.part == "floor":
            records += _floor(unit, unit.spectra[0], rng)
        elif unit.part == "depth":
            records += _depth(unit, rng)
        elif unit.part == "relu":
            records += _relu(unit)
        else:
            raise ValueError(f"part must be 'all' or one of {PARTS}, got {unit.part!r}")
    return records


def run(config: Config, seed: int) -> list[dict[str, Any]]:
    """Every unit of ``config``, each with its own seed (:func:`~.base.run_units`).

    Exactly the records of ``EXPERIMENT.run_all(config, seed)`` and of the runner's sweep.

    Parameters
    ----------
    config : Config
        The sweep to run.
    seed : int
        The root seed; unit ``i`` runs with ``unit_seeds(seed, len(units(config)))[i]``.

    Returns
    -------
    list of dict
        The tidy records of every unit, in unit order.
    """
    return run_units(units, run_unit, config, seed)
