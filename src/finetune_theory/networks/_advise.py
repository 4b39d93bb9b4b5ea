"""The advisor with a pretrained network as the source: last-layer and linearised fine-tuning.

Private to :mod:`finetune_theory.networks`. :func:`advise` hands the network's penultimate
features and its head to :func:`finetune_theory.advisor.advise` (so the advisor's strategies
read as strategies for the head: ``as_is`` is the network unchanged, ``refit_intercept`` the
head's bias alone, ``finetune_ridge`` / ``finetune`` the head fine-tuned with its intercept
refitted, ``scratch`` a new head on the frozen features) and adds the network's own
strategies, predicted by the learning curve of :mod:`._curve`:

``finetune_last_layer``
    gradient descent on the head (weights and bias) from the source head, on the
    penultimate features: the feature spectrum from every input given, the residual profile
    from the labelled rows;
``finetune_linearised``
    gradient descent on every chosen parameter, in the linearisation at the pretrained
    weights: kernel regression of the residual with the empirical NTK (its spectrum on every
    input given, Nystrom above ``landmarks``);
``finetune_network`` (``train=True``)
    real gradient descent on every chosen parameter: the linearised curve times the ratio of
    the real network's cross-validated test MSE to the linearised network's, both trained for
    the same time on the same folds of the labelled rows.

All three take the user's ridge towards the source or early-stopping time, as the linear
advisor does (``ridge = 0``, ``time = None``: to zero training loss). They join the advisor's
table of that call only (the ``strategies`` argument of
:func:`finetune_theory.advisor.advise`; the registry is left as it is); the returned
:class:`~finetune_theory.advisor.Advice` keeps them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._numerics import TINY
from .._validation import as_array, check_nonnegative, check_positive_int
from ..advisor import MODEL_SE, Advice, Strategy
from ..advisor import advise as advise_linear
from ._core import as_tensor, functional, to_numpy, torch_module
from ._curve import (
    ResidualProfile,
    feature_spectrum,
    fit_residual_profile,
    predict_from_profile,
    residual_profile,
)
from ._linearised import kernel_finetune, penultimate_features, train
from ._ntk import empirical_ntk

__all__ = ["advise", "NETWORK_STRATEGIES"]

#: the strategies :func:`advise` adds to the advisor's (the last only with ``train=True``)
NETWORK_STRATEGIES = ("finetune_last_layer", "finetune_linearised", "finetune_network")


class _CurveStrategy(Strategy):
    """A strategy predicted by a network learning curve: one residual profile per source."""

    def __init__(self, profiles: dict[str, ResidualProfile], ridge: float,
                 time: float | None, scale: float = 1.0) -> None:
        self.profiles = profiles
        self.ridge = ridge
        self.time = time
        self.scale = scale

    def median(self, engine: Any, source: str | None, ns: np.ndarray) -> np.ndarray:
        if source not in self.profiles:
            raise ValueError(f"strategy {self.name!r} has no network for source {source!r}")
        sizes = np.maximum(np.asarray(ns, dtype=np.int64).reshape(-1), 1)
        curve = predict_from_profile(self.profiles[source], sizes, ridge=self.ridge,
                                     time=self.time)
        return self.scale * curve.mse.reshape(np.shape(ns))

    def log_se(self, engine: Any, source: str | None, ns: np.ndarray) -> np.ndarray:
        """The advisor's default, plus (to zero training loss, ridge 0) half the share of
        noise in the risk, as for ``finetune``: interpolation varies most from draw to draw
        where its noise term is large."""
        out = super().log_se(engine, source, ns)
        if self.ridge > 0 or self.time is not None or source not in self.profiles:
            return out
        total = self.median(engine, source, ns)
        noise = self.profiles[source].noise_var
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(np.isfinite(total) & (total > 0), noise / total, 1.0)
        return out + 0.5 * np.clip(share, 0.0, 1.0)


class FinetuneLastLayer(_CurveStrategy):
    name = "finetune_last_layer"
    abbrev = "head"
    simplicity = 5.5
    fits = "the network's head (weights and bias), gradient descent from the source head"


class FinetuneLinearised(_CurveStrategy):
    name = "finetune_linearised"
    abbrev = "ntk"
    simplicity = 6.0
    fits = "every network weight, linearised at the pretrained weights (empirical NTK)"


class FinetuneNetwork(_CurveStrategy):
    name = "finetune_network"
    abbrev = "net"
    simplicity = 7.0
    fits = "every network weight, real gradient descent (scaled by cross-validation)"
    #: log-scale error of the cross-validated ratio (set by :func:`advise`)
    ratio_se: float = MODEL_SE

    def log_se(self, engine: Any, source: str | None, ns: np.ndarray) -> np.ndarray:
        """The linearised route's, plus the error of the cross-validated ratio."""
        return np.sqrt(super().log_se(engine, source, ns) ** 2 + self.ratio_se**2)


