"""Assemble and write the report: tables (Markdown and CSV), figures (PNG, JSON, TensorBoard)."""

import csv
import json
import math
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from ..console import counted, program
from ..errors import ReportError
from ..paper_results import load_paper_results
from ..run_directory import SAMPLE_GRIDS
from .figures import FigureData, figures_for, slug
from .runs import Run, find_runs
from .tables import Row, Table, mean_std, tables_for


@dataclass
class Report:
    output: Path
    tables: list[Table]
    figures: dict[str, list[FigureData]]  # table title -> its figures
    files: list[Path]

    def summary(self) -> str:
        runs = sum(len(table.runs) for table in self.tables)
        failed = sum(len(table.failed_runs) for table in self.tables)
        figures = sum(len(figures) for figures in self.figures.values())
        return (f"{counted(runs, 'run')} ({failed} failed) in {counted(len(self.tables), 'table')}, "
                f"{counted(figures, 'figure')}: "
                f"{self.output / 'report.md'}, {self.output / 'report.csv'}, {self.output / 'figures'}; "
                f"tensorboard --logdir {self.output / 'tensorboard'}")


def build_report(paths: list[Path], output: Path | None = None) -> Report:
    """Read the runs at or under ``paths``, write the report into ``output`` (default: ``<the one path>/report``)."""
    paths = [Path(path) for path in paths]
    for path in paths:
        if not path.is_dir():
            raise ReportError(f"{path} is not a directory; give run or sweep directories (multirun/<day>/<time>).")
    if output is None and len(paths) > 1:
        raise ReportError(f"{len(paths)} paths were given and no --output; say where the report goes.")
    output = Path(output) if output is not None else paths[0] / "report"
    runs_by_path = {}
    for path in paths:
        found = [directory for directory in find_runs(path) if output not in (directory, *directory.parents)]
        if not found:
            raise ReportError(f"{path} holds no run directory (a folder with config.yaml, run.json, error.txt or "
                              f".hydra/overrides.yaml); give run or sweep directories.")
        runs_by_path[path] = [Run(directory) for directory in found]
    tables = tables_for(paths, runs_by_path)
    figures = {table.title: figures_for(table) for table in tables}
    output.mkdir(parents=True, exist_ok=True)
    report = Report(output, tables, figures, [])
    report.files += write_figures(report)
    report.files += [write_markdown(report, paths), write_csv(report)]
    return report


# -- figures ---------------------------------------------------------------------------------------------------
def figure_folder(index: int, table: Table) -> str:
    return f"figures/{index}-{slug(Path(table.title).name or table.title)}"


