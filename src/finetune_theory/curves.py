"""``risk``: the predicted learning curve of one described setting.

The setting is a target covariance (isotropic, power-law or spiked), a teacher pair
``theta_T = alpha * theta_S + perturbation * xi`` from
:func:`finetune_theory.teachers.scaled_pair`, a depth (1 is linear regression, larger or
``inf`` a deep linear network) and label noise. For each sample size ``n`` the curve gives the
expected excess risk of fine-tuning from ``theta_S`` and, as a reference, of the minimum-norm
interpolant learned from scratch (linear regression started at zero).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .exceptions import RunnerError

if TYPE_CHECKING:
    from .covariance import Covariance

__all__ = ["SPECTRA", "make_covariance", "default_sample_sizes", "learning_curve", "plot_curve"]

#: the covariance spectra a learning curve can be drawn for (``make_covariance``)
SPECTRA = ("isotropic", "power-law", "spiked")


def make_covariance(
    spectrum: str, d: int, a: float = 1.0, spikes: Sequence[float] = (10.0,)
) -> Covariance:
    """The target covariance of a named spectrum family (see :func:`covariance.family`).

    Parameters
    ----------
    spectrum : str
        The family name: ``"isotropic"``, ``"power_law"`` (or ``"power-law"``, or
        ``"power_law:<a>"`` with the exponent in the name) or ``"spiked"``.
    d : int
        Dimension.
    a : float, default 1.0
        Exponent of ``power_law`` (``lambda_i = i^-a``) when the name carries none; ignored by
        the other families.
    spikes : sequence of float, default (10.0,)
        Leading eigenvalues of ``spiked`` on a unit spectrum; ignored by the others.

    Examples
    --------
    >>> make_covariance("spiked", 4, spikes=(3.0,)).eigvals
    array([3., 1., 1., 1.])
    >>> make_covariance("power-law", 3, a=2.0).eigvals.round(4)
    array([1.    , 0.25  , 0.1111])
    """
    from . import covariance

    return covariance.family(spectrum, d, a=a, spikes=tuple(spikes))


def default_sample_sizes(d: int) -> list[int]:
    """Eight sample sizes spread geometrically from about d/50 to d/2.

    Parameters
    ----------
    d : int
        Dimension, at least 2. The sizes are distinct integers ``1 <= n < d`` (duplicates after
        rounding are dropped, so small ``d`` gives fewer than eight).

    Examples
    --------
    >>> default_sample_sizes(200)
    [4, 6, 10, 16, 25, 40, 63, 100]
    >>> default_sample_sizes(2)
    [1]
    """
    from ._validation import check_positive_int

    d = check_positive_int(d, "d", minimum=2)  # n = 1 is the only size below the rank at d = 2
    sizes = np.geomspace(min(max(2, d // 50), d - 1), max(3, d // 2), 8)
    return sorted({int(n) for n in np.round(sizes) if 1 <= n < d})


def _risks(
    cov: Any,
    theta_source: np.ndarray,
    theta_target: np.ndarray,
    ns: np.ndarray,
    depth: float,
    noise: float,
) -> np.ndarray:
    """Expected excess risks at every ``n`` in one call: linear for depth 1, deep otherwise."""
    if depth == 1:
        from . import linear

        value = linear.expected_risk(cov, theta_source, theta_target, ns, noise=noise)
    else:
        try:
            from . import deep_linear
        except ImportError as exc:
            raise RunnerError(
                f"depth > 1 needs finetune_theory.deep_linear, which cannot be imported ({exc})"
            ) from None
        value = deep_linear.expected_risk(cov, theta_source, theta_target, ns, depth, noise=noise)
    return np.atleast_1d(np.asarray(value, dtype=np.float64))


def learning_curve(
    *,
    spectrum: str = "power-law",
    d: int = 200,
    a: float = 1.0,
    spikes: Sequence[float] = (10.0,),
    depth: float = 1,
    alpha: float = 1.0,
    perturbation: float = 0.1,
    noise: float = 0.0,
    n_values: Sequence[int] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Expected excess risk against the number of target samples.

    Parameters
    ----------
    spectrum, d, a, spikes
        The target covariance: ``isotropic``, ``power-law`` (``lambda_i = i^-a``) or
        ``spiked`` (eigenvalues ``spikes`` on a flat unit spectrum).
    depth
        1 for linear regression, an integer > 1 or ``math.inf`` for a deep linear network.
    alpha, perturbation, seed
        The teachers: ``theta_T = alpha * theta_S + perturbation * xi`` (see
        :func:`finetune_theory.teachers.scaled_pair`).
    noise
        Label noise standard deviation.
    n_values
        Sample sizes (default :func:`default_sample_sizes`).

    Returns
    -------
    pandas.DataFrame
        Columns ``n``, ``fine_tuned``, ``from_scratch`` and ``gain`` (scratch / fine-tuned).

    Examples
    --------
    >>> curve = learning_curve(d=50, n_values=[5, 20], alpha=2.0)
    >>> curve["n"].tolist()
    [5, 20]
    >>> bool((curve["fine_tuned"].diff().iloc[1] < 0) and (curve["gain"] > 0).all())
    True
    """
    from ._validation import check_depth, check_nonnegative, check_positive_int

    d = check_positive_int(d, "d")
    depth = check_depth(depth)
    noise = check_nonnegative(noise, "noise")
    if n_values is None or len(n_values) == 0:
        n_values = default_sample_sizes(d)
    ns = [check_positive_int(n, "n") for n in n_values]
    cov = make_covariance(spectrum, d, a=a, spikes=spikes)
    from .teachers import scaled_pair

    pair = scaled_pair(d, alpha=alpha, eps=perturbation, seed=seed)
    source = np.asarray(pair.theta_source, dtype=np.float64)
    target = np.asarray(pair.theta_target, dtype=np.float64)
    zero = np.zeros_like(source)
    sizes = np.array(ns, dtype=np.int64)
    tuned = _risks(cov, source, target, sizes, depth, noise)
    scratch = _risks(cov, zero, target, sizes, 1, noise)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(tuned > 0, scratch / np.where(tuned > 0, tuned, 1.0), math.inf)
    return pd.DataFrame({"n": sizes, "fine_tuned": tuned, "from_scratch": scratch, "gain": gain})


