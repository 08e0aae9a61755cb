"""The report: a real sweep (2 methods x 2 settings, plus a job that fails) through the command line, then
``python -m sngan_repro.report``; the tables' values, the failure, the CSV and each figure's plotted data are
checked against the runs' own files, read here independently of the report's reader."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.util import tensor_util

from sngan_repro import compose
from sngan_repro.report import build_report
from sngan_repro.report.__main__ import main as report_main
from sngan_repro.train import run

RECONSTRUCTION = "reconstruction/running_4img_2steps"
TINY = ["experiment=quickstart", "dataset=synthetic", "dataset.size=64", "dataset.image_size=16",
        "dataset.channels=1", "dataset.heldout=6", "arch.width=0.125", "train.steps=6", "train.batch_size=8",
        "train.log_every=2", "train.sample_every=3", "train.checkpoint_every=0", "train.num_samples=8",
        "train.diagnostics_every=0", "metrics=xiang_running",
        "metrics.measures.reconstruction={every: 3, images: 4, steps: 2}",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


# the command line's entry point run for several command lines in one interpreter (its start-up paid once)
DRIVER = """import json, sys
import sngan_repro.train as train
codes = []
for overrides in json.loads(sys.argv[1]):
    sys.argv = [train.__file__, "-m", *overrides]
    try:
        train.main()
    except SystemExit as exit:  # the command's exit code, e.g. 2 for a sweep with a run refused
        codes.append(exit.code)