def rendered(figure: Figure) -> np.ndarray:
    """The figure as an RGB uint8 array (H, W, 3)."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def write_figures(report: Report) -> list[Path]:
    written = []
    writer = SummaryWriter(str(report.output / "tensorboard"))
    try:
        for index, table in enumerate(report.tables, 1):
            folder = report.output / figure_folder(index, table)
            folder.mkdir(parents=True, exist_ok=True)
            for figure_data in report.figures[table.title]:
                pixels = rendered(figure_data.draw())  # drawn once, for the PNG and TensorBoard alike
                Image.fromarray(pixels).save(folder / f"{figure_data.name}.png")
                (folder / f"{figure_data.name}.json").write_text(json.dumps(figure_data.to_json(), indent=1))
                writer.add_image(f"{folder.name}/{figure_data.name}", pixels, dataformats="HWC")
                written += [folder / f"{figure_data.name}.png", folder / f"{figure_data.name}.json"]
    finally:
        writer.close()
    return written


# -- Markdown ---------------------------------------------------------------------------------------------------
def number(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.4g}"


def metric_cell(row: Row, metric: str) -> str:
    """Mean over seeds, ± their std (several seeds) or, for one run, ± the spread over splits it logged."""
    mean, std, count = mean_std(row.values(metric))
    if count == 0:
        return "—"
    if std is not None:
        return f"{number(mean)} ± {number(std)}"
    spread = row.runs[0].final.get(f"{metric}_std")
    over = "subsets" if "kid/" in metric else "splits"  # KID's spread is over its subsets, IS's over its splits
    return f"{number(mean)} ± {number(spread.value)} ({over})" if spread and spread.value > 0 else number(mean)


def published_key(record: dict) -> tuple[str, str, str]:
    return record["paper"], record["table"], record["metric"]


def published_header(key: tuple[str, str, str]) -> str:
    paper, table, metric = key
    return f"published {metric} ({paper}, {table})"


def source_of(row: Row) -> str:
    sources = {value.source for run in row.runs for value in run.final.values()}
    presets = {preset for run in row.runs for preset in run.evaluated_with()}
    if sources == {"last logged"}:
        return "last logged"
    return "evaluated" + (f" (metrics={', '.join(sorted(presets))})" if presets else "")


def table_markdown(index: int, table: Table) -> list[str]:
    lines = [f"## {index}. {table.title}", ""]
    factors = ", ".join(f"`{key}` ({', '.join(dict.fromkeys(row.factors[key] for row in table.rows))})"
                        for key in table.factors) or "none"
    fixed = ", ".join(f"{key}={value}" for key, value in table.fixed().items())
    seeds = sorted({len(row.runs) for row in table.rows})
    lines += [f"{counted(len(table.runs), 'run')}, {len(table.failed_runs)} failed. Factors that vary: {factors}. "
              f"Runs per row (seeds): {', '.join(map(str, seeds)) or '0'}. Common choices: {fixed or 'none'}.", ""]
    metrics = table.metrics
    published, records = {}, load_paper_results()
    for row in table.rows:
        for record in row.published(records):
            published.setdefault(published_key(record), {})[id(row)] = record
    header = [*table.factors, "seeds", "g_step", "values", *metrics, *map(published_header, published)]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        cells = [*(row.factors[key] for key in table.factors), ", ".join(row.seeds),
                 ", ".join(map(str, row.g_steps)), source_of(row), *(metric_cell(row, metric) for metric in metrics)]
        for records in published.values():
            record = records.get(id(row))
            cells.append("—" if record is None else number(record["value"]) +
                         (f" ± {number(record['std'])}" if record.get("std") is not None else ""))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Values: the final evaluation of a run's latest evaluated checkpoint (`python -m sngan_repro."
              "evaluate`) where it has one, else the last value logged during training; ± is the standard deviation "
              "over seeds (n - 1), or for a single run the spread over the Inception-score splits or KID subsets it "
              "logged.", "",
              "Protocols of this project's columns:"]
    lines += [f"- `{name}`: {protocol or 'not recorded'}" for name, protocol in table.protocols().items()]
    lines += published_notes(table, published)
    if table.failed_runs:
        lines += ["", "Failed runs (their overrides that the measured runs do not all share):"]
        shared = table.shared_overrides()
        lines += [f"- `{run.directory}` ({' '.join(f'{k}={v}' for k, v in run.overrides.items() if shared.get(k) != v)}"
                  f"): {run.error or 'no error recorded'}" for run in table.failed_runs]
    return lines


def published_notes(table: Table, published: dict) -> list[str]:
    """Per published column: the paper's protocol, whether this project's numbers were measured with it, and how the
    runs differ from the paper's in length (said, never silently compared)."""
    if not published:
        choices = table.fixed()
        return ["", f"No published number is of these runs (dataset={choices.get('dataset', 'varies')}, "
                    f"arch={choices.get('arch', 'varies')}): no paper of this project ran them."]
    lines = ["", "Published numbers beside the rows they are of (same dataset, architecture, method, loss and "
                 "setting; a 'best of' setting is beside every setting):"]
    rows = {id(row): row for row in table.rows}
    for key, records in published.items():
        record = next(iter(records.values()))
        preset = record.get("evaluate")
        same = [rows[row_id] for row_id in records if preset and preset in
                {p for run in rows[row_id].runs for p in run.evaluated_with()}]
        if same and len(same) == len(records):
            verdict = f"ours were evaluated with metrics={preset}, this project's preset of that protocol"
        elif preset:
            verdict = (f"NOT the protocol of our columns, which are not comparable with it; evaluate the checkpoints "
                       f"with `python -m sngan_repro.evaluate ckpt=<run>/checkpoints/last.ckpt metrics={preset}` "
                       f"to compare")
        else:
            verdict = "this project has no preset of it, so our columns are not comparable with it"
        lines.append(f"- {published_header(key)}: the paper's protocol: {record['protocol']}. "
                     f"{verdict[0].upper() + verdict[1:]}.")
        if not _is_one_setting(record):
            lines.append(f"  - The paper reports the {record['optim']} (its best setting); each row here is one "
                         f"setting.")
        for row_id, row_record in records.items():
            row = rows[row_id]
            length = row_record.get("g_steps") or row_record.get("iteration")
            if length and row.g_steps and row.g_steps != [length]:
                lines.append(f"  - {row_label(table, row)}: the paper's number is after {length} generator updates, "
                             f"ours after {', '.join(map(str, row.g_steps))}.")
    return lines


