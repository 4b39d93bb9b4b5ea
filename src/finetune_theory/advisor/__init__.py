"""Will fine-tuning pay off? Advice for practitioners from their own target data.

:func:`advise` takes labelled target rows and one or more source models and returns an
:class:`Advice`: predicted test error against the number of labelled rows, the ranking of the
sources and the assumptions it made. Private modules: ``_advise`` (the analysis and the result
types), ``_fit`` (empirical-Bayes fit of the source-target difference), ``_io`` (reading and
checking user inputs), ``_logme`` (LogME, kept for comparison in the validation benchmark).
"""

from ._advise import Advice, SourceAdvice, advise

__all__ = ["Advice", "SourceAdvice", "advise"]
