"""The report of a study (``python -m sngan_repro.report <study folder>``; Lucic et al. 2018, Sec. 5, Fig. 3-5;
Kurach et al. 2019): per method the distribution of the metric over all its draws and over its best 25 % and 10 %,
the budget curve (the expected best of k draws) with a bootstrap band, the spread of its best draw over seeds, each
hyper-parameter against the metric, and a table (best, 10 % quantile, median, diverged, failed, draws), every number
with its protocol. Diverged and failed draws count as the worst value: shown and counted, never dropped.

The results come from the study's Optuna storage (named in its ``study.json``), the protocols from its runs' records.
"""

import csv
import json
import math
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from ..console import counted, program
from ..errors import ReportError
from ..study.budget import bootstrap_band, budget_curve
from ..study.driver import RECORD_FILE, SEED_KEY, best_draw, draw_folder, open_storage, seed_folder
from ..study.summary import summarize, top_fraction, worst
from .figures import FigureData, Panel, Series, slug, spans_decades
from .runs import Run
from .tables import mean_std

BAND_COVERAGE, BAND_RESAMPLES = 0.9, 1000


@dataclass(frozen=True)
class Draw:
    number: int
    params: dict
    outcome: str  # finished, diverged or failed
    value: float  # the metric; the worst value when diverged or failed
    folder: Path


@dataclass(frozen=True)
class MethodResults:
    name: str
    draws: list[Draw]
    best: Draw | None  # the finished draw with the best value
    reruns: list[Draw]  # the best draw again with each seed (params include the seed)

    def values(self) -> list[float]:
        return [draw.value for draw in self.draws]


def is_study(path: Path) -> bool:
    return (Path(path) / RECORD_FILE).is_file()


def _draw(trial: optuna.trial.FrozenTrial, minimize: bool, folder: Path) -> Draw:
    if trial.state == TrialState.FAIL:
        return Draw(trial.number, trial.params, "failed", worst(minimize), folder)
    outcome = "finished" if math.isfinite(trial.value) else "diverged"
    return Draw(trial.number, trial.params, outcome, trial.value, folder)


def read_study(folder: Path) -> tuple[dict, dict[str, MethodResults]]:
    """The study's record and, per method, its draws and its best draw's re-runs with seeds."""
    record = json.loads((folder / RECORD_FILE).read_text())
    storage = open_storage(record["storage"], folder)
    minimize = record["direction"] == "minimize"
    names = {summary.study_name for summary in optuna.get_all_study_summaries(storage)}
    results = {}
    for method in record["methods"]:
        name = f"{record['name']}/{method}"
        trials = optuna.load_study(study_name=name, storage=storage).get_trials() if name in names else []
        done = [trial for trial in trials if trial.state in (TrialState.COMPLETE, TrialState.FAIL)]
        draws = [_draw(trial, minimize, folder / draw_folder(method, trial.number)) for trial in done]
        best = best_draw(done, minimize)
        reruns = []
        if best is not None and f"{name}/seeds" in names:
            for trial in optuna.load_study(study_name=f"{name}/seeds", storage=storage).get_trials():
                if trial.user_attrs.get("draw") == best.number and trial.state in (TrialState.COMPLETE,
                                                                                   TrialState.FAIL):
                    seed = trial.params[SEED_KEY]
                    reruns.append(_draw(trial, minimize, folder / seed_folder(method, best.number, seed)))
        results[method] = MethodResults(method, draws, next((d for d in draws if d.number == best.number), None)
                                        if best else None, reruns)
    return record, results


def metric_protocol(record: dict, results: dict[str, MethodResults]) -> str:
    """The protocol sentence of the study's metric, from a finished run's record."""
    for method in results.values():
        for draw in method.draws:
            if draw.outcome == "finished":
                protocol = Run(draw.folder).metric_protocols().get(record["metric"])
                if protocol:
                    return protocol
    return "no finished run states it"


# -- figures ----------------------------------------------------------------------------------------------------
def colors(results: dict[str, MethodResults]) -> dict[str, str]:
    """One colour per method, the same in every figure."""
    return {name: f"C{index}" for index, name in enumerate(results)}