sys.exit(max(codes, default=0))
"""


def _train_cli(*command_lines: list[str], exit_code: int = 0) -> None:
    """``python -m sngan_repro.train -m <TINY> <overrides>`` for each list of overrides."""
    result = subprocess.run([sys.executable, "-c", DRIVER, json.dumps([[*TINY, *line] for line in command_lines])],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == exit_code, result.stderr[-3000:]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """norm=sn,none x optim=B,C in one sweep, and in the same sweep folder a job whose n_dis is refused."""
    folder = tmp_path_factory.mktemp("report") / "sweep"
    _train_cli(["norm=sn,none", "optim=B,C", f"hydra.sweep.dir={folder}"],
               ["optim.n_dis=0", f"hydra.sweep.dir={folder}", "hydra.sweep.subdir=failing"], exit_code=2)
    return folder


@pytest.fixture(scope="module")
def report(sweep):
    return build_report([sweep])


def _logged(run_directory, tag: str) -> dict[int, float]:
    """{step: value} of a scalar, straight from the event file's records."""
    values = {}
    for path in sorted((run_directory / "tensorboard").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == tag:  # a simple value, or a scalar tensor (summary format v2)
                    values[event.step] = (value.simple_value if value.WhichOneof("value") == "simple_value"
                                          else float(tensor_util.make_ndarray(value.tensor)))
    return values


def _jobs(sweep) -> dict[tuple[str, str], object]:
    """{(norm, optim): job folder} of the 2x2 sweep, from each job's own overrides."""
    jobs = {}
    for job in sweep.iterdir():
        overrides_file = job / ".hydra" / "overrides.yaml"
        if job.name != "failing" and overrides_file.is_file():
            overrides = dict(o.split("=", 1) for o in yaml.safe_load(overrides_file.read_text()))
            jobs[overrides["norm"], overrides["optim"]] = job
    assert len(jobs) == 4
    return jobs


def _markdown_rows(text: str, header_start: str) -> tuple[list[str], list[list[str]]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return header, rows


@pytest.mark.slow
def test_the_sweep_table_has_a_row_per_point_with_its_values_and_lists_the_failure(sweep, report):
    jobs = _jobs(sweep)
    text = (report.output / "report.md").read_text()
    header, rows = _markdown_rows(text, "| norm | optim |")
    assert header[:4] == ["norm", "optim", "seeds", "g_step"] and RECONSTRUCTION in header
    assert sorted((row[0], row[1]) for row in rows) == sorted(jobs)
    for row in rows:
        logged = _logged(jobs[row[0], row[1]], RECONSTRUCTION)
        assert row[3] == "6" and float(row[header.index(RECONSTRUCTION)]) == pytest.approx(logged[6], rel=1e-3)
    assert "(optim.n_dis=0): optim.n_dis=0 must be an integer >= 1" in text  # the failure, with what set it apart
    assert "No published number is of these runs (dataset=synthetic" in text
    assert f"- `{RECONSTRUCTION}`: " in text  # its protocol is stated
    assert [(row[0], row[1]) for row in rows] == [("none", "B"), ("none", "C"), ("sn", "B"), ("sn", "C")]
    recorded = json.loads((jobs["sn", "B"] / "run.json").read_text())["metrics"]  # as the run named it
    assert list(recorded) == [RECONSTRUCTION] and "4 held-out images" in recorded[RECONSTRUCTION]

    with (report.output / "report.csv").open() as file:
        records = list(csv.DictReader(file))
    assert len(records) == 5
    failed = [record for record in records if record["status"] == "failed"]
    assert len(failed) == 1 and "optim.n_dis=0 must be an integer >= 1" in failed[0]["error"]
    for record in records:
        if record["status"] != "failed":
            job = jobs[record["norm"], record["optim"]]
            assert record["run"] == str(job) and record["status"] == "finished"
            assert float(record[RECONSTRUCTION]) == pytest.approx(_logged(job, RECONSTRUCTION)[6], rel=1e-6)


def _figure(report, name: str) -> dict:
    folder = report.output / "figures" / "1-sweep"
    assert (folder / f"{name}.png").is_file()
    import matplotlib.image

    assert matplotlib.image.imread(folder / f"{name}.png").shape[2] in (3, 4)
    return json.loads((folder / f"{name}.json").read_text())


def _drawn_lines(report, name: str) -> list[dict]:
    """{label: (x, y)} of the lines the figure draws, per panel, from the report's own figure object."""
    figure_data = next(f for f in report.figures[report.tables[0].title] if f.name == name)
    figure = figure_data.draw()
    return [{line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in axes.get_lines()
             if not line.get_label().startswith("_")} for axes in figure.axes if axes.get_visible()]


@pytest.mark.slow
def test_each_figure_plots_one_series_per_method_from_the_runs_data(sweep, report):
    jobs, methods = _jobs(sweep), {"norm=sn", "norm=none"}
    scores = _figure(report, "scores_by_setting")
    (panel,) = scores["panels"]
    assert set(panel["series"]) == methods
    for method, series in panel["series"].items():
        assert series["x"] == ["B", "C"]
        expected = [_logged(jobs[method.split("=")[1], s], RECONSTRUCTION)[6] for s in "BC"]
        np.testing.assert_allclose(series["y"], expected, rtol=1e-6)
    drawn = _drawn_lines(report, "scores_by_setting")
    assert set(drawn[0]) == methods and all(y == panel["series"][m]["y"] for m, (_, y) in drawn[0].items())

    curves = _figure(report, "curve_" + RECONSTRUCTION.replace("/", "_"))
    assert [p["title"] for p in curves["panels"]] == ["optim=B", "optim=C"]
    for panel, setting in zip(curves["panels"], "BC"):
        assert set(panel["series"]) == methods
        logged = _logged(jobs["sn", setting], RECONSTRUCTION)
        assert panel["series"]["norm=sn"]["x"] == sorted(logged) == [0, 3, 6]
        np.testing.assert_allclose(panel["series"]["norm=sn"]["y"], [logged[s] for s in (0, 3, 6)], rtol=1e-6)

    gaps = _figure(report, "critic_gap")
    for panel, setting in zip(gaps["panels"], "BC"):
        assert set(panel["series"]) == methods
        logged = _logged(jobs["none", setting], "d_out/real_minus_fake")
        values = [logged[s] for s in sorted(logged)]  # 6 points: a window of a tenth of them, at least 1: the curve
        assert panel["series"]["norm=none"]["x"] == sorted(logged)
        np.testing.assert_allclose(panel["series"]["norm=none"]["y"], values, rtol=1e-5)
    assert gaps["title"].endswith(", 1-point running mean")

    spectra = _figure(report, "singular_values_optim=B")
    assert all(set(panel["series"]) == methods for panel in spectra["panels"])
    state = torch.load(jobs["none", "B"] / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    weight = state["state_dict"]["discriminator.features.0.weight"].double().flatten(1)  # norm=none: as stored
    squared = torch.linalg.svdvals(weight) ** 2
    panel = next(p for p in spectra["panels"] if p["title"] == "features.0")
    np.testing.assert_allclose(panel["series"]["norm=none"]["y"], (squared / squared[0]).tolist(), rtol=1e-6)

    histograms = _figure(report, "pixel_histograms_optim=C")
    for panel in histograms["panels"]:
        assert set(panel["series"]) == {"data"} | methods
        for series in panel["series"].values():  # each a probability density over the pixel values
            width = series["x"][1] - series["x"][0]
            assert sum(series["y"]) * width == pytest.approx(1.0, rel=1e-6)

    timing = _figure(report, "critic_update_time")
    (panel,) = timing["panels"]
    assert {label.split(" (")[0] for label in panel["series"]} == methods
    assert all(series["y"][0] > 0 for series in panel["series"].values())
    logged = _logged(jobs["sn", "B"], "time/critic_update_ms")
    assert sorted(logged) == [2, 4, 6]  # the critic updates before each logged generator update are timed


@pytest.mark.slow
def test_metrics_under_different_protocols_land_in_different_columns(sweep, tmp_path):
    """The same metric with 6 images instead of 4 is another protocol, so another column; neither run has a
    value in the other's."""
    other = tmp_path / "six_images"
    six_images = [o.replace("images: 4", "images: 6") for o in TINY]
    run(compose([*six_images, "optim=B", f"paths.output_dir={other}"]))
    one_of_the_sweep = _jobs(sweep)["sn", "B"]
    built = build_report([one_of_the_sweep, other], tmp_path / "report")
    text = (built.output / "report.md").read_text()
    header, rows = _markdown_rows(text, "| metrics.measures.reconstruction.images |")
    six = "reconstruction/running_6img_2steps"
    assert RECONSTRUCTION in header and six in header
    by_images = {row[0]: row for row in rows}
    assert by_images["4"][header.index(six)] == "—" and by_images["6"][header.index(RECONSTRUCTION)] == "—"
    assert float(by_images["6"][header.index(six)]) == pytest.approx(_logged(other, six)[6], rel=1e-3)
    assert f"- `{six}`: " in text and f"- `{RECONSTRUCTION}`: " in text


def _fake_run(folder, overrides: list[str], final: dict | None, preset: str = "paper_miyato"):
    """A run directory as train writes it (config, overrides, record) for CIFAR-10 settings this machine cannot
    train; ``final``: the results of an evaluation document of the last checkpoint."""
    cfg = compose(overrides)
    OmegaConf.resolve(cfg.choices)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create({"choices": cfg.choices, **{
        key: cfg[key] for key in ("dataset", "arch", "norm", "loss", "optim", "train", "seed")}})))
    (folder / "run.json").write_text(json.dumps({"status": "finished", "g_step": cfg.train.steps}))
    if final is not None:
        (folder / "evaluation").mkdir()
        (folder / "evaluation" / "last_x.json").write_text(json.dumps({
            "g_step": cfg.train.steps, "metrics_preset": preset,
            "results": {name: {"value": value, "protocol": f"protocol of {name}"} for name, value in final.items()}}))


def test_published_numbers_sit_beside_their_rows_with_the_protocol_and_length_said(tmp_path):
    base = ["experiment=sngan_cifar10_cnn", "loss=nonsat", "train.steps=500"]
    _fake_run(tmp_path / "sweep" / "0", [*base, "optim=B"], {"is/50k_10splits": 6.0, "is/50k_10splits_std": 0.1})
    _fake_run(tmp_path / "sweep" / "1", [*base, "optim=C"], {"is/50k_10splits": 5.0, "is/50k_10splits_std": 0.2})
    built = build_report([tmp_path / "sweep"])
    text = (built.output / "report.md").read_text()
    header, rows = _markdown_rows(text, "| optim |")
    column = header.index("published inception_score (Miyato et al. 2018 (SN-GAN), Table 2)")
    by_setting = {row[0]: row for row in rows}
    assert by_setting["B"][column] == "7.42 ± 0.08"  # "(ours) SN-GANs": setting B
    assert by_setting["C"][column] == "—"
    assert by_setting["B"][header.index("is/50k_10splits")] == "6 ± 0.1 (splits)"
    assert "Ours were evaluated with metrics=paper_miyato" in text
    assert "the paper's number is after 100000 generator updates, ours after 500" in text

    _fake_run(tmp_path / "logged" / "0", [*base, "optim=B"], {"is/50k_10splits": 6.0}, preset="train_fast")
    text = (build_report([tmp_path / "logged"]).output / "report.md").read_text()
    assert "NOT the protocol of our columns" in text and "metrics=paper_miyato" in text


def test_table1_rows_of_the_autoencoder_critics_get_their_published_numbers(tmp_path):
    """Feng, Xu & Li's Table 1: a BEGAN, an EBGAN and an SNGAN run of the report_table1 sweep each sit beside their
    own row's published IS and FID."""
    points = {"0": "repro_report", "1": "repro_report_began", "2": "repro_report_ebgan"}
    for folder, preset in points.items():
        _fake_run(tmp_path / "sweep" / folder, [f"experiment={preset}", "optim=report_B", "train.steps=500"],
                  {"is/50k_10splits": 2.0, "fid/5k_vs_train10k": 200.0})
    text = (build_report([tmp_path / "sweep"]).output / "report.md").read_text()
    header, rows = _markdown_rows(text, "| experiment |")
    paper = "(Feng, Xu & Li (SNGAN reproducibility report), Table 1)"
    published = {row[0]: (row[header.index(f"published inception_score {paper}")],
                          row[header.index(f"published fid {paper}")]) for row in rows}
    assert published == {"repro_report": ("3.885", "173.4"), "repro_report_began": ("2.89", "193.1"),
                         "repro_report_ebgan": ("2.292", "232.2")}


def test_report_refuses_paths_without_runs_in_one_sentence(tmp_path, capsys):
    assert report_main([str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {tmp_path / 'missing'} is not a directory; give run or "
                                              f"sweep directories (multirun/<day>/<time>).")
    (tmp_path / "empty").mkdir()
    assert report_main([str(tmp_path / "empty")]) == 2
    assert "holds no run directory" in capsys.readouterr().err
    assert report_main([str(tmp_path), str(tmp_path)]) == 2
    assert "no --output" in capsys.readouterr().err


def test_sweep_commands_run_side_by_side_each_on_its_share_of_the_threads(tmp_path):
    """scripts/sweep.py --jobs 2: commands run two at a time, each with half the CPU threads, output in
    <folder>/<index>.log; a failing command is returned, the others still run."""
    import importlib.util
    import os
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "sweep.py"
    spec = importlib.util.spec_from_file_location("sweep", script)
    sweep_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep_script)
    started = tmp_path / "started"
    started.mkdir()
    # each command marks its start, waits (up to 60 s) until two have started, prints how many have
    commands = [[sys.executable, "-c", f"import os, pathlib, time; p = pathlib.Path({str(started)!r}); "
                 f"(p / '{index}').touch(); deadline = time.time() + 60\n"
                 f"while len(list(p.iterdir())) < 2 and time.time() < deadline: time.sleep(0.05)\n"
                 f"print(len(list(p.iterdir())), os.environ['OMP_NUM_THREADS']); raise SystemExit({index == 1})"]
                for index in range(3)]
    failed = sweep_script.run_side_by_side(commands, 2, tmp_path / "sweep")
    assert failed == [commands[1]]
    threads = str(max(1, (os.cpu_count() or 1) // 2))
    seen = [(tmp_path / "sweep" / f"{index}.log").read_text().split() for index in range(3)]
    counts = [int(count) for count, _ in seen]
    assert min(counts[:2]) >= 2 and counts[2] == 3  # the first two ran together (alone, one would wait 60 s and
    # print 1), the third only once one of them had ended
    assert all(share == threads for _, share in seen)


def test_runs_differing_only_in_seed_share_a_row_with_mean_and_std(tmp_path):
    base = ["experiment=sngan_cifar10_cnn", "loss=nonsat", "train.steps=500"]
    values = {("B", 0): 6.0, ("B", 1): 7.5, ("B", 2): 6.3, ("C", 0): 5.0}
    for index, ((setting, seed), value) in enumerate(values.items()):
        _fake_run(tmp_path / "sweep" / str(index), [*base, f"optim={setting}", f"seed={seed}"],
                  {"is/50k_10splits": value})
    table = build_report([tmp_path / "sweep"]).tables[0]
    assert table.factors == ["optim"] and [row.seeds for row in table.rows] == [["0", "1", "2"], ["0"]]
    text = (tmp_path / "sweep" / "report" / "report.md").read_text()
    header, rows = _markdown_rows(text, "| optim |")
    seeds_b = np.array([6.0, 7.5, 6.3])
    assert rows[0][header.index("is/50k_10splits")] == f"{seeds_b.mean():.4g} ± {seeds_b.std(ddof=1):.4g}"
    assert rows[1][header.index("is/50k_10splits")] == "5"


@pytest.mark.parametrize("points, window", [(6, 1), (20, 2), (250, 25), (2000, 100)])
def test_the_critic_gaps_running_mean_window_fits_the_run(points, window):
    """Mullery & Whelan's 100-point running mean for long runs; a tenth of the logged points for shorter ones, so a
    20-update run shows a curve, not one point. Checked against numpy's moving average of each run, averaged."""
    from sngan_repro.report.figures import running_mean, running_window
    from sngan_repro.report.runs import Curve

    rng = np.random.default_rng(0)
    curves = [Curve(np.arange(points) * 5, rng.normal(size=points)) for _ in range(2)]
    assert running_window(curves) == window
    series = running_mean(curves, window)
    expected = np.mean([np.convolve(c.values, np.ones(window) / window, mode="valid") for c in curves], axis=0)
    assert series.x == (np.arange(points) * 5)[window - 1:].tolist()
    np.testing.assert_allclose(series.y, expected)


def test_values_spanning_decades_get_a_log_axis_and_a_time_is_a_labelled_bar():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from sngan_repro.report.figures import FigureData, Panel, Series, spans_decades

    assert spans_decades({"a": Series([0, 1], [820.0, 11.0])}) and not spans_decades({"a": Series([0, 1], [9.0, 2.0])})
    assert not spans_decades({"a": Series([0, 1], [-1.0, 30.0])})  # a log axis needs positive values
    fid = Panel("", "generator updates", "fid", {"sn": Series([0, 1500], [820.0, 11.0])}, log_y=True)
    time = Panel("", "method", "ms", {"norm=sn": Series(["norm=sn"], [912.5])}, categorical=True, bars=True)
    figure = FigureData("f", "t", [fid, time]).draw()
    FigureCanvasAgg(figure).draw()
    curve_axes, bar_axes = figure.axes[:2]
    assert curve_axes.get_yscale() == "log"
    assert [text.get_text() for text in bar_axes.texts] == ["912.5"] and bar_axes.get_xlim()[0] == 0


def test_kid_and_precision_recall_get_columns_with_their_protocols_and_image_evaluations_stay_out(tmp_path):
    kid, precision = "kid/50k_vs_train50k_100x1k_poly3", "vgg16_precision/10k_vs_train10k_k3"
    _fake_run(tmp_path / "sweep" / "0", ["experiment=sngan_cifar10_cnn", "train.steps=500"],
              {kid: 0.0123, f"{kid}_std": 0.001, precision: 0.71, "vgg16_recall/10k_vs_train10k_k3": 0.52}, "full")
    # an evaluation of exported images written into the run's folder is not the checkpoint's evaluation
    (tmp_path / "sweep" / "0" / "evaluation" / "samples_full.json").write_text(json.dumps({
        "g_step": None, "checkpoint": None, "metrics_preset": "full",
        "results": {"fid/50k_vs_ref50k": {"value": 1.0, "protocol": "images"}}}))
    text = (build_report([tmp_path / "sweep"]).output / "report.md").read_text()
    header, (row,) = _markdown_rows(text, "| seeds |")
    assert row[header.index(kid)] == "0.0123 ± 0.001 (subsets)" and row[header.index(precision)] == "0.71"
    assert "fid/50k_vs_ref50k" not in text
    assert f"- `{kid}`: protocol of {kid}" in text and f"- `{precision}`: protocol of {precision}" in text
