"""``finetune_theory._random``: every stream from a SeedSequence, the same bits by every route."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from finetune_theory._random import as_generator, keyword_seed, seed_sequence, spawn_generators
from finetune_theory.exceptions import InputTypeError


def _bits(gen: np.random.Generator) -> np.ndarray:
    return gen.integers(0, 2**63, size=8)


def test_an_int_a_numpy_int_and_its_seed_sequence_give_the_same_stream():
    ref = _bits(np.random.Generator(np.random.PCG64(np.random.SeedSequence(11))))
    for seed in (11, np.int64(11), np.random.SeedSequence(11)):
        np.testing.assert_array_equal(_bits(as_generator(seed)), ref)
    assert not np.array_equal(_bits(as_generator(12)), ref)


def test_a_generator_passes_through_and_none_is_fresh_entropy():
    gen = np.random.default_rng(0)
    assert as_generator(gen) is gen
    assert seed_sequence(None).entropy != seed_sequence(None).entropy
    ss = np.random.SeedSequence(4)
    assert seed_sequence(ss) is ss


def test_spawned_streams_are_the_seed_sequence_children():
    gens = spawn_generators(5, 3)
    children = np.random.SeedSequence(5).spawn(3)
    for gen, child in zip(gens, children, strict=True):
        np.testing.assert_array_equal(_bits(gen), _bits(as_generator(child)))
    firsts = {tuple(_bits(g)) for g in spawn_generators(5, 3)}
    assert len(firsts) == 3  # independent streams
    # from a Generator: its own children, reproducible from an equal generator
    a = [_bits(g) for g in spawn_generators(np.random.default_rng(1), 2)]
    b = [_bits(g) for g in spawn_generators(np.random.default_rng(1), 2)]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [1.5, "3", True, [1], object()])
def test_a_seed_of_the_wrong_type_is_an_input_type_error(bad):
    with pytest.raises(InputTypeError, match="seed must be"):
        seed_sequence(bad)
    with pytest.raises(TypeError):
        as_generator(bad)


def test_a_negative_seed_is_a_value_error():
    with pytest.raises(ValueError, match=">= 0"):
        seed_sequence(-1)


def test_keyword_seed_keeps_the_signature_and_deprecates_a_positional_seed():
    @keyword_seed
    def draw(n: int, *, seed: int = 0) -> np.ndarray:
        return as_generator(seed).standard_normal(n)

    import inspect

    assert list(inspect.signature(draw).parameters) == ["n", "seed"]
    with pytest.warns(DeprecationWarning, match="seed by keyword"):
        old = draw(3, 7)
    np.testing.assert_array_equal(old, draw(3, seed=7))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        draw(3, seed=7)
        draw(3)
    with pytest.raises(TypeError):
        draw(3, 7, 8)  # one positional argument too many is the most it accepts
