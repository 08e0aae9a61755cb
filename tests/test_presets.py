"""Experiment presets, sweeps and the papers' numbers: every preset composes, trains a few
generator steps on synthetic data of its size, and changes one factor when overridden."""

import functools
import importlib.util
import itertools
import json
from pathlib import Path

import pytest
from conftest import group_options
from omegaconf import DictConfig, ListConfig, OmegaConf

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
    only (and BEGAN in the report's 28 px, which the standard CNN cannot serve): the same data, TTUR settings,
    protocol, run length and batch."""
    report, own = compose(["experiment=repro_report"]), compose([f"experiment=repro_report_{method}"])
    assert (own.choices.arch, own.choices.loss, own.choices.norm) == (method, method, "none")
    assert own.dataset.image_size == {"began": 28, "ebgan": 32}[method]
    own.dataset.image_size = report.dataset.image_size
    for key in ("dataset", "optim", "train", "metrics"):
        assert own[key] == report[key], key


def test_the_reports_ln_row_as_its_code_ran_is_its_bn_row_with_layer_norm():
    bn, ln = compose(["experiment=repro_report_code_bn"]), compose(["experiment=repro_report_code_ln"])
    assert (ln.choices.norm, ln.norm.gain, ln.arch.generator.feature_norm) == ("ln", True, "layer")
    ln.arch.generator.feature_norm = bn.arch.generator.feature_norm
    for key in ("dataset", "arch", "loss", "optim", "train", "metrics"):
        assert ln[key] == bn[key], key


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


# -- what each preset is for: its paper's settings ---------------------------------------------------------------
# Written from the papers (section, table), or, where a paper is silent, from the source docs/fidelity.md records for
# the value (the authors' code, or our reading, marked "fidelity"); not copied from conf/experiment/*.yaml. Run
# lengths in epochs are turned into generator updates here, from the size of the training set.
TRAINING_IMAGES = {"cifar10": 50_000, "stl10": 105_000}  # CIFAR-10's training split; STL-10's train + unlabeled


def _epochs(epochs: int, dataset: str, batch: int) -> int:
    updates, remainder = divmod(epochs * TRAINING_IMAGES[dataset], batch)
    assert remainder == 0, "the papers' epochs are whole numbers of batches"
    return updates


def _run(dataset, image_size, arch, norm, loss, batch, steps=None, gen_norm="none") -> dict:
    """The run's data, networks, method, batch and length (``steps=None``: a length its paper does not state)."""
    length = {} if steps is None else {"train.steps": steps}
    return {"choices.dataset": dataset, "dataset.image_size": image_size, "choices.arch": arch, "choices.norm": norm,
            "choices.gen_norm": gen_norm, "choices.loss": loss, "train.batch_size": batch, **length}


def _adam(lr: float, betas: tuple[float, float], n_dis: int, decay: str = "constant", lr_d: float | None = None):
    return {"optim.optimizer._target_": "torch.optim.Adam", "optim.optimizer.betas": list(betas), "optim.lr_g": lr,
            "optim.lr_d": lr if lr_d is None else lr_d, "optim.n_dis": n_dis, "optim.lr_decay": decay,
            "optim.n_dis_boost": None}


MIYATO_TABLE_1 = {  # Miyato et al. 2018, Table 1: (alpha, (beta1, beta2), n_dis) of the Adam settings A-F
    "A": (1e-4, (0.5, 0.9), 5), "B": (1e-4, (0.5, 0.999), 1), "C": (2e-4, (0.5, 0.999), 1),
    "D": (1e-3, (0.5, 0.9), 5), "E": (1e-3, (0.5, 0.999), 5), "F": (1e-3, (0.9, 0.999), 5),
}
# Table 3's standard CNN: z in R^128, leaky ReLU 0.1 in D; Sec. 2.1 / Algorithm 1: one power step per update
STANDARD_CNN = {"arch.latent_dim": 128, "arch.discriminator.leaky_slope": 0.1, "norm.n_power_iterations": 1}
# App. B.2: Gulrajani et al.'s hyper-parameters for the ResNets (with their linear decay: fidelity)
RESNET_OPTIMIZER = _adam(2e-4, (0.0, 0.9), 5, decay="linear")
# Kligvasser & Michaeli, Sec. 4.1: Adam 2e-4 (0.5, 0.9), n_dis 1, hinge, batch 64, 200 epochs; Algorithm 1 projects
# the stored weight after every critic update (Sec. 4), g = 1 with all kernels
SAN = {**_adam(2e-4, (0.5, 0.9), 1), "norm.mode": "projection", "norm.update_every": 1, "norm.subset_ratio": 1.0}
# Xiang & Li: RMSProp 1e-4 (alpha 0.9, eps 1e-6: fidelity), one critic step, the standard (non-saturating) loss, the
# variants' own normalization (norm=none), 2,000 held-out images; the running reconstruction selects the best
# checkpoint (the lowest value)
XIANG = {"optim.optimizer._target_": "torch.optim.RMSprop", "optim.optimizer.alpha": 0.9,
         "optim.optimizer.eps": 1e-6, "optim.lr_g": 1e-4, "optim.lr_d": 1e-4, "optim.n_dis": 1,
         "dataset.heldout": 2000, "metrics.monitor_mode": "min"}


def _xiang_running(every: int, images: int) -> dict:  # Sec. 5.1 (CelebA), App. D.3 (CIFAR-10), D.4 (LSUN)
    return {"metrics.measures.reconstruction.every": every, "metrics.measures.reconstruction.images": images,
            "metrics.measures.reconstruction.steps": 50,
            "metrics.monitor": f"reconstruction/running_{images}img_50steps"}


# Feng, Xu & Li: TTUR (the critic's rate 4x the generator's: 0.004 and 0.001), n_dis 1, 300 epochs, batch 64 (ours);
# CIFAR-10 and the IS/FID protocol from the README of the report's repository
REPORT = {"optim.lr_g": 1e-3, "optim.lr_d": 4e-3, "optim.n_dis": 1}
REPORT_RUN = {"choices.dataset": "cifar10", "dataset.image_size": 32, "train.batch_size": 64,
              "train.steps": _epochs(300, "cifar10", 64), "choices.metrics": "feng_readme"}
# The report's rows as its code ran them (COMP6248-Reproducability-Challenge/SNGAN): BEGAN_EBGAN_WAGAN_GP/main.py
# (CIFAR-10 resized to 28 px, batch 64) and BEGAN.py / EBGAN.py / WGAN_GP.py (z of 62 ~ U(0, 1), infoGAN-style
# networks, an epoch of 50,000 // 64 = 781 batches); "BN and LN DCGAN/" (chainer-gan-lib's DCGAN at 32 px, one Adam
# rate for both networks, z ~ U(-1, 1)^128, leaky ReLU 0.2); 300 epochs (README); an evaluation every 50 epochs
CODE_EPOCH = 50_000 // 64
CODE_RUN = {"choices.dataset": "cifar10", "dataset.image_size": 28, "train.batch_size": 64,
            "choices.metrics": "feng_readme", "choices.gen_norm": "none", "arch.latent_dim": 62,
            "arch.latent_distribution": "uniform_0_1", "arch.discriminator.init": "normal_0.02"}
CHAINER_RUN = {**REPORT_RUN, "choices.gen_norm": "none", "choices.arch": "sngan_cnn_code", "choices.loss": "nonsat",
               "optim.lr_g": 1e-3, "optim.lr_d": 1e-3, "optim.n_dis": 1, "arch.latent_dim": 128,
               "arch.latent_distribution": "uniform", "arch.discriminator.leaky_slope": 0.2,
               "arch.discriminator.widths": [64, 128, 128, 256, 256, 512, 512],
               "metrics.measures.inception.every": 50 * 50_000 // 64}  # the README: every 50 of 300 epochs
# The digits demos: the embedded dataset and metrics on the CPU (offline); quickstart = `make demo` (README: 1,500
# updates of the standard CNN at width 0.25, 24 px, hinge loss, setting C)
OFFLINE = {"choices.dataset": "digits", "choices.metrics": "digits", "trainer.accelerator": "cpu"}

PAPER_SETTINGS = {
    # Miyato et al. 2018 (Table 2 rows "SN-GANs, Eq.(17)": hinge loss; setting B for SN, footnote 4; batch 64: code)
    "sngan_cifar10_cnn": {**_run("cifar10", 32, "sngan_cnn", "sn", "hinge", 64, 100_000),
                          **_adam(*MIYATO_TABLE_1["B"]), **STANDARD_CNN},
    "sngan_stl10_cnn": {**_run("stl10", 48, "sngan_cnn", "sn", "hinge", 64, 2 * 100_000),  # "(2x updates)"
                        **_adam(*MIYATO_TABLE_1["B"]), **STANDARD_CNN},
    "sngan_cifar10_resnet": {**_run("cifar10", 32, "sngan_resnet", "sn", "hinge", 64, 100_000), **RESNET_OPTIMIZER,
                             "arch.discriminator.pooling": "sum"},
    "sngan_stl10_resnet": {**_run("stl10", 48, "sngan_resnet", "sn", "hinge", 64, 100_000), **RESNET_OPTIMIZER,
                           "arch.discriminator.pooling": "sum", "critic's widest block at 48 px": 1024},
    # Kligvasser & Michaeli: Table 4 (3x3 kernels throughout), Tables 5-6 (global average pooling; at 48 px without
    # Miyato's 1024 block)
    "san_cifar10_cnn": {**_run("cifar10", 32, "san_cnn", "san", "hinge", 64, _epochs(200, "cifar10", 64)), **SAN,
                        "arch.generator.up_kernel": 3, "arch.discriminator.down_kernel": 3},
    "san_stl10_cnn": {**_run("stl10", 48, "san_cnn", "san", "hinge", 64, _epochs(200, "stl10", 64)), **SAN,
                      "arch.generator.up_kernel": 3, "arch.discriminator.down_kernel": 3},
    "san_cifar10_resnet": {**_run("cifar10", 32, "san_resnet", "san", "hinge", 64, _epochs(200, "cifar10", 64)),
                           **SAN, "arch.discriminator.pooling": "average"},
    "san_stl10_resnet": {**_run("stl10", 48, "san_resnet", "san", "hinge", 64, _epochs(200, "stl10", 64)), **SAN,
                         "arch.discriminator.pooling": "average", "critic's widest block at 48 px": 512},
    # Xiang & Li: CelebA 160 px central crops, batch 32 (Sec. 5); WN trained to 700,000 (Sec. 5.2)
    "xiang_celeba": {**_run("celeba", 160, "xiang_dcgan", "none", "nonsat", 32, 700_000), **XIANG,
                     "dataset.crop": 160, "arch.variant": "wn", **_xiang_running(500, 200)},
    # Sec. 5.6: the residual GAN, code length 128, batch 16, learning rate 2e-5 (its run length is not stated)
    "xiang_celeba_resnet": {**_run("celeba", 160, "xiang_resnet", "none", "nonsat", 16), **XIANG,
                            "optim.lr_g": 2e-5, "optim.lr_d": 2e-5, "arch.latent_dim": 128,
                            "dataset.crop": 160, **_xiang_running(500, 200)},
    # App. D.3: CIFAR-10's 60,000 pooled, 2,000 held out; 96 base channels down to 4x4; Table 7 goes to 500,000
    "xiang_cifar10": {**_run("cifar10_pooled", 32, "xiang_dcgan", "none", "nonsat", 32, 500_000), **XIANG,
                      "dataset.split": "train+test", "arch.base_channels": 96, **_xiang_running(1000, 400)},
    # App. D.4: LSUN bedroom 256x256, code length 512, batch 12, WN to 600,000
    "xiang_lsun": {**_run("lsun_bedroom", 256, "xiang_dcgan", "none", "nonsat", 12, 600_000), **XIANG,
                   "arch.latent_dim": 512, **_xiang_running(1000, 200)},
    # Mullery & Whelan: WGAN-GP (lambda 10) on the 5,000 frogs, latent 64, Adam 1e-4 (paper) with the notebook's
    # betas (0.9, 0.99), n_dis 5 but 50 for the first 25 and every 500th; 5,000 updates and batch 64 are ours
    "mullery_frogs": {**_run("cifar10_class", 32, "iwgan", "gp", "wgan", 64, 5000),
                      **_adam(1e-4, (0.9, 0.99), 5), "optim.n_dis_boost": {"n_dis": 50, "first": 25, "every": 500},
                      "dataset.classes": ["frog"], "norm.weight": 10.0, "arch.latent_dim": 64},
    # Feng, Xu & Li, Sec. 3-4: SN in every layer of both networks, leaky ReLU 0.02 in D; the standard loss (ours)
    "repro_report": {**REPORT_RUN, **REPORT, "choices.arch": "sngan_cnn", "choices.norm": "sn",
                     "choices.gen_norm": "sn", "choices.loss": "nonsat", "arch.discriminator.leaky_slope": 0.02},
    # Table 1's BEGAN and EBGAN rows: the report's data, TTUR, length and batch with each method's own critic,
    # loss and unnormalized generator; BEGAN's gamma 0.5, lambda_k 0.001, N_z = N_h = 64, z ~ U(-1, 1); EBGAN's
    # lambda_PT 0.1
    "repro_report_began": {**REPORT_RUN, **REPORT, "dataset.image_size": 28, "choices.arch": "began",
                           "choices.norm": "none",
                           "choices.gen_norm": "none", "choices.loss": "began", "loss.gamma": 0.5,
                           "loss.lambda_k": 0.001, "arch.latent_dim": 64, "arch.discriminator.hidden": 64,
                           "arch.latent_distribution": "uniform"},
    "repro_report_ebgan": {**REPORT_RUN, **REPORT, "choices.arch": "ebgan", "choices.norm": "none",
                           "choices.gen_norm": "none", "choices.loss": "ebgan", "loss.pulling_away": 0.1},
    # BEGAN.py: gamma 1, lambda_k 0.001, Adam 2e-4 for both networks whatever the setting, halved (not below 2e-5)
    # at an epoch's end when M rose; a 32-d code between the critic's dense layers
    "repro_report_code_began": {**CODE_RUN, "choices.arch": "infogan_began", "choices.norm": "none",
                                "choices.loss": "began", "loss.gamma": 1.0, "loss.lambda_k": 0.001,
                                "optim.lr_g": 2e-4, "optim.lr_d": 2e-4, "optim.n_dis": 1, "optim.lr_decay": "plateau",
                                "optim.plateau": {"every": CODE_EPOCH, "factor": 0.5, "min_lr": 2e-5},
                                "arch.discriminator.code": 32, "train.steps": 300 * CODE_EPOCH,
                                "metrics.measures.inception.every": 50 * CODE_EPOCH},
    # EBGAN.py: margin 1, pulling-away weight 0.1 on the 32-d code; the settings' rates (main.py --lrG / --lrD)
    "repro_report_code_ebgan": {**CODE_RUN, **REPORT, "choices.arch": "infogan_ebgan", "choices.norm": "none",
                                "choices.loss": "ebgan", "loss.margin": 1.0, "loss.pulling_away": 0.1,
                                "arch.discriminator.code": 32, "train.steps": 300 * CODE_EPOCH,
                                "metrics.measures.inception.every": 50 * CODE_EPOCH},
    # WGAN_GP.py: lambda 10, n_critic 5 (a generator update after every 5th batch: 156 an epoch), BN in the critic
    "repro_report_code_wgan_gp": {**CODE_RUN, **REPORT, "optim.n_dis": 5, "choices.arch": "infogan",
                                  "choices.norm": "gp", "choices.loss": "wgan", "norm.weight": 10.0,
                                  "arch.discriminator.batch_norm": True, "train.steps": 300 * (CODE_EPOCH // 5),
                                  "metrics.measures.inception.every": 50 * (CODE_EPOCH // 5)},
    # dcgan_bn/net.py: BN without gain (use_gamma=False) in the critic; dcgan_ln/net.py: layer norm with its gain in
    # both networks
    "repro_report_code_bn": {**CHAINER_RUN, "choices.norm": "bn", "norm.gain": False,
                             "arch.generator.feature_norm": "batch"},
    "repro_report_code_ln": {**CHAINER_RUN, "choices.norm": "ln", "norm.gain": True,
                             "arch.generator.feature_norm": "layer"},
    "quickstart": {**_run("digits", 24, "sngan_cnn", "sn", "hinge", 64, 1500), **OFFLINE,
                   **_adam(*MIYATO_TABLE_1["C"]), "arch.width": 0.25},
    # fidelity: BEGAN on digits at 16 px, N_h = 8, gamma 0.9, lambda_k 0.01, batch 16, Adam 1e-4 (0.5, 0.999) decaying
    # linearly to 0, 2,000 updates; EBGAN: the quickstart's optimizer, batch and length at 16 px, margin 1.0
    "began_digits": {**_run("digits", 16, "began", "none", "began", 16, 2000), **OFFLINE,
                     **_adam(1e-4, (0.5, 0.999), 1, decay="linear"), "arch.discriminator.hidden": 8,
                     "loss.gamma": 0.9, "loss.lambda_k": 0.01},
    "ebgan_digits": {**_run("digits", 16, "ebgan", "none", "ebgan", 64, 1500), **OFFLINE,
                     **_adam(*MIYATO_TABLE_1["C"]), "arch.width": 0.25, "loss.margin": 1.0, "loss.pulling_away": 0.1},
}
# what a setting is, where it is not one config value
DERIVED = {"critic's widest block at 48 px": lambda cfg: max(cfg.arch.discriminator.layouts[48].widths)}
_ABSENT = object()


def _value(cfg, key: str):
    """The setting ``key`` (a dotted path, or a name of DERIVED) of ``cfg``; a path it lacks is a difference too."""
    if key in DERIVED:
        return DERIVED[key](cfg)
    value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
    return OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value


def test_every_preset_has_its_papers_settings_stated():
    assert set(PAPER_SETTINGS) == set(group_options("experiment"))


# the nodes that decide what a run computes (callbacks, paths and logger decide where it writes)
_COMPUTED_NODES = ("dataset", "arch", "norm", "gen_norm", "loss", "optim", "train", "metrics")


@pytest.mark.parametrize("preset", group_options("experiment"))
def test_preset_runs_its_papers_settings_and_cfg_job_prints_them(preset):
    """The config a preset trains with (``compose``) has its paper's settings; its ``--cfg job`` printout, resolved,
    is that config (that the command line prints the config compose gives is shown, once, in
    test_config.py::test_compose_matches_command_line)."""
    import yaml

    composed = compose([f"experiment={preset}"])
    differing = {key: f"run {_value(composed, key)!r}, paper {expected!r}"
                 for key, expected in PAPER_SETTINGS[preset].items() if _value(composed, key) != expected}
    assert differing == {}, preset
    printed = OmegaConf.create(yaml.safe_load(_printed_job_config([f"experiment={preset}"])))
    for node in _COMPUTED_NODES:
        assert OmegaConf.to_container(printed[node], resolve=True) == OmegaConf.to_container(composed[node]), node


@pytest.mark.parametrize("setting", sorted(MIYATO_TABLE_1))
def test_optimizer_settings_a_to_f_are_miyatos_table_1(setting):
    """The settings every Table 2 sweep (optim=A,B,C,D,E,F) runs, against the paper's Table 1."""
    expected = _adam(*MIYATO_TABLE_1[setting])
    optim = compose([f"optim={setting}"])
    assert {key: _value(optim, key) for key in expected} == expected


# -- every row of every sweep: the generator's normalization, n_dis and both learning rates, from the sources --------
# (n_dis, lr_g, lr_d) of each optimizer setting a sweep names, written from the papers (not from conf/optim)
SETTING_RATES = {
    **{name: (n_dis, lr, lr) for name, (lr, _, n_dis) in MIYATO_TABLE_1.items()},  # Miyato et al. 2018, Table 1
    # Kligvasser & Michaeli, Fig. 16: their own settings A-F
    "san_A": (1, 5e-4, 5e-4), "san_B": (1, 2e-4, 2e-4), "san_C": (1, 2e-4, 2e-4),
    "san_D": (1, 5e-4, 5e-4), "san_E": (2, 2e-4, 2e-4), "san_F": (2, 5e-4, 5e-4),
    "resnet": (5, 2e-4, 2e-4),  # Miyato et al., App. B.2 (Gulrajani et al.'s)
    "xiang": (1, 1e-4, 1e-4),  # Xiang & Li, Sec. 5: RMSProp 1e-4, one critic step
    "mullery": (5, 1e-4, 1e-4),  # Mullery & Whelan: Adam 1e-4, n_dis 5 (boosted early and periodically)
    # Feng, Xu & Li, Sec. 3-4: TTUR, the critic's rate 4x the generator's, one critic step
    "report_A": (1, 1e-3, 4e-3), "report_B": (1, 1e-3, 4e-3), "report_C": (1, 2e-3, 8e-3),
}
# Presets that run a setting's betas with other rates or n_dis: Feng, Xu & Li's rows as the report's code ran them
CODE_RATES = {
    "repro_report_code_began": lambda n_dis, lr_g, lr_d: (1, 2e-4, 2e-4),  # BEGAN.py: Adam lr=0.0002 for G and D
    "repro_report_code_wgan_gp": lambda n_dis, lr_g, lr_d: (5, lr_g, lr_d),  # WGAN_GP.py: self.n_critic = 5
    "repro_report_code_bn": lambda n_dis, lr_g, lr_d: (n_dis, lr_g, lr_g),  # train.py: one adam_alpha for both
    "repro_report_code_ln": lambda n_dis, lr_g, lr_d: (n_dis, lr_g, lr_g),
}
# The only spectrally normalized generator of any sweep: the report's SNGAN row (Sec. 3: SN in every generator layer;
# its BN, LN and WGAN-GP rows' code has none, BEGAN's and EBGAN's papers none)
GENERATOR_SN = {("repro_report", "sn")}
# Feng, Xu & Li's Table 1: each sweep of it runs these rows (critic normalization, loss) over these settings
REPORT_TABLE1 = {
    "report_table1": {("sn", "nonsat"), ("bn", "nonsat"), ("ln", "nonsat"), ("gp", "wgan"), ("none", "began"),
                      ("none", "ebgan")},
    "report_table1_code": {("sn", "nonsat"), ("bn", "nonsat"), ("ln", "nonsat"), ("gp", "wgan"), ("none", "began"),
                           ("none", "ebgan")},
}


def _experiment(point: tuple[str, ...]) -> str:
    return next(o.split("=", 1)[1] for o in point if o.startswith("experiment="))


@pytest.mark.slow
def test_every_row_of_every_sweep_has_its_sources_generator_normalization_n_dis_and_rates():
    """scripts/sweep.py's rows compose to what the papers (or, for the report's code family, its code) set: a sweep
    of a preset family must not leak one row's setting into another (once: repro_report's gen_norm=sn into the
    report's BN, LN and WGAN-GP rows)."""
    rows = {name: set() for name in REPORT_TABLE1}
    for name, (_, commands) in _load_sweeps().items():
        for point in (tuple(point) for overrides in commands for point in _expand(overrides)):
            cfg, experiment = _composed(point), _experiment(point)
            rates = SETTING_RATES[cfg.choices.optim]
            n_dis, lr_g, lr_d = CODE_RATES.get(experiment, lambda *rates: rates)(*rates)
            expected_gen_norm = "sn" if (experiment, cfg.choices.norm) in GENERATOR_SN else "none"
            assert cfg.choices.gen_norm == expected_gen_norm, (name, point)
            assert (cfg.optim.n_dis, cfg.optim.lr_g, cfg.optim.lr_d) == (n_dis, lr_g, pytest.approx(lr_d)), (name,
                                                                                                          point)
            if name in rows:
                rows[name].add((cfg.choices.norm, cfg.choices.loss))
    assert rows == REPORT_TABLE1
