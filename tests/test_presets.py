"""Experiment presets, sweeps and the papers' numbers: every preset composes, trains a few
generator steps on synthetic data of its size, and changes one factor when overridden."""

import importlib.util
import itertools
from pathlib import Path

import pytest
from conftest import group_options

from sngan_repro import compose, validate
from sngan_repro.paper_results import load_paper_results
from sngan_repro.train import run

ROOT = Path(__file__).resolve().parent.parent
PAPER_PRESETS = [name for name in group_options("experiment") if name != "quickstart"]


def _load_sweeps():
    spec = importlib.util.spec_from_file_location("sweep", ROOT / "scripts" / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SWEEPS


@pytest.mark.parametrize("preset", PAPER_PRESETS)
def test_preset_trains_three_steps_on_synthetic_data_of_its_size(preset, tmp_path):
    cfg = compose([f"experiment={preset}"])
    size, channels = cfg.dataset.image_size, cfg.dataset.channels
    # a reconstruction metric is kept (tiny); Inception metrics are off (no weights offline)
    metrics = (["dataset.heldout=8", "metrics.reconstruction={every: 3, images: 4, steps: 2}"]
               if cfg.metrics.reconstruction else ["metrics=none"])
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


def _expand(overrides: list[str]) -> list[list[str]]:
    axes = [[f"{o.split('=')[0]}={value}" for value in o.split("=", 1)[1].split(",")] for o in overrides]
    return [list(combination) for combination in itertools.product(*axes)]


@pytest.mark.parametrize("name", sorted(_load_sweeps()))
def test_every_sweep_point_composes_and_validates(name):
    _, commands = _load_sweeps()[name]
    points = [point for overrides in commands for point in _expand(overrides)]
    assert points
    for point in points:
        validate(compose(point))


def test_paper_results_name_this_projects_options():
    records = load_paper_results()
    datasets, archs = set(group_options("dataset")), set(group_options("arch")) | {None, "biggan"}
    known_methods = set(group_options("norm")) | {"vanilla", "bn", "wn", "wn_affine", "wn_mean_only_bn",
                                                  "tanh", "bn_tanh", "bn_clip", "real", "began", "ebgan"}
    for record in records:
        assert record["dataset"] in datasets, record
        assert record["arch"] in archs, record
        assert record["method"] in known_methods, record
        assert isinstance(record["value"], (int, float)) and record["protocol"], record
    by_paper = {paper: sum(r["paper"] == paper for r in records) for paper in {r["paper"] for r in records}}
    assert by_paper == {"Miyato et al. 2018 (SN-GAN)": 19, "Kligvasser & Michaeli (SAN)": 10, "Xiang & Li (WN)": 25,
                        "Feng, Xu & Li (SNGAN reproducibility report)": 14,
                        "Mullery & Whelan (final-layer BN)": 3}


def test_sn_gan_cifar10_standard_cnn_number():
    [record] = [r for r in load_paper_results() if r["method"] == "sn" and r["arch"] == "sngan_cnn"
                and r["dataset"] == "cifar10" and r["metric"] == "inception_score" and r["paper"].startswith("Miyato")]
    assert record["value"] == 7.58 and "50,000 samples, 10 splits" in record["protocol"]


@pytest.mark.slow
def test_cfg_job_prints_every_preset():
    import subprocess
    import sys

    import yaml

    for preset in group_options("experiment"):
        result = subprocess.run([sys.executable, "-m", "sngan_repro.train", f"experiment={preset}", "--cfg", "job"],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (preset, result.stderr)
        printed = yaml.safe_load(result.stdout)
        assert printed["dataset"]["_target_"] == compose([f"experiment={preset}"]).dataset._target_, preset
