"""Experiment presets, sweeps and the papers' numbers: every preset composes, trains a few
generator steps on synthetic data of its size, and changes one factor when overridden."""

import functools
import importlib.util
import itertools
import json
from pathlib import Path

import pytest
from conftest import group_options
from omegaconf import OmegaConf

from sngan_repro import compose, validate
from sngan_repro.paper_results import load_paper_results, published_for, tag_mismatches
from sngan_repro.train import run

ROOT = Path(__file__).resolve().parent.parent
PAPER_PRESETS = [name for name in group_options("experiment") if name != "quickstart"]


def _load_sweeps():
    spec = importlib.util.spec_from_file_location("sweep", ROOT / "scripts" / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SWEEPS


@pytest.mark.slow
@pytest.mark.parametrize("preset", PAPER_PRESETS)
def test_preset_trains_three_steps_on_synthetic_data_of_its_size(preset, tmp_path):
    cfg = compose([f"experiment={preset}"])
    size, channels = cfg.dataset.image_size, cfg.dataset.channels
    # a reconstruction metric is kept (tiny); Inception metrics are off (no weights offline)
    metrics = (["dataset.heldout=8", "metrics.measures.reconstruction={every: 3, images: 4, steps: 2}"]
               if "reconstruction" in cfg.metrics.measures else ["metrics=none"])
    tiny = compose([*metrics,
        f"experiment={preset}", "dataset=synthetic", f"dataset.image_size={size}", f"dataset.channels={channels}",
        "dataset.size=32", "arch.width=0.0625", "train.batch_size=4", "train.g_batch_size=4",
        "train.steps=3", "train.num_samples=4", "trainer=cpu", "logger=none", "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", "optim.n_dis_boost=null", f"paths.output_dir={tmp_path}",
    ])
    module = run(tiny)
    assert module.g_step == 3
    assert module.generate(module.fixed_z).shape[-3:] == (channels, size, size)


@pytest.mark.parametrize("preset,override,group", [
    ("san_cifar10_cnn", "optim=san_D", "optim"), ("sngan_cifar10_cnn", "norm=ln", "norm"),
    ("xiang_celeba", "dataset=celeba64", "dataset"),
])
def test_overriding_a_preset_changes_one_factor(preset, override, group):
    base, changed = compose([f"experiment={preset}"]), compose([f"experiment={preset}", override])
    assert changed.choices[group] == override.split("=")[1]
    different = [key for key in ("dataset", "arch", "norm", "loss", "optim", "train") if base[key] != changed[key]]
    assert different == [group]


@pytest.mark.parametrize("method", ["began", "ebgan"])
def test_table1_autoencoder_presets_share_the_reports_settings(method):
    """Feng, Xu & Li's BEGAN and EBGAN rows differ from experiment=repro_report in the critic, loss and generator
    only: the same data, TTUR settings, run length and batch."""
    report, own = compose(["experiment=repro_report"]), compose([f"experiment=repro_report_{method}"])
    assert (own.choices.arch, own.choices.loss, own.choices.norm) == (method, method, "none")
    for key in ("dataset", "optim", "train"):
        assert own[key] == report[key], key


def _expand(overrides: list[str]) -> list[list[str]]:
    axes = [[f"{o.split('=')[0]}={value}" for value in o.split("=", 1)[1].split(",")] for o in overrides]
    return [list(combination) for combination in itertools.product(*axes)]


@functools.cache
def _composed(point: tuple[str, ...]):
    return compose(list(point))


def _identity(cfg) -> str:
    """What a run computes: its whole resolved config but where it writes (paths, the logger's folder, and the run
    directory inside the callbacks' settings: each composition gets its own time-stamped one)."""
    identity = json.dumps({key: value for key, value in OmegaConf.to_container(cfg).items()
                           if key not in ("paths", "logger")}, sort_keys=True)
    return identity.replace(cfg.paths.output_dir, "<run directory>")


def _sweep_points() -> list[tuple[str, ...]]:
    return [tuple(point) for _, commands in _load_sweeps().values() for overrides in commands
            for point in _expand(overrides)]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(_load_sweeps()))
def test_every_sweep_point_composes_and_validates(name):
    _, commands = _load_sweeps()[name]
    points = [point for overrides in commands for point in _expand(overrides)]
    assert points
    for point in points:
        validate(_composed(tuple(point)))


XIANG_VARIANTS = {"vanilla", "bn", "wn", "wn_affine", "wn_mean_bn"}
HEADS = {"tanh", "bn_tanh", "bn_clip"}
NOT_BUILT = {"real"}  # the data itself