def plot_curve(curve: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Draw a learning curve (log-log) to ``path``; the format follows the file suffix.

    Parameters
    ----------
    curve : pandas.DataFrame
        A learning curve as :func:`learning_curve` returns it: columns ``n``, ``fine_tuned``
        and ``from_scratch``. The risk axis is logarithmic only when every risk is positive.
    path : str or pathlib.Path
        The file to write (``~`` is expanded); its suffix (``.png``, ``.svg``, ``.pdf``, ...)
        picks the format, and its folder must exist.
    title : str, default ""
        Title of the plot; none when empty.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> out = plot_curve(learning_curve(d=40, n_values=[4, 10, 20]), folder / "curve.svg")
    >>> out.name, out.stat().st_size > 0
    ('curve.svg', True)
    >>> plot_curve(learning_curve(d=40, n_values=[4]), folder / "curve")
    Traceback (most recent call last):
    ...
    ValueError: plot file .../curve needs a suffix such as .png, .svg or .pdf
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path).expanduser()
    if not path.suffix:
        raise ValueError(f"plot file {path} needs a suffix such as .png, .svg or .pdf")
    if not path.parent.is_dir():
        raise ValueError(f"plot file {path}: the folder {path.parent} does not exist")
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    try:
        ax.plot(curve["n"], curve["fine_tuned"], "o-", label="fine-tuned from the source")
        ax.plot(curve["n"], curve["from_scratch"], "s--", label="from scratch (min-norm)")
        positive = (curve[["fine_tuned", "from_scratch"]] > 0).all(axis=None)
        ax.set_xscale("log")
        if positive:
            ax.set_yscale("log")
        ax.set_xlabel("target samples n")
        ax.set_ylabel("expected excess risk")
        if title:
            ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        try:
            fig.savefig(path)
        except ValueError as exc:  # unknown format
            raise ValueError(f"plot file {path}: {exc}") from None
    finally:
        plt.close(fig)
    return path
