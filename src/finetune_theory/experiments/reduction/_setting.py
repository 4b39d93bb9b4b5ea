"""E7's settings: the config, its sizes, the covariances and teachers, the units of work."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ... import covariance as covmod

#: the spectra of the sweep, as names for covariance.family ("power_law:a" gives the exponent)
SPECTRA = ("isotropic", "power_law:1", "power_law:1.5", "power_law:2", "spiked")
#: where the source-target difference lies: top, random or tail eigen-directions
PLACEMENTS = ("top", "random", "tail")
#: the five parts of the experiment, each a kind of record
PARTS = ("theory", "simulated", "floor", "depth", "relu")


@dataclass(frozen=True)
class Config:
    """Settings of E7.

    Parameters
    ----------
    dims : tuple of int, default (200, 1000)
        Dimensions of the theory curves.
    spectra : tuple of str, default :data:`SPECTRA`
        ``isotropic``, ``spiked`` or ``power_law:<a>``.
    spikes : tuple of float, default (40.0, 20.0, 10.0, 5.0)
        Leading eigenvalues of the spiked spectrum (on a unit spectrum).
    placements : tuple of str, default :data:`PLACEMENTS`
        Where the difference lies: ``top`` / ``tail`` (``k`` eigen-directions) or ``random``.
    k : int, default 10
        Directions spanned by a top or tail difference (at most ``d // 4``).
    distances : tuple of float, default (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
        ``||Delta|| / ||theta_T||``.
    eps_fractions : tuple of float, default (0.2, 0.1, 0.05)
        ``eps / R_0``.
    target_decay : float, default 1.0
        The target's ``Sigma``-energy on the ``i``-th eigen-direction falls like
        ``i^-target_decay`` (on average), so that the scratch problem is not trivial.
    sim_d : int, default 200
        Dimension of the simulated part.
    sim_repeats : int, default 24
        Monte Carlo designs per point of a simulated learning curve.
    sim_points : int, default 7
        Points of each simulated learning curve, spread geometrically over ``[n/3, 3n]``
        around the predicted ``n_eps`` (which is added to them).
    sim_eps : float, default 0.1
        Risk level ``eps / R_0`` of the simulated part.
    sim_distances : tuple of float, default (0.1, 0.3, 1.0)
        Distances ``||Delta|| / ||theta_T||`` simulated.
    sim_placements : tuple of str, default ("top", "random")
        Placements simulated.
    noise : float, default 0.3
        Label-noise standard deviation of the floor part (``R_0 = 1``).
    floor_distance : float, default 0.3
        Distance ``||Delta|| / ||theta_T||`` of the floor part's (top-placed) source.
    floor_factors : tuple of float, default (0.5, 0.9, 1.1, 2.0)
        The floor part asks for ``eps`` at these multiples of the floor.
    depth_d : int, default 200
        Dimension of the deep-linear part.
    depths : tuple of float, default (1, 2, 5, 10, math.inf)
        Depths of the deep-linear part (``math.inf`` allowed).
    alphas : tuple of float, default (0.5, 2.0, 4.0)
        Scales ``alpha`` of the deep-linear targets ``theta_T = alpha theta_S + xi``.
    xi : float, default 0.1
        Norm of the perturbation ``xi`` relative to ``||theta_S|| = 1``.
    depth_spectra : tuple of str, default ("isotropic", "power_law:1")
        Spectra of the deep-linear part.
    relu_distances : tuple of float, default (0.01, 0.03, 0.1, 0.3, 1.0)
        Teacher distances ``||theta_T - theta_S||`` of the ReLU part (with ``||theta_T|| = 1``).
    relu_eps : tuple of float, default (0.5, 0.3, 0.2)
        Risk levels of the ReLU part.
    part : str, default "all"
        ``all`` or one of ``theory``, ``simulated``, ``floor``, ``depth``, ``relu``.
    """

    dims: tuple[int, ...] = (200, 1000)
    spectra: tuple[str, ...] = SPECTRA
    spikes: tuple[float, ...] = (40.0, 20.0, 10.0, 5.0)
    placements: tuple[str, ...] = PLACEMENTS
    k: int = 10
    distances: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
    eps_fractions: tuple[float, ...] = (0.2, 0.1, 0.05)
    target_decay: float = 1.0
    sim_d: int = 200
    sim_repeats: int = 24
    sim_points: int = 7
    sim_eps: float = 0.1
    sim_distances: tuple[float, ...] = (0.1, 0.3, 1.0)
    sim_placements: tuple[str, ...] = ("top", "random")
    noise: float = 0.3
    floor_distance: float = 0.3
    floor_factors: tuple[float, ...] = (0.5, 0.9, 1.1, 2.0)
    depth_d: int = 200
    depths: tuple[float, ...] = (1, 2, 5, 10, math.inf)
    alphas: tuple[float, ...] = (0.5, 2.0, 4.0)
    xi: float = 0.1
    depth_spectra: tuple[str, ...] = ("isotropic", "power_law:1")
    relu_distances: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
    relu_eps: tuple[float, ...] = (0.5, 0.3, 0.2)
    part: str = "all"


SIZES = {
    "quick": Config(
        dims=(200,),
        spectra=("isotropic", "power_law:1", "power_law:2", "spiked"),
        k=5,
        sim_d=60,
        sim_repeats=24,
        sim_points=5,
        depth_d=60,
        alphas=(0.5, 2.0),
        depths=(1, 3, math.inf),
        depth_spectra=("power_law:1",),
    ),
    "default": Config(),
    "paper": Config(dims=(200, 500, 1000, 2000), sim_repeats=100, sim_points=11),
}


# ------------------------------------------------------------------ settings
def make_covariance(spectrum: str, d: int, spikes: tuple[float, ...] = (40.0, 20.0, 10.0, 5.0)):
    """The covariance named ``spectrum`` (``power_law:<a>`` carries its exponent).

    Parameters
    ----------
    spectrum : str
        ``isotropic``, ``spiked`` or ``power_law:<a>`` (see
        :func:`finetune_theory.covariance.family`).
    d : int
        Dimension.
    spikes : tuple of float, default (40.0, 20.0, 10.0, 5.0)
        Leading eigenvalues of the ``spiked`` spectrum.

    Returns
    -------
    finetune_theory.covariance.Covariance
    """
    return covmod.family(spectrum, d, spikes=spikes)


def target_teacher(cov: covmod.Covariance, decay: float, rng: np.random.Generator) -> np.ndarray:
    """A target with ``E lambda_i <theta_T, v_i>^2 ~ i^-decay``, scaled to ``R_0 = 1``.

    Parameters
    ----------
    cov : finetune_theory.covariance.Covariance
        The covariance (eigenvalues ``lambda_i``, eigenvectors ``v_i``; a zero eigenvalue
        counts as 1 in the draw).
    decay : float
        Exponent of the decay of the target's ``Sigma``-energy along the eigen-directions.
    rng : numpy.random.Generator
        Source of the Gaussian coordinates.

    Returns
    -------
    numpy.ndarray
        Shape ``(d,)``, with ``||theta_T||^2_Sigma = 1``.
    """
    index = np.arange(1, cov.d + 1, dtype=np.float64)
    lam = np.where(cov.eigvals > 0, cov.eigvals, 1.0)
    coords = rng.standard_normal(cov.d) * np.sqrt(index**-decay / lam)
    theta = cov.from_coords(coords)
    return theta / math.sqrt(float(cov.quad(theta)))


def placed_differences(
    cov: covmod.Covariance,
    placements: tuple[str, ...],
    k: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Unit differences, one per placement, shape ``(len(placements), d)``.

    Parameters
    ----------
    cov : finetune_theory.covariance.Covariance
        The covariance whose eigen-directions place the differences.
    placements : tuple of str
        Each ``top`` (the ``k`` leading eigen-directions), ``tail`` (the ``k`` last) or
        ``random`` (all of them), with Gaussian coordinates there.
    k : int
        Directions spanned by a top or tail difference.
    rng : numpy.random.Generator
        Source of the coordinates (``d`` normal draws per placement).

    Returns
    -------
    numpy.ndarray
        Shape ``(len(placements), d)``, each row of Euclidean norm 1.

    Raises
    ------
    ValueError
        If a placement is not one of :data:`PLACEMENTS`.
    """
    out = np.zeros((len(placements), cov.d))
    for j, where in enumerate(placements):
        coords = np.zeros(cov.d)
        g = rng.standard_normal(cov.d)
        if where == "top":
            coords[:k] = g[:k]
        elif where == "tail":
            coords[cov.d - k :] = g[:k]
        elif where == "random":
            coords = g
        else:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {where!r}")
        out[j] = cov.from_coords(coords / np.linalg.norm(coords))
    return out


def _setting(
    config: Config, spectrum: str, d: int, placements: tuple[str, ...], rng: np.random.Generator
) -> tuple[covmod.Covariance, np.ndarray, np.ndarray]:
    """Covariance, target teacher and unit differences (one per placement) of one case.

    Draws the target before the differences, from ``rng``; a top or tail difference spans
    ``min(config.k, d // 4)`` directions.
    """
    cov = make_covariance(spectrum, d, config.spikes)
    tt = target_teacher(cov, config.target_decay, rng)
    return cov, tt, placed_differences(cov, placements, min(config.k, d // 4), rng)


def units(config: Config) -> list[Config]:
    """One unit per (part, spectrum) for the linear parts, one each for depth and ReLU.

    Parameters
    ----------
    config : Config
        The sweep to split (its ``part`` selects the parts).

    Returns
    -------
    list of Config
        The units, in order; splitting a unit again gives that unit alone.
    """
    parts = PARTS if config.part == "all" else (config.part,)
    out = []
    for p in parts:
        if p in ("theory", "simulated", "floor"):
            out += [dataclasses.replace(config, spectra=(s,), part=p) for s in config.spectra]
        else:
            out.append(dataclasses.replace(config, part=p))
    return out