def _stack(a: ArrayLike, b: ArrayLike | None) -> np.ndarray:
    left = np.asarray(a, dtype=np.float64)
    return left if b is None else np.concatenate([np.asarray(b, dtype=np.float64), left])


def _cv_ratio(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    folds: int,
    max_steps: int,
    lr_fraction: float,
    parameters: str | Sequence[str],
    output: int | None,
    method: str,
    device: Any,
    seed: Any,
) -> tuple[float, float, float]:
    """Real against linearised fine-tuning, cross-validated on the labelled rows.

    Every fold trains on the other rows (real gradient descent, all folds in one batch,
    ``max_steps`` steps of ``lr_fraction / lambda_max(K / n)``) and the linearised network
    for the same time; returns the ratio of their pooled held-out MSEs, its standard error on
    the log scale (over folds) and the gradient-flow time used.
    """
    torch = torch_module()
    n = y.size
    k = min(folds, n)
    order = np.random.default_rng(np.random.SeedSequence(seed)).permutation(n)
    held = np.array_split(order, k)
    train_idx = [np.setdiff1d(order, h) for h in held]
    fn = functional(model, parameters, output=output, device=device)
    x = as_tensor(X, "X", dtype=fn.dtype, device=device)
    with torch.no_grad():
        f_s = to_numpy(fn(fn.params, x))
    opts = {"parameters": parameters, "output": output, "method": method, "device": device}
    K = empirical_ntk(model, x, **opts)
    rows = max(len(t) for t in train_idx)
    lam = max(float(np.linalg.eigvalsh(K[np.ix_(t, t)])[-1]) / len(t) for t in train_idx)
    lr = lr_fraction / lam
    xb = np.zeros((k, rows, *X.shape[1:]))
    yb = np.zeros((k, rows))
    counts = np.empty(k, dtype=np.int64)
    for i, t in enumerate(train_idx):
        xb[i, : len(t)], yb[i, : len(t)], counts[i] = X[t], y[t], len(t)
    res = train(model, xb, yb, lr=lr, max_steps=max_steps, parameters=parameters,
                output=output, rows=counts, device=device)
    out = res.outputs(model, X, output=output)
    real, lin = np.empty(k), np.empty(k)
    for i, (t, h) in enumerate(zip(train_idx, held, strict=True)):
        fit = kernel_finetune(K[np.ix_(t, t)], K[np.ix_(h, t)], y[t], f_s[t], f_s[h],
                              time=float(res.time[i]))
        real[i] = np.mean((out[i, h] - y[h]) ** 2)
        lin[i] = np.mean((fit.predictions - y[h]) ** 2)
    ratio = float(real.sum() / max(lin.sum(), TINY))
    logs = np.log(np.maximum(real, TINY) / np.maximum(lin, TINY))
    se = float(logs.std(ddof=1) / math.sqrt(k)) if k > 1 else float("inf")
    return ratio, se, float(res.time[0])


