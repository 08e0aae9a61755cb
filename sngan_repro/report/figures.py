"""The papers' figures from a table of runs. Each figure is data first (``FigureData``: panels of named series,
written beside the PNG as JSON) and drawn from that data only, one line per series."""

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from matplotlib.figure import Figure

from ..console import counted
from ..module import load_gan
from .runs import Curve, Run
from .tables import Row, Table, mean_std

RUNNING_MEAN_POINTS = 100  # Mullery & Whelan plot the critic loss as a 100-point running mean
RUNNING_MEAN_FRACTION = 10  # a shorter run's window: a tenth of its logged points (a curve, not one point)
DECADES = 10.0  # a panel whose positive values span this factor or more gets a log y axis
CRITIC_GAP = "d_out/real_minus_fake"
CRITIC_TIME = "time/critic_update_ms"
HISTOGRAM_PANELS = 4  # pixel histograms at up to this many generator updates, first and last included
HISTOGRAM_BINS = 50


@dataclass
class Series:
    x: list
    y: list
    std: list | None = None  # drawn as a band (numeric x) or error bars (categorical x)
    band: tuple[list, list] | None = None  # (low, high): an asymmetric band, e.g. a bootstrap interval
    color: str | None = None  # e.g. one method's colour in every panel (default: the next in the cycle)


@dataclass
class Panel:
    title: str
    xlabel: str
    ylabel: str
    series: dict[str, Series]
    categorical: bool = False  # x values are names (settings, methods)
    bars: bool = False  # one value per name, drawn as labelled bars from 0 (e.g. a time)
    log_y: bool = False  # values spanning decades (FID from an untrained generator to a trained one)
    boxes: bool = False  # each series one group of values (y), drawn as a box with its points
    scatter: bool = False  # points, no lines (e.g. a hyper-parameter against the metric)
    log_x: bool = False


@dataclass
class FigureData:
    name: str  # the file stem
    title: str
    panels: list[Panel] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    def draw(self) -> Figure:
        columns = min(len(self.panels), 3)
        rows = math.ceil(len(self.panels) / columns)
        figure = Figure(figsize=(4.8 * columns, 3.6 * rows), dpi=100, layout="constrained")
        figure.suptitle(self.title)
        for panel, axes in zip(self.panels, figure.subplots(rows, columns, squeeze=False).flat):
            categories = list(dict.fromkeys(x for series in panel.series.values() for x in series.x))
            if panel.bars or panel.boxes:
                (draw_bars if panel.bars else draw_boxes)(axes, panel)
                continue
            for label, series in panel.series.items():
                x = [categories.index(value) for value in series.x] if panel.categorical else series.x
                if panel.scatter:
                    draw_points(axes, x, series.y, label, series.color)
                    continue
                line, = axes.plot(x, series.y, marker="o" if panel.categorical or len(x) < 30 else None,
                                  markersize=4, label=label, color=series.color)
                if series.band is not None:
                    axes.fill_between(x, *series.band, color=line.get_color(), alpha=0.2, linewidth=0)
                if series.std is not None and panel.categorical:
                    axes.errorbar(x, series.y, yerr=series.std, fmt="none", ecolor=line.get_color(), capsize=3)
                elif series.std is not None:
                    low, high = np.subtract(series.y, series.std), np.add(series.y, series.std)
                    axes.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
            if panel.categorical:
                axes.set_xticks(range(len(categories)), categories)
            if panel.log_y:
                axes.set_yscale("log")
            if panel.log_x:
                axes.set_xscale("log")
            axes.set(title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel)
            axes.legend(fontsize="small")
        for axes in figure.axes[len(self.panels):]:
            axes.set_visible(False)
        return figure


def draw_bars(axes, panel: Panel) -> None:
    """One horizontal bar per series (its one value), labelled with the value."""
    labels = list(panel.series)
    values = [panel.series[label].y[0] for label in labels]
    bars = axes.barh(range(len(labels)), values, height=0.5, color=[f"C{index}" for index in range(len(labels))])
    axes.bar_label(bars, [f"{value:.4g}" for value in values], padding=3)
    axes.set_yticks(range(len(labels)), labels)
    axes.invert_yaxis()  # the first series on top
    axes.set_xlim(0, max(values, default=1.0) * 1.25)  # room for the labels
    axes.set(title=panel.title, xlabel=panel.ylabel)


