"""Private helpers shared by the deep-linear experiments (E2 depth, E3 scaling, E4 freezing).

Every helper works on a batch of independent repeats (leading axis ``B``): teachers, designs,
training and the closed form are drawn or computed for all repeats at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import deep_linear as dl
from .. import linear
from .._numerics import TINY, pinv
from ..covariance import Covariance

__all__ = [
    "design",
    "fitted_scale",
    "train_and_compare",
    "mean_se",
    "mean_se_columns",
    "RISK_COLUMNS",
    "depth_axis",
]

#: the relative risks every deep-linear experiment summarises
RISK_COLUMNS = ("rel_trained", "rel_closed", "rel_asymptotic")


def design(
    cov: Covariance, theta_target: np.ndarray, n: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inputs ``(B, n, d)`` and labels ``theta_T^T x + noise`` for each repeat."""
    b = theta_target.shape[0]
    x = cov.sample(n, seed=rng, batch=b)
    y = np.matmul(x, theta_target[:, :, None])[:, :, 0]
    if noise > 0:
        y = y + noise * rng.standard_normal((b, n))
    return x, y


def fitted_scale(theta: np.ndarray, X: np.ndarray, y: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The scale ``s`` that best writes ``theta - X^+ y`` as ``s P_perp theta_S`` (per repeat)."""
    inv = pinv(X)
    sol = np.matmul(inv, y[:, :, None])[:, :, 0]
    seen = np.matmul(inv, np.matmul(X, source[:, :, None]))[:, :, 0]
    perp = source - seen
    norm = np.sum(perp * perp, axis=1)
    return np.sum((theta - sol) * perp, axis=1) / np.where(norm > 0, norm, 1.0)


def train_and_compare(
    weights: list[np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    depth: int,
    *,
    lr_fraction: float,
    frozen: Sequence[int] | Sequence[Sequence[int]] = (),
    closed: np.ndarray | None = None,
    max_steps: int = 500_000,
    strict: bool = True,
) -> dict[str, np.ndarray]:
    """Train a batch of networks and compare the end-to-end vectors with the closed form.

    ``closed`` is the closed-form vector to compare with; by default :func:`deep_linear.finetune`
    from the networks' own starting end-to-end vector at this depth.
    """
    source = dl.end_to_end(weights)
    lr = dl.default_lr(X, y, weights, frozen=frozen, fraction=lr_fraction)
    result = dl.train(X, y, weights, lr=lr, frozen=frozen, max_steps=max_steps, strict=strict)
    theta = result.theta
    assert theta is not None  # a deep linear network's result carries its end-to-end vector
    if closed is None:
        closed = dl.finetune(X, y, source, depth)
    gap = np.linalg.norm(theta - closed, axis=1) / np.maximum(
        np.linalg.norm(closed, axis=1), TINY
    )
    return {
        "theta": theta,
        "closed": closed,
        "gap": gap,
        "steps": result.steps,
        "lr": result.lr,
        "interpolated": result.interpolated,
        "converged": result.converged,
        "scale": fitted_scale(theta, X, y, source),
    }


def risks(cov: Covariance, theta: np.ndarray, theta_target: np.ndarray) -> np.ndarray:
    """Excess risk of each repeat's vector."""
    return np.asarray(linear.excess_risk(cov, theta, theta_target), dtype=np.float64)


def mean_se(frame: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    """Mean and standard error of ``column`` over repeats, per group of ``keys``."""
    g = frame.groupby(keys, sort=True)[column]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["se"] = out["std"].fillna(0.0) / np.sqrt(out["count"])
    return out


def mean_se_columns(
    frame: pd.DataFrame, keys: list[str], columns: Sequence[str] = RISK_COLUMNS
) -> pd.DataFrame:
    """One row per group of ``keys``: the mean of each column and its s.e. as ``<column>_se``."""
    out = None
    for col in columns:
        s = mean_se(frame, keys, col)[[*keys, "mean", "se"]]
        s = s.rename(columns={"mean": col, "se": f"{col}_se"})
        out = s if out is None else out.merge(s, on=keys)
    assert out is not None
    return out


def depth_axis(depths: Any) -> tuple[np.ndarray, float]:
    """Plot positions for depths (infinity drawn two steps right of the deepest finite one)."""
    arr = np.asarray(depths, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    inf_at = (finite.max() if finite.size else 1.0) + 2.0
    return np.where(np.isfinite(arr), arr, inf_at), float(inf_at)
