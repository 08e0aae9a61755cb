"""From runs and sweeps to the papers' tables and figures: ``python -m sngan_repro.report <run or sweep dirs...>``.

Writes ``report.md`` (one table per directory given: one row per combination of the factors that vary, mean ± std
over seeds, the papers' numbers beside the rows they are of, every protocol stated, failed runs with their error),
``report.csv`` (one row per run), ``figures/`` (PNG and the plotted data as JSON) and ``tensorboard/`` (the same
figures for TensorBoard).
"""

from .build import Report, build_report

__all__ = ["Report", "build_report"]
