"""A method's line of a study's table (sngan_repro.study.summary), against values worked out by hand."""

import math

import pytest

from sngan_repro.study.summary import summarize, top_fraction, worst

# ten draws of a metric to minimize, two of them diverged
VALUES = [40.0, 12.0, worst(True), 25.0, 18.0, 90.0, worst(True), 33.0, 15.0, 60.0]


def test_a_methods_line_counts_diverged_draws_as_the_worst_and_keeps_them():
    line = summarize(VALUES)
    # sorted: 12 15 18 25 33 40 60 90 inf inf
    assert (line.best, line.quantile_10, line.median, line.diverged, line.draws) == (12.0, 12.0, 33.0, 0.2, 10)
    assert top_fraction(VALUES, 0.25) == [12.0, 15.0, 18.0]  # ceil(2.5) draws
    assert top_fraction(VALUES, 0.1) == [12.0]


def test_a_metric_to_maximize_is_read_from_the_top():
    scores = [7.1, 6.2, worst(False), 7.9, 5.0]
    line = summarize(scores, minimize=False)
    assert (line.best, line.median, line.diverged) == (7.9, 6.2, 0.2)
    assert top_fraction(scores, 0.4, minimize=False) == [7.9, 7.1]


def test_a_method_whose_draws_mostly_diverged_has_an_infinite_median():
    line = summarize([10.0, math.inf, math.inf])
    assert line.best == 10.0 and line.median == math.inf and line.diverged == pytest.approx(2 / 3)
