"""
Linear regression: a predicted learning curve against Monte Carlo
=================================================================

Fine-tuning a linear model is gradient descent on the target samples started from the source
weights ``theta_S``. Its limit has a closed form (:func:`finetune_theory.linear.finetune`),
and its expected excess risk on a target with covariance ``Sigma`` is predicted by
:func:`finetune_theory.linear.expected_risk` without drawing a single sample. This example
compares the prediction with a Monte Carlo estimate, for fine-tuning and for training from
scratch (``theta_S = 0``), and checks the closed form against a real gradient-descent run.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

from finetune_theory import covariance, linear, teachers

SMALL = os.environ.get("FINETUNE_THEORY_EXAMPLE_SIZE") == "test"  # tests: tiny sizes

# %%
# The setting: a power-law target covariance (``lambda_i = 1/i``) and a source that differs
# from the target only in the ten directions of largest variance.
d = 50 if SMALL else 200
cov = covariance.power_law(d, a=1.0)
pair = teachers.placed_pair(cov, distance=1.0, where="top", k=10, seed=0)
n = np.arange(5, d, 10 if SMALL else 5)

# %%
# Predicted and simulated risks. ``expected_risk`` takes the whole vector of sample sizes at
# once; ``simulate_risk`` draws ``repeats`` target samples of each size.
repeats = 20 if SMALL else 100
risk_ft = linear.expected_risk(cov, pair.theta_source, pair.theta_target, n)
risk_sc = linear.expected_risk(cov, np.zeros(d), pair.theta_target, n)
sim_ft = linear.simulate_risk(
    cov, pair.theta_source, pair.theta_target, n, repeats=repeats
)
sim_sc = linear.simulate_risk(
    cov, np.zeros(d), pair.theta_target, n, repeats=repeats, seed=1
)

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(n, risk_ft, color="C0", label="fine-tuning, predicted")
ax.errorbar(
    n,
    sim_ft.mean,
    yerr=2 * sim_ft.stderr,
    fmt="o",
    ms=3,
    color="C0",
    label="fine-tuning, Monte Carlo",
)
ax.plot(n, risk_sc, color="C1", label="from scratch, predicted")
ax.errorbar(
    n,
    sim_sc.mean,
    yerr=2 * sim_sc.stderr,
    fmt="s",
    ms=3,
    color="C1",
    label="from scratch, Monte Carlo",
)
ax.set_xlabel("target samples n")
ax.set_ylabel("expected excess risk")
ax.set_yscale("log")
ax.legend()
fig.tight_layout()

# %%
# How far the prediction is from the simulation: relatively and in Monte Carlo standard
# errors.
rel = np.abs(risk_ft - sim_ft.mean) / sim_ft.mean
z = np.abs(risk_ft - sim_ft.mean) / sim_ft.stderr
print(
    f"over {n.size} sample sizes: largest relative gap {rel.max():.1%}, "
    f"largest gap in standard errors {z.max():.1f}"
)

# %%
# The covariance-aware similarity of the two tasks at ``n = 20`` and how many samples
# fine-tuning saves to reach an excess risk of ``1e-3``.
measures = linear.similarity(cov, pair.theta_source, pair.theta_target, n=20)
print({name: round(float(value), 4) for name, value in measures.items()})
print(
    linear.sample_complexity_reduction(
        cov, pair.theta_source, pair.theta_target, eps=1e-3
    )
)

# %%
# The closed form is the limit of gradient descent: one real run of
# :func:`finetune_theory.linear.train` from ``theta_S`` on 20 noiseless samples lands on it.
X = cov.sample(20, seed=2)
y = X @ pair.theta_target
run = linear.train(X, y, pair.theta_source, tol=1e-20)
limit = linear.finetune(X, y, pair.theta_source)
print(
    f"{int(run.steps)} steps, distance to the closed form {np.linalg.norm(run.theta - limit):.1e}"
)