def advise(
    network: Any,
    X: ArrayLike,
    y: ArrayLike,
    *,
    X_unlabelled: ArrayLike | None = None,
    name: str = "network",
    parameters: str | Sequence[str] = "all",
    output: int | None = None,
    layer: str | None = None,
    ridge: float = 0.0,
    time: float | None = None,
    train_network: bool = False,
    max_steps: int = 200,
    lr_fraction: float = 0.5,
    folds: int = 5,
    landmarks: int = 1000,
    seed: Any = 0,
    method: str = "auto",
    device: Any = "cpu",
    eps: float | None = None,
    n_max: int | None = None,
    confidence: float = 0.8,
    misspecification: bool = True,
) -> Advice:
    """The advisor's table for a pretrained network: head, linearised and real fine-tuning.

    Parameters
    ----------
    network : torch.nn.Module or mapping
        The pretrained network (one output per row, or choose ``output``), or a head on
        features the user computed: ``{"coef": weights, "intercept": bias}``, with ``X`` (and
        ``X_unlabelled``) the feature matrix (then only ``finetune_last_layer`` joins the
        advisor's strategies).
    X : array-like or tensor, shape (n, ...)
        Labelled target inputs as the network takes them (or features, see above).
    y : array-like, shape (n,)
        Their labels.
    X_unlabelled : array-like or tensor, shape (m, ...), optional
        Target inputs without labels: with the labelled ones, the spectrum of the features
        and of the kernel (the predictions beyond the labelled ``n`` need a few times more
        inputs than the largest ``n`` asked about).
    name : str
        The source's name in the table.
    parameters, output, layer, method, landmarks, seed, device
        As in :func:`predict_curve` (``parameters``: the weights of linearised and real
        fine-tuning; ``layer``: the head).
    ridge : float
        Ridge towards the source of the network strategies (0: to zero training loss).
    time : float, optional
        Early stopping of the network strategies: gradient-flow time ``lr * steps``.
    train_network : bool
        Also really fine-tune the network (``finetune_network``): ``folds``-fold
        cross-validation of ``max_steps`` gradient-descent steps of ``lr_fraction /
        lambda_max(K / n)`` against the linearised network for the same time.
    max_steps : int, default 200
        With ``train_network``: gradient-descent steps of each fold.
    lr_fraction : float, default 0.5
        With ``train_network``: the step size as a fraction of ``1 / lambda_max(K / n)``.
    folds : int, default 5
        With ``train_network``: folds of the cross-validation (at least 2; at most one per
        labelled row).
    eps, n_max, confidence, misspecification
        As in :func:`finetune_theory.advisor.advise`.

    Returns
    -------
    Advice
        The advisor's result, its strategies including the network's.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    >>> rng = np.random.default_rng(0)
    >>> U, X = rng.standard_normal((300, 4)), rng.standard_normal((40, 4))
    >>> y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(40)
    >>> advice = advise(net, X, y, X_unlabelled=U, name="mlp")
    >>> [k for k in advice.strategies if k.startswith("finetune_")]
    ['finetune_ridge', 'finetune_last_layer', 'finetune_linearised']
    >>> risk = advice.predict_risk("mlp", "finetune_linearised", 40)
    >>> bool(risk < advice.predict_risk("mlp", "as_is", 40))
    True
    >>> from finetune_theory.advisor import registered
    >>> "finetune_linearised" in registered()  # for this call only: the registry is untouched
    False
    """
    torch = None if isinstance(network, Mapping) else torch_module()
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    lam = check_nonnegative(ridge, "ridge")
    if time is not None and not (time > 0 and math.isfinite(time)):
        raise ValueError(f"time must be positive and finite (or None), got {time!r}")
    if time is not None and lam > 0:
        raise ValueError("give ridge or time, not both")
    if torch is None:
        if train_network:
            raise ValueError("train_network needs a network, not a head on features")
        if "coef" not in network:
            raise ValueError("a head on features is a mapping with 'coef' (and 'intercept')")
        feats = as_array(X, "X", min_ndim=2, max_ndim=2)
        feats_u = None if X_unlabelled is None else as_array(X_unlabelled, "X_unlabelled",
                                                             min_ndim=2, max_ndim=2)
        coef = as_array(network["coef"], "coef", min_ndim=1, max_ndim=1)
        if coef.size != feats.shape[1]:
            raise ValueError(f"the head has {coef.size} weights for {feats.shape[1]} features")
        intercept = float(network.get("intercept", 0.0))
    else:
        if not isinstance(network, torch.nn.Module):
            raise TypeError("network must be a torch.nn.Module or a mapping {'coef', "
                            f"'intercept'}}, got {type(network).__name__}")
        pen = penultimate_features(network, X, layer=layer, output=output, device=device)
        feats, coef, intercept = pen.features, pen.coef, pen.intercept
        feats_u = None if X_unlabelled is None else penultimate_features(
            network, X_unlabelled, layer=layer, output=output, device=device).features
    lab = as_array(y, "y", min_ndim=1, max_ndim=1)
    if lab.size != feats.shape[0]:
        raise ValueError(f"y has {lab.size} values for {feats.shape[0]} labelled rows")
    # the head's route: explicit features with a constant, every input for the spectrum
    ones = np.ones((feats.shape[0], 1))
    design = np.hstack([feats, ones])
    spec = feature_spectrum(design if feats_u is None else
                            np.vstack([np.hstack([feats_u, np.ones((feats_u.shape[0], 1))]),
                                       design]))
    resid = lab - (feats @ coef + intercept)
    strategies: list[Strategy] = [FinetuneLastLayer(
        {name: fit_residual_profile(spec, spec.coords(design), resid, route="last")},
        lam, time)]
    if torch is not None:
        inputs = _stack(X, X_unlabelled)
        xl = np.asarray(X, dtype=np.float64)
        full = residual_profile(network, inputs, xl, lab, route="full", parameters=parameters,
                                output=output, landmarks=landmarks, seed=seed, method=method,
                                device=device)
        strategies.append(FinetuneLinearised({name: full}, lam, time))
        if train_network:
            steps = check_positive_int(max_steps, "max_steps")
            n_folds = check_positive_int(folds, "folds", minimum=2)
            ratio, se, cv_time = _cv_ratio(network, xl, lab, folds=n_folds, max_steps=steps,
                                      lr_fraction=float(lr_fraction), parameters=parameters,
                                      output=output, method=method, device=device, seed=seed)
            net_strategy = FinetuneNetwork({name: full}, lam, time, scale=ratio)
            net_strategy.ratio_se = math.hypot(se, MODEL_SE) if math.isfinite(se) else se
            strategies.append(net_strategy)
    source = {"coef": coef, "intercept": intercept}
    advice = advise_linear(feats, lab, {name: source}, X_unlabelled=feats_u, eps=eps,
                           n_max=n_max, confidence=confidence,
                           misspecification=misspecification, strategies=strategies)
    what = "a network's" if torch is not None else "the given"
    advice.assumptions.append(
        f"The advisor's strategies act on {what} penultimate features ({feats.shape[1]} of "
        "them) with the head as the source: 'as_is' is the network unchanged, 'scratch' a new "
        "head on the frozen features. 'finetune_last_layer'"
        + (", 'finetune_linearised'" if torch is not None else "")
        + " are predicted by the deterministic equivalent on the "
        f"{'features' if torch is None else 'features and the empirical NTK'} at the "
        f"pretrained weights, spectrum from {spec.n_inputs} inputs"
        + (f", {'ridge ' + format(lam, 'g') if lam > 0 else ''}"
           f"{'early stopping at time ' + format(time, 'g') if time is not None else ''}"
           if lam > 0 or time is not None else ", run to zero training loss")
        + "."
    )
    if train_network:
        advice.assumptions.append(
            f"'finetune_network' is the linearised curve times {ratio:.3g}, the ratio of the "
            "real network's to the linearised network's held-out MSE over "
            f"{min(folds, lab.size)} folds of the labelled rows ({max_steps} steps of gradient "
            f"descent, time {cv_time:.3g})."
        )
    return advice
