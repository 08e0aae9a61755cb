"""Runs grouped into tables: one table per sweep, one row per combination of the factors that vary, mean ± std
over seeds, the papers' numbers beside the rows they are of."""

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..paper_results import published_for
from .runs import Run, natural_key

SEED = "seed"
NOT_COMPUTED = ("logger", "paths", "callbacks")  # groups that say where and how a run writes, not what it computes
SETTING = "optim"  # the factor of Miyato et al.'s and Kligvasser & Michaeli's robustness figures (settings A-F)


@dataclass
class Row:
    factors: dict[str, str]
    runs: list[Run]

    def values(self, metric: str) -> list[float]:
        return [run.final[metric].value for run in self.runs if metric in run.final]

    @property
    def seeds(self) -> list[str]:
        return [run.value_of(SEED) for run in self.runs]

    @property
    def g_steps(self) -> list[int]:
        return sorted({run.final_g_step for run in self.runs if run.final_g_step is not None})

    def published(self, records: list[dict]) -> list[dict]:
        """Those of the papers' ``records`` that are of runs configured as this row's (its first run with a
        config)."""
        configured = [run.config for run in self.runs if run.config is not None]
        return published_for(configured[0], records) if configured else []


@dataclass
class Table:
    """The runs found under one directory given to the report (a sweep, or any folder of runs)."""

    title: str
    runs: list[Run]
    factors: list[str] = field(init=False)
    rows: list[Row] = field(init=False)

    def __post_init__(self):
        measured = self.measured_runs
        self.factors = varying_factors(measured)
        grouped: dict[tuple, list[Run]] = {}
        for run in measured:
            grouped.setdefault(tuple(run.value_of(key) for key in self.factors), []).append(run)
        ordered = sorted(grouped, key=lambda values: [natural_key(value) for value in values])  # A..F, 0.5 < 1.25
        self.rows = [Row(dict(zip(self.factors, key)), grouped[key]) for key in ordered]

    @property
    def measured_runs(self) -> list[Run]:
        return [run for run in self.runs if run.status != "failed"]

    @property
    def failed_runs(self) -> list[Run]:
        return [run for run in self.runs if run.status == "failed"]

    @property
    def metrics(self) -> list[str]:
        """The metric columns, in the order the runs name them; a spread over splits (``<name>_std``) goes beside its
        metric, not in a column of its own."""
        names = {}
        for run in self.measured_runs:
            names.update(dict.fromkeys(run.final))
        return [name for name in names if not (name.endswith("_std") and name[:-len("_std")] in names)]

    def protocols(self) -> dict[str, str]:
        protocols = {}
        for run in self.measured_runs:
            protocols.update({name: value.protocol for name, value in run.final.items()})
        return protocols

    @property
    def setting(self) -> str | None:
        """The optimizer-setting factor when it varies (the x axis of the robustness figures)."""
        return SETTING if SETTING in self.factors else None

    def method_factors(self) -> list[str]:
        return [key for key in self.factors if key != SETTING]

    def method_of(self, row: Row) -> str:
        """A row's method: its values of the varying factors but the setting (e.g. 'norm=sn'); when only the setting
        varies, the critic normalization."""
        factors = self.method_factors()
        if factors:
            return ", ".join(f"{key}={row.factors[key]}" for key in factors)
        return f"norm={row.runs[0].value_of('norm')}"

    def shared_overrides(self) -> dict[str, str]:
        """The overrides every measured run was given alike."""
        runs = self.measured_runs
        shared = dict(runs[0].overrides) if runs else {}
        for run in runs[1:]:
            shared = {key: value for key, value in shared.items() if run.overrides.get(key) == value}
        return shared

    def fixed(self) -> dict[str, str]:
        """The choices of the groups that say what a run computes, where every measured run shares them."""
        runs = self.measured_runs
        if not runs:
            return {}
        common = dict(runs[0].choices)
        for run in runs[1:]:
            common = {key: value for key, value in common.items() if run.choices.get(key) == value}
        return {key: value for key, value in common.items() if key not in self.factors and key not in NOT_COMPUTED}


def varying_factors(runs: list[Run]) -> list[str]:
    """The override keys (seed aside) whose value differs between the runs, in command-line order."""
    keys = {}
    for run in runs:
        keys.update(dict.fromkeys(leaf for key in run.overrides if key != SEED for leaf in run.leaf_keys(key)))
    return [key for key in keys if len({run.value_of(key) for run in runs}) > 1]


def mean_std(values: list[float]) -> tuple[float, float | None, int]:
    """Mean, sample standard deviation (None for one value) and count; a non-finite value makes both nan."""
    array = np.asarray(values, dtype=np.float64)
    if len(array) == 0:
        return math.nan, None, 0
    std = float(array.std(ddof=1)) if len(array) > 1 else None
    return float(array.mean()), std, len(array)


def tables_for(paths: list[Path], runs_by_path: dict[Path, list[Run]]) -> list[Table]:
    """One table per directory given that holds runs; run directories given directly share one table."""
    tables, direct = [], []
    for path in paths:
        runs = runs_by_path[path]
        if len(runs) == 1 and runs[0].directory == path:
            direct.extend(runs)
        elif runs:
            tables.append(Table(str(path), runs))
    if direct:
        tables.append(Table("runs given by path", direct))
    return tables