def draw_points(axes, x, y, label: str, color: str | None = None) -> None:
    """Points at (x, y); a non-finite y (a diverged or failed run) as a cross at the top edge of the axes, so that it
    is seen and counted, never dropped."""
    finite = [(a, b) for a, b in zip(x, y) if math.isfinite(b)]
    infinite = [a for a, b in zip(x, y) if not math.isfinite(b)]
    points = axes.scatter([a for a, _ in finite], [b for _, b in finite], s=14, alpha=0.7, color=color,
                          label=label + (f" ({len(infinite)} diverged or failed: x at the top)" if infinite else ""))
    if infinite:
        axes.scatter(infinite, [1.0] * len(infinite), marker="x", s=30, color=points.get_facecolor()[0],
                     transform=axes.get_xaxis_transform(), clip_on=False)


def draw_boxes(axes, panel: Panel) -> None:
    """One box per series (its values: quartiles, whiskers at 1.5 IQR) with every value as a point beside it;
    non-finite values (diverged or failed runs) as crosses at the top, counted in the group's label."""
    labels = []
    for index, (label, series) in enumerate(panel.series.items()):
        finite = [value for value in series.y if math.isfinite(value)]
        lost = len(series.y) - len(finite)
        color = series.color or f"C{index}"
        if finite:
            axes.boxplot([finite], positions=[index], widths=0.5, showfliers=False, medianprops={"color": color})
        jitter = np.random.default_rng(index).uniform(-0.12, 0.12, len(series.y))  # seeded: the same every time
        draw_points(axes, list(index + 0.35 + jitter), series.y, label, color=color)
        labels.append(f"{label}\n{counted(len(series.y), 'run')}" + (f"\n{lost} diverged/failed" if lost else ""))
    axes.set_xticks(range(len(labels)), labels, fontsize="small")
    axes.set_xlim(-0.6, len(labels) - 0.3)  # room for the points right of the last box
    if panel.log_y:
        axes.set_yscale("log")
    axes.set(title=panel.title, ylabel=panel.ylabel)


def spans_decades(series: dict[str, Series]) -> bool:
    values = [value for entry in series.values() for value in entry.y if math.isfinite(value)]
    return bool(values) and min(values) > 0 and max(values) >= DECADES * min(values)


def by_setting(table: Table) -> dict[str | None, list[Row]]:
    """The table's rows per optimizer setting (one group, None, when the setting does not vary)."""
    groups: dict[str | None, list[Row]] = {}
    for row in table.rows:
        groups.setdefault(row.factors.get(table.setting) if table.setting else None, []).append(row)
    return groups


def setting_title(table: Table, setting: str | None) -> str:
    return f"{table.setting}={setting}" if setting is not None else ""


def scores_by_setting(table: Table) -> list[FigureData]:
    """Final score per optimizer setting, one series per method, mean ± std over seeds (Miyato et al. Fig. 1,
    Kligvasser & Michaeli Fig. 16)."""
    if table.setting is None:
        return []
    figure = FigureData("scores_by_setting", "Final score per optimizer setting")
    for metric in table.metrics:
        series: dict[str, Series] = {}
        for row in table.rows:
            mean, std, _ = mean_std(row.values(metric))
            entry = series.setdefault(table.method_of(row), Series([], [], []))
            entry.x.append(row.factors[table.setting])
            entry.y.append(mean)
            entry.std.append(std or 0.0)
        figure.panels.append(Panel(metric, table.setting, metric, series, categorical=True))
    return [figure]


def curve_panels(table: Table, tag: str, ylabel: str, summarize) -> list[Panel]:
    """One panel per optimizer setting of the scalar ``tag`` over generator updates, one series per method:
    ``summarize(curves of the method's runs)``."""
    panels = []
    for setting, rows in by_setting(table).items():
        series = {}
        for row in rows:
            curves = [run.scalars()[tag] for run in row.runs if tag in run.scalars()]
            if curves:
                series[table.method_of(row)] = summarize(curves)
        if series:
            panels.append(Panel(setting_title(table, setting), "generator updates", ylabel, series))
    return panels