def _is_one_setting(record: dict) -> bool:
    return not str(record.get("optim") or "").startswith("best of")


def row_label(table: Table, row: Row) -> str:
    return ", ".join(f"{key}={value}" for key, value in row.factors.items()) or table.method_of(row)


def sample_grids_markdown(report: Report, index: int, table: Table) -> list[str]:
    """Each measured run's last fixed-z sample grid, copied beside the table's figures, under its row's label."""
    lines = []
    for row in table.rows:
        for run in row.runs:
            grid = run.files.last_sample_grid()
            if grid is None:
                continue
            copy = Path(figure_folder(index, table)) / "samples" / f"{slug(str(run.directory.name))}_{grid.name}"
            (report.output / copy).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(grid, report.output / copy)
            report.files.append(report.output / copy)
            step = int(SAMPLE_GRIDS.fullmatch(grid.name)[1])
            label = f"{row_label(table, row)}, seed {run.value_of('seed')}, after {step} generator updates"
            lines += ["", f"![{label}]({copy})"]
    return ["", "Last sample grids (fixed z):", *lines] if lines else []


def write_markdown(report: Report, paths: list[Path]) -> Path:
    command = shlex.join([program("python"), "-m", "sngan_repro.report", *map(str, paths)])
    lines = ["# Report", "", f"`{command}`, {time.strftime('%Y-%m-%d %H:%M')}. " + report.summary(), ""]
    for index, table in enumerate(report.tables, 1):
        lines += table_markdown(index, table)
        folder = figure_folder(index, table)
        for figure in report.figures[table.title]:
            lines += ["", f"![{figure.title}]({folder}/{figure.name}.png)"]
        lines += sample_grids_markdown(report, index, table)
        lines.append("")
    path = report.output / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


# -- CSV -------------------------------------------------------------------------------------------------------
def write_csv(report: Report) -> Path:
    """One row per run: its table, directory, status, error, generator updates, choices, overrides and values."""
    runs = [(table, run) for table in report.tables for run in table.runs]
    groups = list(dict.fromkeys(key for _, run in runs for key in run.choices))
    overrides = list(dict.fromkeys(key for _, run in runs for key in run.overrides if key not in groups))
    metrics = list(dict.fromkeys(name for _, run in runs for name in run.final))
    path = report.output / "report.csv"
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["table", "run", "status", "error", "g_step", *groups, *overrides,
                         *metrics, *(f"{name} source" for name in metrics)])
        for table, run in runs:
            final = run.final if run.status != "failed" else {}
            writer.writerow([table.title, str(run.directory), run.status, run.error or "",
                             "" if run.final_g_step is None else run.final_g_step,
                             *(run.choices.get(group, "") for group in groups),
                             *(run.value_of(key) for key in overrides),
                             *(final[name].value if name in final else "" for name in metrics),
                             *(final[name].source if name in final else "" for name in metrics)])
    return path