def distributions(record: dict, results: dict[str, MethodResults]) -> FigureData:
    minimize = record["direction"] == "minimize"
    panels = []
    for title, fraction in (("all draws", 1.0), ("best 25 % of draws", 0.25), ("best 10 % of draws", 0.1)):
        series = {name: Series(x=[], y=top_fraction(method.values(), fraction, minimize), color=colors(results)[name])
                  for name, method in results.items() if method.draws}
        panels.append(Panel(title, "method", record["metric"], series, boxes=True, log_y=spans_decades(series)))
    return FigureData("study-distributions", f"{record['name']}: {record['metric']} per method", panels)


def budget(record: dict, results: dict[str, MethodResults]) -> FigureData:
    minimize = record["direction"] == "minimize"
    series = {}
    for name, method in results.items():
        if method.draws:
            values = method.values()
            low, high = bootstrap_band(values, minimize, BAND_RESAMPLES, BAND_COVERAGE)
            series[name] = Series(x=list(range(1, len(values) + 1)), y=budget_curve(values, minimize),
                                  band=(low, high), color=colors(results)[name])
    panel = Panel(f"expected best of k draws ({BAND_COVERAGE:.0%} bootstrap band)", "draws (k)",
                  f"expected best {record['metric']}", series, log_y=spans_decades(series))
    return FigureData("study-budget", f"{record['name']}: the computational budget (Lucic et al. 2018)", [panel])


def seeds(record: dict, results: dict[str, MethodResults]) -> FigureData:
    series = {f"{name} (draw {method.best.number})": Series(x=[], y=[draw.value for draw in method.reruns],
                                                            color=colors(results)[name])
              for name, method in results.items() if method.reruns}
    panel = Panel("each method's best draw with other seeds", "method", record["metric"], series, boxes=True,
                  log_y=spans_decades(series))
    return FigureData("study-seeds", f"{record['name']}: seed spread of the best draws", [panel])


def sensitivity(record: dict, results: dict[str, MethodResults]) -> FigureData:
    parameters = list(dict.fromkeys(key for method in record["methods"].values() for key in method["space"]))
    panels = []
    for key in parameters:
        drawn = {name: [draw for draw in method.draws if key in draw.params] for name, method in results.items()}
        series = {name: Series(x=[draw.params[key] for draw in draws], y=[draw.value for draw in draws],
                               color=colors(results)[name]) for name, draws in drawn.items() if draws}
        distribution = next(method["space"][key][0] for method in record["methods"].values() if key in method["space"])
        panels.append(Panel(key, key, record["metric"], series, categorical=distribution == "choice", scatter=True,
                            log_x=distribution == "log_uniform", log_y=spans_decades(series)))
    return FigureData("study-sensitivity", f"{record['name']}: each hyper-parameter against {record['metric']}",
                      panels)


def study_figures(record: dict, results: dict[str, MethodResults]) -> list[FigureData]:
    figures = [distributions(record, results), budget(record, results), sensitivity(record, results)]
    if any(method.reruns for method in results.values()):
        figures.insert(2, seeds(record, results))
    return figures


