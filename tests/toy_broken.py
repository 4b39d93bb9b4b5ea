"""The toy experiment with one unit that raises (registered as ``broken`` in the tests)."""

from toy_experiment import BROKEN as EXPERIMENT

__all__ = ["EXPERIMENT"]
