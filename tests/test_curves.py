"""``finetune_theory.curves``: the learning curve of one described setting, against the
architectures' own risk predictions computed independently here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finetune_theory import covariance, curves, deep_linear, linear, teachers


def _direct(d, depth, ns, noise=0.0, **family):
    cov = covariance.family(family.pop("spectrum", "power-law"), d, **family)
    pair = teachers.scaled_pair(d, alpha=1.0, eps=0.3, seed=4)
    ns = np.asarray(ns)
    if depth == 1:
        tuned = linear.expected_risk(cov, pair.theta_source, pair.theta_target, ns, noise=noise)
    else:
        tuned = deep_linear.expected_risk(
            cov, pair.theta_source, pair.theta_target, ns, depth, noise=noise
        )
    scratch = linear.expected_risk(cov, np.zeros(d), pair.theta_target, ns, noise=noise)
    return np.asarray(tuned), np.asarray(scratch)


@pytest.mark.parametrize("depth", [1, 3])
def test_the_curve_is_each_architectures_expected_risk(depth):
    ns = [3, 7, 15]
    curve = curves.learning_curve(
        spectrum="power-law", d=30, depth=depth, perturbation=0.3, noise=0.1, n_values=ns, seed=4
    )
    tuned, scratch = _direct(30, depth, ns, noise=0.1)
    assert list(curve.columns) == ["n", "fine_tuned", "from_scratch", "gain"]
    np.testing.assert_array_equal(curve["n"], ns)
    np.testing.assert_allclose(curve["fine_tuned"], tuned, rtol=1e-12)
    np.testing.assert_allclose(curve["from_scratch"], scratch, rtol=1e-12)
    np.testing.assert_allclose(curve["gain"], scratch / tuned, rtol=1e-12)


def test_a_source_equal_to_the_target_has_infinite_gain_without_noise():
    curve = curves.learning_curve(spectrum="isotropic", d=10, perturbation=0.0, n_values=[4])
    assert curve["fine_tuned"].iloc[0] == 0.0 and curve["gain"].iloc[0] == math.inf


def test_the_covariance_is_the_named_family():
    cov = curves.make_covariance("spiked", 12, spikes=[5.0, 3.0])
    ref = covariance.family("spiked", 12, spikes=(5.0, 3.0))
    np.testing.assert_allclose(cov.matrix, ref.matrix)
    assert sorted(np.linalg.eigvalsh(cov.matrix))[-2:] == pytest.approx([3.0, 5.0])


@pytest.mark.parametrize("d", [2, 3, 5, 50, 200, 1000])
def test_default_sample_sizes_are_below_d_increasing_and_few(d):
    sizes = curves.default_sample_sizes(d)
    assert sizes == sorted(set(sizes)) and 1 <= len(sizes) <= 8
    assert all(1 <= n < d for n in sizes)
    if d >= 50:
        assert sizes[0] <= d // 50 + 1 and sizes[-1] == d // 2


def test_default_sample_sizes_refuse_a_single_feature():
    with pytest.raises(ValueError, match="d must be >= 2"):
        curves.default_sample_sizes(1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"d": 0}, "d"),
        ({"noise": -1.0}, "noise"),
        ({"n_values": [0, 3]}, "n"),
        ({"depth": 0}, "depth"),
        ({"spectrum": "cubic"}, "cubic"),
    ],
)
def test_bad_settings_are_value_errors_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        curves.learning_curve(**{"d": 10, **kwargs})


def test_plot_curve_writes_the_file_and_refuses_bad_paths(tmp_path):
    pytest.importorskip("matplotlib")
    curve = curves.learning_curve(spectrum="isotropic", d=10, n_values=[2, 4])
    out = curves.plot_curve(curve, tmp_path / "c.svg", title="isotropic")
    assert out.read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match="needs a suffix"):
        curves.plot_curve(curve, tmp_path / "c")
    with pytest.raises(ValueError, match="does not exist"):
        curves.plot_curve(curve, tmp_path / "missing" / "c.png")
