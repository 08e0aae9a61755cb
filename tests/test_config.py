"""Composition of every config option, validation messages, and the command line's help."""

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from conftest import GROUPS, group_options
from omegaconf import OmegaConf

from sngan_repro import build_models, compose, validate
from sngan_repro.config import CONFIG_DIR
from sngan_repro.errors import CheckpointError, ConfigError, SnganReproError

# The base each option of these groups extends: the keys (the schema) every option offers, written once.
BASES = {"arch": "base_arch", "dataset": "base_dataset", "optim": "base_optim"}


def test_defaults_are_sngan_cifar10_standard_cnn():
    cfg = compose([])
    assert dict(cfg.choices) == {"dataset": "cifar10", "arch": "sngan_cnn", "norm": "sn", "gen_norm": "none",
                                 "loss": "nonsat", "optim": "B", "trainer": "default", "callbacks": "default",
                                 "logger": "tensorboard", "metrics": "train_fast", "paths": "default",
                                 "experiment": None, "study": None}
    assert cfg.dataset.image_size == 32 and cfg.train.steps == 100_000 and cfg.train.batch_size == 64
    assert cfg.arch.latent_dim == 128


@pytest.mark.slow
@pytest.mark.parametrize(
    "group,option", [(group, option) for group in GROUPS for option in group_options(group)]
)
def test_every_option_composes_and_builds(group, option):
    # values an option needs from the user or from another group
    required = {"imagefolder": ["dataset.root=/some/images"], "xiang_running": ["dataset.heldout=200"],
                "xiang_final": ["dataset.heldout=2000"], "began": ["arch=began", "loss=began", "norm=none"],
                "ebgan": ["arch=ebgan", "loss=ebgan", "norm=none"], "infogan_began": ["loss=began", "norm=none"],
                "infogan_ebgan": ["loss=ebgan", "norm=none"]}.get(option, [])
    cfg = compose([f"{group}={option}", "arch.width=0.125", *required])
    validate(cfg)
    assert cfg.choices[group] == option
    generator, discriminator = build_models(cfg)
    images = generator(torch.randn(2, cfg.arch.latent_dim))
    size = cfg.dataset.image_size
    assert images.shape == (2, cfg.dataset.channels, size, size)
    assert discriminator(images).shape == (2,)


