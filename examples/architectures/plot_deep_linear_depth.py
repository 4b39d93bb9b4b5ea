"""
Deep linear networks: depth changes what fine-tuning learns
===========================================================

A deep linear network ``W_N ... W_1 x`` fine-tuned from balanced pretrained weights keeps the
direction of ``theta_S`` it cannot see but may rescale it: the deeper the network, the more
freely (:func:`finetune_theory.deep_linear.finetune`). When the target is a scaled copy of the
source, ``theta_T = alpha theta_S + eps xi``, depth therefore lowers the risk. This example
draws the predicted risk against the number of target samples for several depths
(:func:`finetune_theory.deep_linear.expected_risk`, ``depth=np.inf`` included) and trains one
network by gradient descent to compare it with the closed form.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

from finetune_theory import covariance, deep_linear, linear, teachers

SMALL = os.environ.get("FINETUNE_THEORY_EXAMPLE_SIZE") == "test"  # tests: tiny sizes

# %%
# An isotropic target in ``d`` dimensions; the target teacher is twice the source teacher
# plus a small perturbation.
d = 40 if SMALL else 100
cov = covariance.isotropic(d)
pair = teachers.scaled_pair(d, alpha=2.0, eps=0.1, seed=0)
n = np.arange(2, d, 2 if SMALL else 4)

fig, ax = plt.subplots(figsize=(6, 4))
for depth in (1, 2, 3, 7, np.inf):
    risk = deep_linear.expected_risk(
        cov, pair.theta_source, pair.theta_target, n, depth
    )
    ax.plot(n, risk, label=f"depth {depth:g}")
scratch = linear.expected_risk(cov, np.zeros(d), pair.theta_target, n)
ax.plot(n, scratch, "k--", label="from scratch")
ax.set_xlabel("target samples n")
ax.set_ylabel("expected excess risk")
ax.set_yscale("log")
ax.legend()
fig.tight_layout()

# %%
# The same prediction at ``n = d / 10``, the setting of experiment E2 (``depth``).
n0 = d // 10
for depth in (1, 3, np.inf):
    r = deep_linear.expected_risk(cov, pair.theta_source, pair.theta_target, n0, depth)
    print(f"depth {depth:g}: predicted risk {r:.3f} at n = {n0}")

# %%
# A real network: three layers of width ``d`` with balanced weights whose end-to-end vector
# is ``theta_S``, trained by full-batch gradient descent on ``n0`` noiseless samples. Its
# end-to-end vector lands close to the closed-form limit, which describes gradient flow;
# the small remaining gap is the drift of a finite step size (it shrinks with the step).
X = cov.sample(n0, seed=1)
y = X @ pair.theta_target
weights = deep_linear.balanced_init(pair.theta_source, depth=3, width=d, seed=2)
result = deep_linear.train(X, y, weights)
limit = deep_linear.finetune(X, y, pair.theta_source, 3)
trained = result.theta
gap = np.linalg.norm(trained - limit) / np.linalg.norm(limit)
print(
    f"trained in {int(result.steps)} steps; relative distance to the closed form {gap:.1e}"
)
print(
    f"excess risk: trained {float(linear.excess_risk(cov, trained, pair.theta_target)):.4f}, "
    f"closed form {float(linear.excess_risk(cov, limit, pair.theta_target)):.4f}"
)
