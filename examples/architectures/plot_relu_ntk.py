"""
Two-layer ReLU networks: fine-tuning in the lazy regime
=======================================================

A wide two-layer ReLU network trained by gradient descent stays close to its start, and its
predictions follow the kernel predictor of the neural tangent kernel started from the
pretrained network (:func:`finetune_theory.relu.kernel_predictor`). This example pretrains a
network on a linear source teacher, fine-tunes it on a nearby target teacher
(:func:`finetune_theory.relu.train` started from the pretrained weights), and compares
its test error with training from scratch and with the kernel predictor, for a few sample
sizes.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

from finetune_theory import relu, teachers

SMALL = os.environ.get("FINETUNE_THEORY_EXAMPLE_SIZE") == "test"  # tests: tiny sizes

# %%
# Source and target teachers on the unit sphere in ``d = 10`` dimensions, a distance of 0.5
# apart; labels ``sqrt(d) theta^T x`` are of order one.
d = 10
width = 200 if SMALL else 1000
ns = (10, 40) if SMALL else (10, 20, 40, 80)
scale = np.sqrt(d)
theta_source = teachers.random_unit(d, seed=0)
direction = teachers.random_unit(d, seed=1)
direction -= (direction @ theta_source) * theta_source
theta_target = theta_source + 0.5 * direction / np.linalg.norm(direction)

source = relu.pretrain(
    theta_source, width=width, n_source=100, label_scale=scale, seed=2
)
print(
    f"pretrained in {int(source.training.steps)} steps, training loss "
    f"{float(source.training.loss):.1e}"
)

X_test = relu.sample_sphere(500, d, seed=3)
y_test = scale * X_test @ theta_target

# %%
# Fine-tune, train from scratch and evaluate the kernel predictor at each sample size.
rows = []
for n in ns:
    X = relu.sample_sphere(n, d, seed=10 + n)
    y = scale * X @ theta_target
    tuned = relu.train(X, y, source.weights)  # fine-tuning: training from the source
    scratch = relu.train(X, y, relu.init_network(width, d, seed=4))
    kernel = relu.kernel_predictor(X, y, X_test, start=source.weights)
    rows.append(
        (
            n,
            np.mean((tuned.weights(X_test) - y_test) ** 2),
            np.mean((scratch.weights(X_test) - y_test) ** 2),
            np.mean((kernel - y_test) ** 2),
            float(tuned.movement),
        )
    )
rows = np.array(rows)
print("   n  fine-tuned  kernel predictor  from scratch  weights moved")
for n, mse_ft, mse_sc, mse_k, move in rows:
    print(f"{int(n):4d}  {mse_ft:10.3f}  {mse_k:16.3f}  {mse_sc:12.3f}  {move:13.1e}")

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(rows[:, 0], rows[:, 1], "o-", label="fine-tuned network")
ax.plot(rows[:, 0], rows[:, 3], "x--", label="kernel predictor from the source network")
ax.plot(rows[:, 0], rows[:, 2], "s-", label="network trained from scratch")
ax.set_xlabel("target samples n")
ax.set_ylabel("test MSE")
ax.set_yscale("log")
ax.legend()
fig.tight_layout()