def _leaves(node, prefix=()):
    """(key path, value) of every leaf of a plain container; lists and empty dicts are leaves."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, (*prefix, key))
    else:
        yield prefix, node


def _lookup(node, path):
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return KeyError
        node = node[key]
    return node


@pytest.mark.parametrize("group,option", [(group, option) for group in BASES for option in group_options(group)])
def test_options_offer_their_base_without_restating_it(group, option):
    base = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / f"{BASES[group]}.yaml"))
    own = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / group / f"{option}.yaml"))
    assert BASES[group] not in group_options(group)
    # the option extends the base, directly or through another option of its group
    defaults = own.pop("defaults", [])
    assert f"/{BASES[group]}@_here_" in defaults or set(defaults) & set(group_options(group)), defaults
    composed = OmegaConf.to_container(compose([f"{group}={option}"])[group])
    for path, value in _leaves(base):
        # every key of the schema is offered, and every ??? of it given a value
        assert _lookup(composed, path) not in (KeyError, "???"), ".".join(path)
        # and no option states a key of the base with the base's own value (interpolations compared as written)
        assert value == "???" or _lookup(own, path) != value, f"{group}/{option} restates {'.'.join(path)}: {value}"


@pytest.mark.parametrize(
    "setting,lr,betas,n_dis",
    [("A", 1e-4, (0.5, 0.9), 5), ("B", 1e-4, (0.5, 0.999), 1), ("C", 2e-4, (0.5, 0.999), 1),
     ("D", 1e-3, (0.5, 0.9), 5), ("E", 1e-3, (0.5, 0.999), 5), ("F", 1e-3, (0.9, 0.999), 5),
     ("resnet", 2e-4, (0.0, 0.9), 5)],
)
def test_optimizer_settings_are_miyato_table_1(setting, lr, betas, n_dis):
    optim = compose([f"optim={setting}"]).optim
    assert (optim.lr_g, optim.lr_d, tuple(optim.optimizer.betas), optim.n_dis) == (lr, lr, betas, n_dis)
    assert optim.lr_decay == ("linear" if setting == "resnet" else "constant")


@pytest.mark.parametrize(
    "setting,lr,beta1,n_dis",
    [("san_A", 5e-4, 0.5, 1), ("san_B", 2e-4, 0.5, 1), ("san_C", 2e-4, 0.0, 1), ("san_D", 5e-4, 0.0, 1),
     ("san_E", 2e-4, 0.5, 2), ("san_F", 5e-4, 0.0, 2)],
)
def test_san_settings_are_its_own_table(setting, lr, beta1, n_dis):
    optim = compose([f"optim={setting}"]).optim
    assert (optim.lr_g, optim.lr_d, tuple(optim.optimizer.betas), optim.n_dis) == (lr, lr, (beta1, 0.9), n_dis)


@pytest.mark.parametrize("setting,lr_g,betas", [("report_A", 1e-3, (0.5, 0.9)), ("report_B", 1e-3, (0.5, 0.999)),
                                                ("report_C", 2e-3, (0.5, 0.999))])
def test_report_settings_use_ttur(setting, lr_g, betas):
    optim = compose([f"optim={setting}"]).optim
    assert (optim.lr_g, optim.lr_d, tuple(optim.optimizer.betas), optim.n_dis) == (lr_g, 4 * lr_g, betas, 1)


def test_xiang_uses_rmsprop():
    optim = compose(["optim=xiang"]).optim
    assert optim.optimizer._target_ == "torch.optim.RMSprop"
    assert (optim.lr_g, optim.optimizer.alpha, optim.optimizer.eps, optim.n_dis) == (1e-4, 0.9, 1e-6, 1)


def test_ttur_sets_discriminator_rate_alone():
    optim = compose(["optim=B", "optim.lr_d=4e-4"]).optim
    assert (optim.lr_g, optim.lr_d) == (1e-4, 4e-4)


def test_authors_code_variant_of_standard_cnn():
    cfg = compose(["arch=sngan_cnn_code"])
    assert list(cfg.arch.discriminator.widths) == [64, 128, 128, 256, 256, 512, 512]
    assert cfg.arch.discriminator.leaky_slope == 0.2 and cfg.arch.latent_distribution == "uniform"


@pytest.mark.parametrize(
    "override,fragment",
    [("train.steps=0", "train.steps=0 must be a positive"),
     ("optim.n_dis=0", "optim.n_dis=0 must be an integer >= 1"),
     ("runs_per_gpu=0", "runs_per_gpu=0 must be a positive integer (the runs a local sweep places on one GPU"),
     ("optim.lr_decay=cosine", "optim.lr_decay='cosine' is not one of constant, linear"),
     ("arch.latent_distribution=cauchy", "arch.latent_distribution='cauchy' is not one of normal, uniform"),
     ("optim.lr_d=-1", "optim.lr_d=-1 must be positive")],
)
def test_invalid_values_get_one_sentence(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        validate(compose([override]))


PLATEAU = "optim.plateau={every: 10, factor: 0.5, min_lr: 0}"


@pytest.mark.parametrize("overrides, fragment", [
    (["optim.lr_decay=plateau", "loss=began", "arch=began", "norm=none"],
     r"^optim.lr_decay=plateau needs optim.plateau with exactly every, factor and min_lr \(got None\), for example "),
    (["optim.lr_decay=plateau", PLATEAU.replace("0.5", "1.5"), "loss=began", "arch=began", "norm=none"],
     r"needs an integer every >= 1, 0 < factor < 1 and min_lr >= 0"),
    (["optim.lr_decay=plateau", PLATEAU], r"watches a loss's convergence measure, and loss=nonsat keeps none; use it "),
    ([PLATEAU], r"^optim.plateau=\{'every': 10, 'factor': 0.5, 'min_lr': 0\} is read only with optim.lr_decay=plat"),
])
def test_a_plateau_decay_needs_its_settings_and_a_convergence_measure(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment) as refusal:
        validate(compose(overrides))
    assert str(refusal.value).count(". ") == 0


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory) -> Path:
    from conftest import tiny_run_overrides

    from sngan_repro.train import run

    output_dir = tmp_path_factory.mktemp("trained")
    run(compose(tiny_run_overrides(output_dir, 2, "logger=none")))
    return output_dir / "checkpoints" / "last.ckpt"


def _damaged_checkpoints(directory: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """Files a user may pass as ckpt_path, each with the refusal it must get."""
    made = {}

    def write(name: str, content: bytes) -> Path:
        made_path = directory / name
        made_path.write_bytes(content)
        return made_path

    made["not a file at all"] = (write("text.ckpt", b"not a checkpoint"), "not a readable checkpoint")
    made["truncated mid-write"] = (write("truncated.ckpt", good.read_bytes()[: good.stat().st_size // 2]),
                                   "not a readable checkpoint")
    with zipfile.ZipFile(directory / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "a zip archive, but not torch's")
    made["another zip archive"] = (directory / "other.zip", "not a loadable checkpoint")
    torch.save({"gan_counters": {"g_step": 1}, "payload": argparse.Namespace(command="rm -rf")},
               directory / "pickled.ckpt")
    made["a pickled object"] = (directory / "pickled.ckpt", "not a loadable checkpoint")
    torch.save({"state_dict": {"weight": torch.zeros(2)}}, directory / "foreign.ckpt")
    made["a foreign torch file"] = (directory / "foreign.ckpt", "was not written by sngan_repro.train")
    return made


def test_missing_damaged_and_foreign_checkpoints_are_refused_in_one_sentence(tmp_path, trained_checkpoint):
    assert validate(compose([f"ckpt_path={trained_checkpoint}"])) is None  # the real one passes
    with pytest.raises(CheckpointError, match="does not exist"):
        validate(compose([f"ckpt_path={tmp_path / 'nope.ckpt'}"]))
    for case, (path, message) in _damaged_checkpoints(tmp_path, trained_checkpoint).items():
        with pytest.raises(CheckpointError, match=rf"^ckpt_path='{path}' .*{message}") as error:
            validate(compose([f"ckpt_path={path}"]))
        assert str(error.value).count(". ") == 0 and str(error.value).endswith("."), case


def test_every_checkpoint_load_is_weights_only(tmp_path, trained_checkpoint, monkeypatch):
    """Resuming (the check, then Lightning's own load) and evaluating read checkpoints with weights_only=True."""
    from conftest import tiny_run_overrides

    from sngan_repro.module import load_gan
    from sngan_repro.train import run

    torch_load, calls = torch.load, []

    def recording_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return torch_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    run(compose(tiny_run_overrides(tmp_path, 3, "logger=none", f"ckpt_path={trained_checkpoint}")))
    load_gan(trained_checkpoint, torch.device("cpu"))
    assert len(calls) >= 4 and all(calls), calls


def test_image_size_the_architecture_cannot_serve():
    with pytest.raises(ConfigError, match="divisible by 8"):
        build_models(compose(["dataset=digits", "dataset.image_size=20"]))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sngan_repro.train", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_help_lists_groups_and_options():
    out = _cli("--help").stdout.splitlines()
    for group in GROUPS:
        assert f"{group}: {', '.join(sorted(group_options(group)))}" in out, group


# (command line, what the sentence must name): Hydra's refusals, and a sweep refused before any run
INVALID_COMMAND_LINES = [
    (["train.bogus=1"], "train.bogus is not a setting of train; it has batch_size"),
    (["-m", "norm=sn,nosuchnorm"], "norm='nosuchnorm' is not an option of norm; choose one of bn, clip, gp")]


@pytest.mark.slow
@pytest.mark.parametrize("argv, sentence", INVALID_COMMAND_LINES)
def test_invalid_command_lines_exit_2_with_one_sentence_before_any_run(tmp_path, argv, sentence):
    result = _cli(*argv, f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and lines[-1].startswith(f"error: {sentence}"), result.stderr
    assert lines[-1].endswith(".") and lines[-1].count(". ") == 0
    # the sweep's valid run did not start either (Hydra writes the sweep's multirun.yaml first)
    assert {path.name for path in tmp_path.glob("*/*")} <= {"multirun.yaml"}


@pytest.mark.slow
def test_compose_matches_command_line():
    """The whole config ``--cfg job --resolve`` prints for a preset with a group overridden on top is what
    ``compose`` returns (but the run directory, which --cfg does not name)."""
    overrides = ["experiment=xiang_celeba", "norm=sn"]
    result = _cli(*overrides, "--cfg", "job", "--resolve")
    assert result.returncode == 0, result.stderr
    composed = compose(overrides)
    # --cfg runs nothing: the run directory is null there, and the folders under it "None/..."
    run_directory = composed.paths.output_dir
    expected = yaml.safe_load(OmegaConf.to_yaml(composed).replace(run_directory + "/", "None/")
                              .replace(run_directory, "null"))
    assert yaml.safe_load(result.stdout) == expected
    assert expected["norm"]["_target_"].endswith(".SpectralNormalization")


def test_missing_required_value_is_named():
    with pytest.raises(ConfigError, match=r"^dataset.root must be given, e.g. dataset.root=/path/to/images\.$"):
        validate(compose(["dataset=imagefolder"]))


def _fuzzed_overrides(seed: int = 0) -> list[list[str]]:
    """Over two hundred invalid command lines: unknown options and keys, overrides Hydra cannot parse, wrong types
    and out-of-range numbers for every validated setting, and combinations no architecture serves."""
    import random
    rng = random.Random(seed)

    def word() -> str:
        return "zz" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(2, 9)))

    cases = [[f"{group}={word()}"] for group in GROUPS for _ in range(5)]
    cases += [[f"{node}.{word()}={rng.randint(0, 9)}"] for node in ("train", "optim", "arch", "paths", "metrics",
                                                                    "norm", "loss", "dataset", "trainer")
              for _ in range(3)]
    cases += [[f"+{node}{word()}=1"] for node in ("", "train.", "optim.", "arch.", "paths.", "metrics.")
              for _ in range(3)]
    cases += [[text] for text in ("train.steps=[1", "foo", "=3", "train.steps=1)", "norm=sn,san", "train.steps={",
                                  "train.steps=']", "~norm.zzfoo", "+train.steps=3", "+experiment=quickstart",
                                  "train.steps=${zznothing}", "~train")]
    counts = {"train.steps": 1, "train.batch_size": 1, "train.g_batch_size": 1, "train.log_every": 1,
              "train.sample_every": 1, "train.num_samples": 1, "train.diagnostics_every": 0,
              "train.checkpoint_every": 0, "optim.n_dis": 1, "seed": 0}
    for key, least in counts.items():
        cases += [[f"{key}={value}"] for value in (least - 1, 1.5, "abc", "true", "'3'")]
    for key in ("optim.lr_g", "optim.lr_d"):
        cases += [[f"{key}={value}"] for value in (0, -1e-4, "abc", "null", "true", "[1e-4]")]
    cases += [[f"{key}={word()}"] for key in ("optim.lr_decay", "arch.latent_distribution") for _ in range(5)]
    cases += [[f"arch.output_range={value}"] for value in ("[1,-1]", "[0,0]", "[0]", "[-1,0,1]")]
    cases += [["dataset.image_size=" + str(size)] for size in (31, 30, 12, 0)]
    cases += [[f"arch.latent_dim={value}"] for value in (0, -1, 1.5, "abc", "null")]
    cases += [[f"arch.width={value}"] for value in (0, -0.5, "abc", "null", "true")]
    cases += [["ckpt_path=" + word() + ".ckpt"] for _ in range(5)]
    cases += [["arch=xiang_dcgan", "arch.variant=wn", "norm=clip"],  # combinations no architecture serves
              ["arch=xiang_dcgan", "arch.variant=wn", "norm=san", "norm.mode=projection"],
              ["arch=iwgan", "norm=bn"], ["arch=iwgan", "norm=ln"], ["gen_norm=san"], ["gen_norm=gp"],
              ["arch=infogan", "norm=bn"], ["arch=infogan_began", "loss=began"], ["optim.lr_decay=plateau"],
              ["arch.generator.feature_norm=group"]]
    return cases


def test_hundreds_of_invalid_overrides_are_refused_in_one_sentence_each():
    """Through compose + validate + building the networks (all before any data or training): each refusal is a
    one-line sentence naming the override's key (or group), never another exception."""
    cases = _fuzzed_overrides()
    assert len(cases) >= 200
    for overrides in cases:
        with pytest.raises(SnganReproError) as refusal:
            cfg = compose(overrides)
            validate(cfg)
            build_models(cfg)
        message = str(refusal.value)
        named = [text.lstrip("+~").split("=")[0].split(".")[-1] or text for text in overrides]
        assert "\n" not in message and message.endswith("."), (overrides, message)
        assert any(name in message for name in named), (overrides, message)