# -- the table --------------------------------------------------------------------------------------------------
def number(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else "diverged/failed"


def table_markdown(record: dict, results: dict[str, MethodResults]) -> list[str]:
    minimize = record["direction"] == "minimize"
    lines = ["| method | draws | best | 10 % quantile | median | diverged | failed | best draw | best draw over "
             "seeds: mean ± std (runs) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, method in results.items():
        if not method.draws:
            lines.append(f"| {name} | 0 | — | — | — | — | — | — | — |")
            continue
        line = summarize(method.values(), minimize)
        diverged = sum(draw.outcome == "diverged" for draw in method.draws)
        failed = sum(draw.outcome == "failed" for draw in method.draws)
        finite = [draw.value for draw in method.reruns if draw.outcome == "finished"]
        mean, std, count = mean_std(finite)
        spread = f"{mean:.4g} ± {std:.2g} ({count} of {len(method.reruns)})" if std is not None else \
            (f"{mean:.4g} ({count} of {len(method.reruns)})" if count else "—")
        best = f"{method.best.number}" if method.best else "—"
        lines.append(f"| {name} | {line.draws} | {number(line.best)} | {number(line.quantile_10)} | "
                     f"{number(line.median)} | {diverged} ({diverged / line.draws:.0%}) | {failed} | {best} | "
                     f"{spread} |")
    return lines


def protocol_markdown(record: dict, results: dict[str, MethodResults]) -> list[str]:
    direction = "lower" if record["direction"] == "minimize" else "higher"
    spaces = []
    for name, method in record["methods"].items():
        ranges = ", ".join(f"{key} {kind}" + (f" [{low:g}, {high:g}]" if kind != "choice" else f" {choices}")
                           for key, (kind, low, high, choices) in method["space"].items())
        spaces.append(f"- **{name}**: `{' '.join(method['overrides'])}`; draws: {ranges}")
    return [f"**Metric**: `{record['metric']}` ({direction} is better): {metric_protocol(record, results)}. Each "
            f"draw is one training run with its own hyper-parameters, measured once at its end. A draw that "
            f"diverged or failed counts as the worst value ({worst(record['direction'] == 'minimize'):+}): "
            f"in the quantiles, the budget curve and the figures (crosses at the top), never dropped.", "",
            f"**Draws**: {record['n_draws']} per method, Optuna's {record['sampler']} sampler, study seed "
            f"{record['seed']}; draw 0 is the method's own setting. Each method's best finished draw is run again "
            f"with seeds {record['seeds']}. The budget curve is the expected best of k draws taken without "
            f"replacement from the observed ones (Lucic et al. 2018, Sec. 5); its band, the {BAND_COVERAGE:.0%} "
            f"interval over {BAND_RESAMPLES} bootstrap resamplings of the draws. Storage: `{record['storage']}`.", "",
            "**Methods** (after the study preset's runs settings):", "", *spaces]


def write_csv(path: Path, results: dict[str, MethodResults], record: dict) -> None:
    parameters = list(dict.fromkeys(key for method in results.values() for draw in [*method.draws, *method.reruns]
                                    for key in draw.params))
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["method", "kind", "draw", "outcome", record["metric"], *parameters, "run"])
        for name, method in results.items():
            for kind, draws in (("draw", method.draws), ("best draw, another seed", method.reruns)):
                for draw in draws:
                    number_ = draw.number if kind == "draw" else method.best.number
                    writer.writerow([name, kind, number_, draw.outcome, draw.value,
                                     *(draw.params.get(key, "") for key in parameters), str(draw.folder)])


def build_study_report(folder: Path, output: Path) -> tuple[list[Path], str]:
    """Write the study report of ``folder`` into ``output``: report.md, study.csv, figures/ (PNG and JSON)."""
    from .build import rendered  # the drawing shared with the runs' report

    try:
        record, results = read_study(folder)
    except (OSError, KeyError, json.JSONDecodeError) as error:
        raise ReportError(f"{folder / RECORD_FILE} cannot be read as a study's record ({error}); run the study "
                          f"command again to rewrite it.") from None
    figures = study_figures(record, results)
    figure_dir = output / "figures" / slug(record["name"])
    figure_dir.mkdir(parents=True, exist_ok=True)
    files = []
    from PIL import Image

    for figure in figures:
        Image.fromarray(rendered(figure.draw())).save(figure_dir / f"{figure.name}.png")
        (figure_dir / f"{figure.name}.json").write_text(json.dumps(figure.to_json(), indent=1,
                                                                   default=lambda value: str(value)))
        files += [figure_dir / f"{figure.name}.png", figure_dir / f"{figure.name}.json"]
    draws = sum(len(method.draws) for method in results.values())
    reruns = sum(len(method.reruns) for method in results.values())
    command = shlex.join([program("python"), "-m", "sngan_repro.report", str(folder)])
    lines = [f"# Study {record['name']}", "",
             f"`{command}`, {time.strftime('%Y-%m-%d %H:%M')}. {counted(len(results), 'method')}, "
             f"{counted(draws, 'draw')} and {counted(reruns, 're-run')} of best draws with other seeds.", "",
             *table_markdown(record, results), "", *protocol_markdown(record, results), ""]
    lines += [f"![{figure.title}](figures/{slug(record['name'])}/{figure.name}.png)\n" for figure in figures]
    (output / "report.md").write_text("\n".join(lines) + "\n")
    write_csv(output / "study.csv", results, record)
    files += [output / "report.md", output / "study.csv"]
    summary = (f"study {record['name']}: {counted(draws, 'draw')}, {counted(reruns, 're-run')}, "
               f"{counted(len(figures), 'figure')}: {output / 'report.md'}, {output / 'study.csv'}, {figure_dir}")
    return files, summary