def over_seeds(curves: list[Curve]) -> Series:
    """Mean ± std over the runs (seeds) at the generator updates every one of them logged."""
    steps = sorted(set.intersection(*(set(curve.steps.tolist()) for curve in curves)))
    stacked = np.array([[dict(zip(curve.steps.tolist(), curve.values))[step] for step in steps] for curve in curves])
    return Series(steps, stacked.mean(axis=0).tolist(), stacked.std(axis=0, ddof=1).tolist() if len(curves) > 1
                  else None)


def running_window(curves: list[Curve]) -> int:
    """RUNNING_MEAN_POINTS logged points, or a tenth of the shortest run's logged points when that is fewer."""
    length = min(len(curve.steps) for curve in curves)
    return max(1, min(RUNNING_MEAN_POINTS, length // RUNNING_MEAN_FRACTION))


def running_mean(curves: list[Curve], window: int) -> Series:
    """The mean over the runs of each run's running mean over ``window`` logged points."""
    length = min(len(curve.steps) for curve in curves)
    kernel = np.full(window, 1.0 / window)
    smoothed = np.mean([np.convolve(curve.values[:length], kernel, mode="valid") for curve in curves], axis=0)
    return Series(curves[0].steps[window - 1:length].tolist(), smoothed.tolist())


def learning_curves(table: Table) -> list[FigureData]:
    """Each quality metric over generator updates, one series per method, mean ± std over seeds at the updates
    every seed measured (Kligvasser & Michaeli Fig. 14 and 17; Xiang & Li's running reconstruction loss, Fig. 1)."""
    figures = [FigureData(f"curve_{slug(metric)}", f"{metric} during training",
                          curve_panels(table, metric, metric, over_seeds)) for metric in table.metrics]
    for figure in figures:  # one scale for a metric's panels, so that settings compare at a glance
        log_y = spans_decades({f"{index}{name}": series for index, panel in enumerate(figure.panels)
                               for name, series in panel.series.items()})
        for panel in figure.panels:
            panel.log_y = log_y
    return [figure for figure in figures if figure.panels]


def critic_gap(table: Table) -> list[FigureData]:
    """The critic's E[D(x)] - E[D(G(z))] at every generator update (with loss=wgan its Wasserstein estimate, the
    critic loss without the penalty) as a 100-point running mean (Mullery & Whelan, Fig. 3; a shorter window for a
    short run, ``running_window``), per method (mean over seeds of the running means)."""
    curves = [run.scalars()[CRITIC_GAP] for row in table.rows for run in row.runs if CRITIC_GAP in run.scalars()]
    if not curves:
        return []
    window = running_window(curves)
    panels = curve_panels(table, CRITIC_GAP, "E[D(x)] - E[D(G(z))]", lambda curves: running_mean(curves, window))
    title = f"critic's E[D(x)] - E[D(G(z))], {window}-point running mean"
    return [FigureData("critic_gap", title, panels)] if panels else []


def pixel_histograms(table: Table) -> list[FigureData]:
    """Generated pixel values beside the data's at a few generator updates (Mullery & Whelan), per method (first
    seed), one figure per optimizer setting."""
    figures = []
    for setting, rows in by_setting(table).items():
        firsts = [(table.method_of(row), row.runs[0]) for row in rows]
        generated = {method: run.histograms("pixels/generated") for method, run in firsts}
        generated = {method: histograms for method, histograms in generated.items() if histograms}
        data = next((run.histograms("pixels/data") for _, run in firsts if run.histograms("pixels/data")), {})
        if not generated:
            continue
        common = sorted(set.intersection(*(set(histograms) for histograms in generated.values())))
        picks = sorted({common[round(i * (len(common) - 1) / max(HISTOGRAM_PANELS - 1, 1))]
                        for i in range(min(HISTOGRAM_PANELS, len(common)))})
        name = "pixel_histograms" + (f"_{slug(setting_title(table, setting))}" if setting is not None else "")
        figure = FigureData(name, f"pixel values, generated vs data {setting_title(table, setting)}".strip())
        for step in picks:
            shown = {**({"data": next(iter(data.values()))} if data else {}),
                     **{method: histograms[step] for method, histograms in generated.items()}}
            low = min(histogram.minimum for histogram in shown.values())
            high = max(histogram.maximum for histogram in shown.values())
            edges = np.linspace(low, high if high > low else low + 1.0, HISTOGRAM_BINS + 1)
            centers = ((edges[1:] + edges[:-1]) / 2).tolist()
            series = {label: Series(centers, histogram.density(edges).tolist()) for label, histogram in shown.items()}
            figure.panels.append(Panel(f"generator update {step}", "pixel value", "density", series))
        figures.append(figure)
    return figures


def critic_update_time(table: Table) -> list[FigureData]:
    """Milliseconds per critic update per method: the median over its runs' logged timings (Kligvasser & Michaeli,
    App. F), each method as one series, with its ratio to norm=none where that is in the table."""
    medians = {}
    for row in table.rows:
        timings = [run.scalars()[CRITIC_TIME].values for run in row.runs if CRITIC_TIME in run.scalars()]
        if timings:
            medians.setdefault(table.method_of(row), []).extend(np.concatenate(timings).tolist())
    if not medians:
        return []
    medians = {method: float(np.median(values)) for method, values in medians.items()}
    baseline = medians.get("norm=none")
    series = {(f"{method} ({value / baseline:.2f}x none)" if baseline else method): Series([method], [value])
              for method, value in medians.items()}
    panel = Panel("median over logged critic updates", "method", "ms per critic update", series, categorical=True,
                  bars=True)
    return [FigureData("critic_update_time", "time of one critic update", [panel])]


def singular_values(table: Table) -> list[FigureData]:
    """Squared singular values of each critic layer's weight as the network uses it (after its normalization),
    reshaped to out x (in * kh * kw), scaled so the largest is 1, in decreasing order (Miyato et al. Sec. 4.2),
    per method (first seed's last checkpoint), one figure per optimizer setting."""
    figures = []
    for setting, rows in by_setting(table).items():
        spectra = {table.method_of(row): layer_spectra(row.runs[0]) for row in rows if row.runs[0].last_checkpoint()}
        if not spectra:
            continue
        name = "singular_values" + (f"_{slug(setting_title(table, setting))}" if setting is not None else "")
        figure = FigureData(name, f"critic layers' squared singular values {setting_title(table, setting)}".strip())
        layers = list(dict.fromkeys(layer for layer_values in spectra.values() for layer in layer_values))
        for layer in layers:
            series = {method: Series(list(range(1, len(values[layer]) + 1)), values[layer])
                      for method, values in spectra.items() if layer in values}
            figure.panels.append(Panel(layer, "index", "sigma_i^2 / sigma_1^2", series))
        figures.append(figure)
    return figures


def layer_spectra(run: Run) -> dict[str, list[float]]:
    """{critic layer: its squared singular values over the largest, decreasing} from the run's last checkpoint (a
    layer with one singular value, e.g. a dense layer to one output, has nothing to show)."""
    module = load_gan(run.last_checkpoint(), torch.device("cpu"))  # eval mode: reading a weight steps nothing
    spectra = {}
    with torch.no_grad():
        for name, layer in module.discriminator.named_modules():
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)) and min(layer.weight.flatten(1).shape) > 1:
                squared = torch.linalg.svdvals(layer.weight.detach().double().flatten(1)) ** 2
                spectra[name] = (squared / squared[0]).tolist()
    return spectra


def slug(text: str) -> str:
    return "".join(character if character.isalnum() or character in "-=." else "_" for character in text).strip("_")


FIGURES = (scores_by_setting, learning_curves, singular_values, critic_gap, pixel_histograms, critic_update_time)


def figures_for(table: Table) -> list[FigureData]:
    return [figure for make in FIGURES for figure in make(table)]
