"""The computational budget curve of a study (Lucic et al. 2018, Sec. 5, Fig. 4): the expected best value of a method
over k of its draws, for k = 1..n, as if k draws had been run instead of all n.

With the n observed values sorted from best to worst, v_1 <= ... <= v_n (for a metric to minimize), the best of k
draws taken without replacement is v_i with probability C(n - i, k - 1) / C(n, k): the other k - 1 draws all come
from the n - i worse ones. A diverged draw counts as the worst value (+inf when minimizing), so a method whose
draws often diverge shows it at small budgets instead of being flattered by dropping them.
"""

import math

import numpy as np


def expected_best(values, k: int, minimize: bool = True) -> float:
    """The expected best of ``k`` of ``values`` drawn without replacement."""
    ordered = np.sort(np.asarray(values, dtype=float))
    if not minimize:
        ordered = ordered[::-1]
    n = len(ordered)
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the number of values, {n}")
    total = math.comb(n, k)
    # terms with probability 0 are left out, so an infinite value that cannot be the best adds nothing (not nan)
    return float(sum(ordered[i] * (math.comb(n - 1 - i, k - 1) / total) for i in range(n - k + 1)))


def budget_curve(values, minimize: bool = True) -> list[float]:
    """``expected_best(values, k)`` for k = 1..n."""
    return [expected_best(values, k, minimize) for k in range(1, len(values) + 1)]


def bootstrap_band(values, minimize: bool = True, resamples: int = 1000, coverage: float = 0.9,
                   seed: int = 0) -> tuple[list[float], list[float]]:
    """A ``coverage`` band around the budget curve: its quantiles over ``resamples`` resamplings of the values with
    replacement (seeded, so a report is the same every time)."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    curves = np.array([budget_curve(rng.choice(values, size=len(values), replace=True), minimize)
                       for _ in range(resamples)])
    tail = (1 - coverage) / 2
    # observed quantiles (no interpolation): a curve that is +inf (diverged draws) gives inf, not inf - inf = nan
    return (np.quantile(curves, tail, axis=0, method="inverted_cdf").tolist(),
            np.quantile(curves, 1 - tail, axis=0, method="inverted_cdf").tolist())
