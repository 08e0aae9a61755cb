"""A method's line of a study's table (Lucic et al. 2018, Table 2 and Fig. 3; Kurach et al. 2019): its best value,
its 10 % quantile and median over all draws, the fraction of draws that diverged, and the number of draws; and the
top fraction of its draws, whose distribution the report shows beside all of them.

A diverged draw is kept as the worst value (+inf when minimizing, -inf when maximizing): quantiles are observed
values (no interpolation, which would turn inf into nan), and the fraction diverged is counted, never dropped.
"""

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MethodSummary:
    best: float
    quantile_10: float  # 10 % of the draws are this good or better
    median: float
    diverged: float  # fraction of the draws
    draws: int


def worst(minimize: bool) -> float:
    """The value a diverged draw counts as."""
    return math.inf if minimize else -math.inf


def _from_best(values, minimize: bool) -> np.ndarray:
    """The values sorted from the best to the worst."""
    ordered = np.sort(np.asarray(values, dtype=float))
    return ordered if minimize else ordered[::-1]


def summarize(values, minimize: bool = True) -> MethodSummary:
    """``values``: one per draw, diverged draws as ``worst(minimize)``."""
    ordered = _from_best(values, minimize)
    if not len(ordered):
        raise ValueError("a method's summary needs at least one draw")

    def quantile(q: float) -> float:  # the value that q of the draws reach or beat (an observed one)
        return float(ordered[max(math.ceil(q * len(ordered)) - 1, 0)])

    return MethodSummary(best=float(ordered[0]), quantile_10=quantile(0.1), median=quantile(0.5),
                         diverged=float(np.mean(~np.isfinite(ordered))), draws=len(ordered))


def top_fraction(values, fraction: float, minimize: bool = True) -> list[float]:
    """The best ``fraction`` of the draws' values (at least one), best first."""
    ordered = _from_best(values, minimize)
    return ordered[:max(math.ceil(fraction * len(ordered)), 1)].tolist()
