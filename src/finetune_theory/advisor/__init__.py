"""Will fine-tuning pay off? Advice for practitioners from their own target data.

:func:`advise` takes labelled target rows and one or more source models and returns an
:class:`Advice`: the predicted test MSE of every registered strategy (built in: ``"as_is"``,
``"refit_intercept"``, ``"mean"``, ``"finetune_ridge"``, ``"scratch"``, ``"finetune"``) at any
number of rows, a :class:`Recommendation`, the ranking of the sources and the assumptions it
made. A new strategy is a :class:`Strategy` subclass passed to :func:`register`.

Private modules, by job: ``_result`` (the result types), ``_render`` (table, text, HTML,
plot), ``_engine`` (what the rows say, kept by source name), ``_strategies`` (the registry),
``_advise`` (the function), ``_constants`` (every constant and its provenance), ``_bootstrap``
(the user's leave-one-out ridge), ``_fit`` (empirical Bayes), ``_spectrum`` (Ledoit-Wolf in
thin form), ``_stats`` (sampling laws), ``_io`` (inputs), ``_logme`` (LogME, for the
benchmark).
"""

from ._advise import advise
from ._constants import MODEL_SE, NOISE_FLOOR, TIE_SE
from ._fit import ProfileFit, fit_profiles
from ._result import Advice, Recommendation
from ._strategies import STRATEGIES, Strategy, get, register, registered, unregister

__all__ = [
    "Advice",
    "Recommendation",
    "advise",
    "Strategy",
    "register",
    "unregister",
    "registered",
    "get",
    "STRATEGIES",
    "NOISE_FLOOR",
    "MODEL_SE",
    "TIE_SE",
    "ProfileFit",
    "fit_profiles",
]
