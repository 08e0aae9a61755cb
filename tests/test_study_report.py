"""The report of a study (``python -m sngan_repro.report <study folder>``): its table against an independent reading of
the stored values (observed quantiles, diverged and failed counted), its budget curve against brute-force enumeration
of every k-subset of the draws, a diverged draw shown as diverged in the table and the figures, the seed re-runs of the
best draws, every number with its protocol."""

import csv
import itertools
import json
import math

import numpy as np
import optuna
import pytest
from helpers.study import METRIC, PROTOCOL, Launcher, score
from omegaconf import OmegaConf
from optuna.trial import TrialState

from sngan_repro import compose
from sngan_repro.report.__main__ import main as report_main
from sngan_repro.study.driver import StudyDriver, open_storage
from sngan_repro.study.preset import read_preset

PRESET = {"methods": {"sn": {"overrides": ["norm=sn"]}, "wn": {"overrides": ["norm=wn"]}},
          "base": ["experiment=quickstart"],
          "space": {"optim.lr_g": {"distribution": "log_uniform", "low": 1e-5, "high": 1e-2},
                    "optim.n_dis": {"distribution": "choice", "choices": [1, 5]}},
          "n_draws": 7, "seeds": [1, 2, 3], "metric": METRIC, "direction": "minimize", "sampler": "random", "seed": 3}


def outcome(values):
    """Runs at a learning rate above 3e-3 diverge; wn's draw 4 fails."""
    if float(values["optim.lr_g"]) > 3e-3:
        return ("diverged",)
    return ("failed",) if values["hydra.sweep.subdir"] == "wn/draw_004" else ("finished", score(values))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    preset = read_preset("mini", OmegaConf.create(PRESET), compose)
    StudyDriver(preset, folder, open_storage(None, folder), Launcher(folder, outcome), log=lambda line: None).run()
    assert report_main([str(folder)]) == 0
    return folder


def stored(folder, method):
    return optuna.load_study(study_name=f"mini/{method}", storage=open_storage(None, folder)).get_trials()


def brute_force_expected_min(values, k):
    subsets = list(itertools.combinations(values, k))
    return sum(min(subset) for subset in subsets) / len(subsets)


def figure(folder, name):
    return json.loads((folder / "report" / "figures" / "mini" / f"{name}.json").read_text())


def test_the_table_gives_each_methods_observed_best_quantile_median_and_its_diverged_and_failed_draws(study):
    report = (study / "report" / "report.md").read_text()
    for method in ("sn", "wn"):
        trials = stored(study, method)
        values = sorted(t.value if t.state == TrialState.COMPLETE else math.inf for t in trials)
        diverged = sum(t.state == TrialState.COMPLETE and t.value == math.inf for t in trials)
        failed = sum(t.state == TrialState.FAIL for t in trials)
        # 7 draws: the 10 % quantile is the best (ceil(0.7) = 1st value), the median the 4th
        cells = [f"{values[0]:.4g}", f"{values[0]:.4g}", f"{values[3]:.4g}" if math.isfinite(values[3])
                 else "diverged/failed", f"{diverged} ({diverged / 7:.0%})", f"{failed}"]
        assert f"| {method} | 7 | {' | '.join(cells)} |" in report, report
    assert stored(study, "wn")[4].state == TrialState.FAIL
    assert any(t.value == math.inf for t in stored(study, "sn"))  # the space reaches above 3e-3: some diverged
    assert f"`{METRIC}` (lower is better): {PROTOCOL}." in report
    assert "counts as the worst value (+inf)" in report and "Storage: `sqlite:///" in report


def test_the_budget_curve_is_the_expected_best_of_k_draws_by_brute_force(study):
    (panel,) = figure(study, "study-budget")["panels"]
    for method in ("sn", "wn"):
        values = [t.value if t.state == TrialState.COMPLETE else math.inf for t in stored(study, method)]
        curve = panel["series"][method]["y"]
        expected = [brute_force_expected_min(values, k) for k in range(1, 8)]
        assert len(curve) == 7
        for ours, brute in zip(curve, expected):
            assert ours == brute or ours == pytest.approx(brute, rel=1e-12)
        low, high = panel["series"][method]["band"]
        finite = [(a, b, c) for a, b, c in zip(low, curve, high) if math.isfinite(c)]
        assert all(a <= c for a, _, c in finite)


def test_a_diverged_draw_is_in_the_distributions_as_diverged_and_never_dropped(study):
    (all_draws, top25, top10) = figure(study, "study-distributions")["panels"]
    for method in ("sn", "wn"):
        values = [t.value if t.state == TrialState.COMPLETE else math.inf for t in stored(study, method)]
        assert sorted(all_draws["series"][method]["y"]) == sorted(values)  # inf included (JSON Infinity)
        assert top25["series"][method]["y"] == sorted(values)[:2] and top10["series"][method]["y"] == [min(values)]


def test_each_methods_best_draw_is_re_run_with_the_seeds(study):
    rows = list(csv.DictReader((study / "report" / "study.csv").open()))
    for method in ("sn", "wn"):
        trials = stored(study, method)
        best = min((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
        reruns = [row for row in rows if row["method"] == method and row["kind"] == "best draw, another seed"]
        assert [(int(row["draw"]), int(row["seed"])) for row in reruns] == [(best.number, s) for s in (1, 2, 3)]
        assert [float(row[METRIC]) for row in reruns] == [score({"optim.lr_g": best.params["optim.lr_g"], "seed": s})
                                                         for s in (1, 2, 3)]
        spread = np.array([float(row[METRIC]) for row in reruns])
        report = (study / "report" / "report.md").read_text()
        assert f"{spread.mean():.4g} ± {spread.std(ddof=1):.2g} (3 of 3)" in report
    (panel,) = figure(study, "study-seeds")["panels"]
    assert len(panel["series"]) == 2


def test_every_hyper_parameter_is_plotted_against_the_metric_per_method(study):
    panels = figure(study, "study-sensitivity")["panels"]
    assert [panel["title"] for panel in panels] == ["optim.lr_g", "optim.n_dis"]
    lr, n_dis = panels
    assert lr["log_x"] and not lr["categorical"] and n_dis["categorical"]
    assert lr["series"]["sn"]["x"] == [t.params["optim.lr_g"] for t in stored(study, "sn")]


def test_a_study_with_other_folders_is_refused(study, tmp_path, capsys):
    assert report_main([str(study), str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {study} is a study, whose report is made on its own; give it "
                                               f"alone.")
