"""Will fine-tuning pay off? Advice for practitioners from their own target data.

:func:`advise` takes labelled target rows and one or more source models and returns an
:class:`Advice`: the predicted test MSE of every strategy (``"as_is"``, ``"refit_intercept"``,
``"finetune"``, ``"finetune_ridge"``, ``"scratch"``, ``"mean"``) at any number of rows, a
:class:`Recommendation`, the ranking of the sources and the assumptions it made. Private
modules: ``_advise`` (the API and the result types), ``_strategies`` (the risk engine),
``_fit`` (empirical-Bayes fit of the source-target difference), ``_io`` (reading and checking
user inputs), ``_logme`` (LogME, kept for comparison in the validation benchmark).
"""

from ._advise import MODEL_SE, NOISE_FLOOR, STRATEGIES, Advice, Recommendation, advise

__all__ = ["Advice", "Recommendation", "advise", "STRATEGIES", "NOISE_FLOOR", "MODEL_SE"]