def test_paper_results_name_this_projects_options():
    records = load_paper_results()
    datasets, archs = set(group_options("dataset")), set(group_options("arch")) | {None, "biggan"}
    known_methods = set(group_options("norm")) | set(group_options("loss")) | XIANG_VARIANTS | HEADS | NOT_BUILT
    for record in records:
        assert record["dataset"] in datasets, record
        assert record["arch"] in archs, record
        assert record["method"] in known_methods, record
        assert isinstance(record["value"], (int, float)) and record["protocol"], record
        if "evaluate" in record:
            assert record["evaluate"] in group_options("metrics"), record
        runnable = record["method"] not in NOT_BUILT and record["arch"] != "biggan"
        assert (record["run"] is not None) == (runnable and not record["metric"].endswith("_ms")), record


def _runs():
    return [(record, point) for record in load_paper_results() if record["run"] for point in _expand(record["run"])]


@pytest.mark.slow
def test_every_published_number_is_trained_by_its_run_as_tagged():
    """Each number's run trains what its tags say (dataset, architecture, method, loss, setting, length)."""
    records = load_paper_results()
    for record, point in _runs():
        cfg = _composed(tuple(point))
        validate(cfg)
        assert tag_mismatches(record, cfg) == {}, (record["paper"], record["table"], record["row"], point)
        assert record in published_for(cfg, records)  # the report finds it beside such a run


def test_a_run_differing_in_a_tag_is_told_apart():
    """The tags are compared for real: a run of another setting, loss or length differs in exactly that tag."""
    record = next(r for r in load_paper_results() if r["row"] == "(ours) SN-GANs" and r["dataset"] == "cifar10"
                  and r["metric"] == "fid")
    base = ["experiment=sngan_cifar10_cnn", "loss=nonsat", "train.steps=100000"]
    assert tag_mismatches(record, compose(base)) == {}
    assert tag_mismatches(record, compose([*base, "optim=C"])) == {"optim": "paper B, run C"}
    assert set(tag_mismatches(record, compose([*base, "train.steps=500"]))) == {"g_steps"}
    assert set(tag_mismatches(record, compose([*base, "loss=hinge"]))) == {"loss"}
    assert record not in published_for(compose([*base, "optim=C"]))
    assert record in published_for(compose([*base, "train.steps=500"]))  # the length is said, not a mismatch
    best_of = next(r for r in load_paper_results() if r["row"] == "Weight Norm." and r["dataset"] == "cifar10")
    assert "optim" not in tag_mismatches(best_of, compose(["experiment=sngan_cifar10_cnn", "norm=wn", "optim=E"]))


@pytest.mark.slow
def test_every_published_number_is_a_point_of_its_papers_sweep():
    """scripts/sweep.py runs every row of the papers' tables: each published number's run is a sweep point."""
    swept = {_identity(_composed(point)) for point in _sweep_points()}
    missing = [(r["paper"], r["table"], r["row"], p) for r, p in _runs() if _identity(_composed(tuple(p))) not in swept]
    assert not missing, missing


def test_the_published_sn_numbers_are_the_rows_they_are():
    """SAN's Table 1 quotes SN-GAN's 7.58 (CIFAR-10) and 8.79 (STL-10): Miyato et al.'s hinge-loss rows, the STL-10
    one with twice the generator updates; the presets for SN run exactly those rows."""
    records = load_paper_results()
    quoted = {(r["dataset"], r["value"]): r for r in records
              if r.get("quoted_by") and r["method"] == "sn" and r["arch"] == "sngan_cnn"}
    assert set(quoted) == {("cifar10", 7.58), ("stl10", 8.79)}
    assert quoted["cifar10", 7.58]["loss"] == quoted["stl10", 8.79]["loss"] == "hinge"
    assert (quoted["cifar10", 7.58]["g_steps"], quoted["stl10", 8.79]["g_steps"]) == (100000, 200000)
    assert all("50,000 samples, 10 splits" not in r["protocol"] for r in records if r["paper"].startswith("Miyato"))
    for dataset, value in quoted:
        preset = compose([f"experiment=sngan_{dataset}_cnn"])
        assert (preset.choices.loss, preset.train.steps, preset.choices.optim) == ("hinge",
                                                                                   quoted[dataset, value]["g_steps"],
                                                                                   quoted[dataset, value]["optim"])


def _printed_job_config(overrides: list[str]) -> str:
    """What ``python -m sngan_repro.train <overrides> --cfg job`` prints, composed in this process: Hydra's
    composition of the job config (no ``hydra`` node), unresolved, as YAML."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from sngan_repro.config import CONFIG_DIR, CONFIG_NAME

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return OmegaConf.to_yaml(hydra_compose(CONFIG_NAME, overrides=overrides))


@pytest.mark.parametrize("preset", group_options("experiment"))
def test_cfg_job_prints_every_preset(preset):
    """Every preset's ``--cfg job`` printout is YAML naming the dataset that ``compose`` (the config a run
    trains with) gives; that the command line prints the config compose gives is shown, once, in
    test_config.py::test_compose_matches_command_line."""
    import yaml

    printed = yaml.safe_load(_printed_job_config([f"experiment={preset}"]))
    assert printed["dataset"]["_target_"] == compose([f"experiment={preset}"]).dataset._target_, preset


