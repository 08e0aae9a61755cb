"""The budget curve (sngan_repro.study.budget) against brute-force enumeration of every k-subset."""

import itertools
import math

import numpy as np
import pytest

from sngan_repro.study.budget import bootstrap_band, budget_curve, expected_best

VALUES = [31.0, 12.5, 80.0, 12.5, 45.0, 27.0, 60.5]  # a tie included


@pytest.mark.parametrize("minimize", [True, False])
def test_the_expected_best_of_k_draws_equals_the_mean_over_all_k_subsets(minimize):
    best = min if minimize else max
    for k in range(1, len(VALUES) + 1):
        subsets = list(itertools.combinations(VALUES, k))
        brute_force = sum(best(subset) for subset in subsets) / len(subsets)
        assert expected_best(VALUES, k, minimize) == pytest.approx(brute_force, rel=1e-12)


def test_diverged_draws_count_as_the_worst_value():
    values = [10.0, math.inf, 20.0, math.inf]
    curve = budget_curve(values)
    subsets = {k: list(itertools.combinations(values, k)) for k in range(1, 5)}
    assert curve[0] == math.inf  # one draw may have diverged: the expected best is the worst
    for k in (2, 3, 4):  # two diverged draws can be both of a 2-subset
        expected = sum(min(s) for s in subsets[k]) / len(subsets[k])
        assert curve[k - 1] == (pytest.approx(expected) if math.isfinite(expected) else math.inf)
    assert budget_curve([10.0, 20.0, 30.0])[-1] == 10.0  # all draws: the best one


def test_the_bootstrap_band_holds_the_curve_and_is_seeded():
    rng = np.random.default_rng(1)
    values = rng.lognormal(3, 0.5, size=30).tolist()
    low, high = bootstrap_band(values, resamples=300)
    curve = budget_curve(values)
    assert all(lo <= c <= hi for lo, c, hi in zip(low, curve, high))
    assert (low, high) == bootstrap_band(values, resamples=300)
