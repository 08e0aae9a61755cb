"""Composing and validating configurations outside and inside the command line."""

import contextvars
import functools
import itertools
import os
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from .checkpointing import check_checkpoint
from .errors import ConfigError
from .metrics.base import check_metrics
from .noise import LATENT_DISTRIBUTIONS
from .overrides import check_syntax, composition_error
from .run_directory import CHECKPOINTS, RunDirectory, record_created

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"
CONFIG_NAME = "train"
LR_DECAYS = ("constant", "linear", "plateau")


def compose(overrides=(), config_name: str = CONFIG_NAME) -> DictConfig:
    """The configuration ``python -m sngan_repro.train <overrides>`` would run with (``config_name="evaluate"``:
    ``python -m sngan_repro.evaluate``).

    Interpolations are resolved, including ``paths.output_dir`` (Hydra's run directory, which
    is not created here) and ``choices`` (the option picked in each config group).
    """
    overrides = list(overrides)
    check_syntax(overrides)
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name, overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as error:
        raise composition_error(error, overrides, functools.partial(settings_of, config_name=config_name)) from None
    hydra_node = cfg.hydra
    naming_only = _CREATE_FRESH_DIRECTORIES.set(False)  # composing creates no directory
    try:
        with open_dict(hydra_node):
            hydra_node.runtime.output_dir = str(Path(hydra_node.run.dir).resolve())
    finally:
        _CREATE_FRESH_DIRECTORIES.reset(naming_only)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    try:
        return resolve(cfg)
    except OmegaConfBaseException as error:
        raise composition_error(error, overrides, functools.partial(settings_of, config_name=config_name)) from None


@functools.lru_cache(maxsize=32)
def settings_of(node: str, overrides: tuple[str, ...], config_name: str = CONFIG_NAME) -> str:
    """The settings under ``node`` ("" for the top level) of the config ``overrides`` compose, comma-separated
    (empty if they do not compose): what a misspelled key could have meant."""
    try:
        config = compose(overrides, config_name=config_name)
    except (HydraException, OmegaConfBaseException, ConfigError):
        return ""
    found = OmegaConf.select(config, node) if node else config
    return ", ".join(sorted(str(key) for key in found.keys())) if isinstance(found, DictConfig) else ""


def resolve(cfg: DictConfig) -> DictConfig:
    """Resolve all interpolations in place."""
    OmegaConf.resolve(cfg)
    return cfg


def _project_choices(choices) -> DictConfig:
    """The option picked in each of the project's config groups (Hydra's own groups left out)."""
    return OmegaConf.create({group: option for group, option in choices.items() if not group.startswith("hydra/")})


_CREATE_FRESH_DIRECTORIES = contextvars.ContextVar("create_fresh_directories", default=True)


def _fresh_directory(path: str) -> str:
    """``path``, else ``path_1``, ``path_2``, ...: the first that does not exist yet, created here (``mkdir`` is
    atomic), so that two runs or sweeps started in the same second, even on machines sharing the disk, never write
    into one directory. Hydra resolves its run and sweep directory once per command (cached, and handed on to the
    sweep's jobs and to Lightning's DDP processes); ``compose`` only names the directory."""
    for candidate in map(Path, itertools.chain([path], (f"{path}_{n}" for n in itertools.count(1)))):
        if not _CREATE_FRESH_DIRECTORIES.get():
            if not candidate.exists():
                return str(candidate)
            continue
        missing_parents = [parent for parent in candidate.parents if not parent.exists()]
        candidate.parent.mkdir(parents=True, exist_ok=True)
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        record_created(candidate, *missing_parents)
        return str(candidate)


def _continued_or_fresh_directory(checkpoint: str | None, fresh: str) -> str:
    """The run directory ``checkpoint`` (``ckpt_path``) was written in, so that training on from it continues there
    (one folder of curves, samples and checkpoints per training); else a fresh directory (``_fresh_directory``)."""
    if checkpoint:
        owner = RunDirectory.of_checkpoint(checkpoint)
        if Path(checkpoint).resolve().parent.name == CHECKPOINTS and owner.is_run():
            return str(owner.path)
    return _fresh_directory(fresh)


def _study_or_fresh_directory(study_folder: str | None, fresh: str) -> str:
    """A study's own folder (``study.folder``: fixed, so that the same command continues the study); else a fresh
    directory (``_fresh_directory``). A preset cannot set ``hydra.sweep.dir`` itself: merging its value would resolve
    (and create) the fresh directory it replaces."""
    return study_folder or _fresh_directory(fresh)


def _sweep_folder() -> Path | None:
    """In a sweep's job (-m): the sweep's folder (a study's folder), which groups its runs in the trackers; found from
    the job's own directory (``<sweep dir>/<subdir>``), which Hydra has resolved, rather than by resolving
    ``hydra.sweep.dir`` again. None outside a sweep."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    hydra_cfg = HydraConfig.get()
    return Path(hydra_cfg.runtime.output_dir).resolve().parents[len(Path(hydra_cfg.sweep.subdir).parts) - 1]


def _sweep_dir(outside: str | None = None) -> str | None:
    """The sweep's folder, absolute; ``outside`` outside a sweep."""
    folder = _sweep_folder()
    return outside if folder is None else str(folder)


def _sweep_group() -> str | None:
    """The sweep's folder as its runs' group name: relative to the current directory when inside it (e.g.
    ``multirun/2026-12-08/10-00-00``); None outside a sweep."""
    folder = _sweep_folder()
    if folder is None:
        return None
    return os.path.relpath(folder) if folder.is_relative_to(Path.cwd()) else str(folder)


def _tracker_run_name() -> str | None:
    """A tracker's name for this run: the job's overrides (e.g. ``norm=san,seed=1``), else its directory's name
    (None when there is none yet: ``--cfg`` runs nothing)."""
    hydra_cfg = HydraConfig.get()
    output_dir = hydra_cfg.runtime.output_dir
    return hydra_cfg.job.get("override_dirname") or (Path(output_dir).name if output_dir else None)


OmegaConf.register_new_resolver("fresh_directory", _fresh_directory, use_cache=True, replace=True)
OmegaConf.register_new_resolver("study_or_fresh_directory", _study_or_fresh_directory, use_cache=True, replace=True)
OmegaConf.register_new_resolver("continued_or_fresh_directory", _continued_or_fresh_directory, use_cache=True,
                                replace=True)
OmegaConf.register_new_resolver("sweep_dir", _sweep_dir, replace=True)
OmegaConf.register_new_resolver("sweep_group", _sweep_group, replace=True)
OmegaConf.register_new_resolver("tracker_run_name", _tracker_run_name, replace=True)
OmegaConf.register_new_resolver("project_choices", _project_choices, replace=True)
OmegaConf.register_new_resolver("multiply", lambda a, b: a * b, replace=True)  # e.g. TTUR: lr_d = 4 lr_g
# period_of:N,K: the period (at least 1) of K measurements over N steps, e.g. every 50 of a run's 300 epochs
OmegaConf.register_new_resolver("period_of", lambda steps, times: max(1, steps // times), replace=True)
OmegaConf.register_new_resolver("abspath", lambda path: str(Path(path).expanduser().resolve()), replace=True)


def with_local_paths(cfg: DictConfig, paths: DictConfig) -> DictConfig:
    """A run's (resolved) config with its dataset's files moved from under its ``paths.data_dir`` to under
    ``paths.data_dir``, and its metrics' caches from its ``paths.cache_dir`` to ``paths.cache_dir``: a checkpoint
    finds its data and caches on another machine or from another folder; other paths stay."""
    moved = OmegaConf.create(OmegaConf.to_container(cfg))

    def move(node: DictConfig, old: str, new: str) -> None:
        old, new = str(old).rstrip("/"), str(new).rstrip("/")
        for key, value in node.items():
            if isinstance(value, DictConfig):
                move(value, old, new)
            elif isinstance(value, str) and (value == old or value.startswith(old + "/")):
                node[key] = new + value[len(old):]

    move(moved.dataset, cfg.paths.data_dir, paths.data_dir)
    if moved.get("metrics") is not None:
        move(moved.metrics, cfg.paths.cache_dir, paths.cache_dir)
    moved.paths.data_dir, moved.paths.cache_dir = str(paths.data_dir), str(paths.cache_dir)
    return moved


def _is_integer(value, least: int) -> bool:
    """An integer (not a bool, which YAML's true/false are) of at least ``least``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_positive_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _plain(value):
    """A config node as plain Python, for a message."""
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


# where a run's config takes keys its files do not declare: Lightning callbacks and metric measures by name
OPEN_NODES = ("callbacks", "metrics.measures")
STUDY = "study"  # a study preset's node, read (and checked key by key) by its sweeper, not by the run
_ABSENT = object()


def _check_added_keys(cfg: DictConfig) -> None:
    """A ``+key=value`` override adds a key only where one is read: under a ``_target_`` node (its class refuses an
    unknown argument when built) or an open node; elsewhere a misspelled key would be silently ignored."""
    if not HydraConfig.initialized():
        return
    for text in HydraConfig.get().overrides.task:
        if not text.startswith("+") or text.startswith("++"):
            continue
        key = text[1:].split("=", 1)[0]
        if (CONFIG_DIR / key).is_dir() or OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT:
            continue  # +group=option adds a config group; or this config did not come from these overrides
        parent = key.rpartition(".")[0]
        node = OmegaConf.select(cfg, parent) if parent else cfg
        read_elsewhere = parent in OPEN_NODES or parent.split(".")[0] == STUDY
        if read_elsewhere or (isinstance(node, DictConfig) and "_target_" in node):
            continue
        parts = key.split(".")
        depth = len(parts) - 1  # up past the nodes the override itself created (they hold only its key)
        while depth and len(OmegaConf.select(cfg, ".".join(parts[:depth]))) == 1:
            depth -= 1
        parent = ".".join(parts[:depth])
        node = OmegaConf.select(cfg, parent) if parent else cfg
        known = ", ".join(sorted(str(name) for name in node.keys() if name != parts[depth]))
        raise ConfigError(f"+{key} adds a setting nothing reads, so it would do nothing; "
                          f"{parent or 'the top level'} has {known}.")


# an example value for each setting a config leaves to the user (??? in conf/), for the sentence that asks for it
REQUIRED_EXAMPLES = {"ckpt": "outputs/<date>/<time>/checkpoints/last.ckpt", "dataset.root": "/path/to/images"}


def check_given(cfg: DictConfig) -> None:
    """Every setting the config leaves to the user (``???``) is given; else one sentence naming them."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    # a callback's copy of a missing setting (e.g. callbacks.metrics.dataset.root) is named by the setting itself
    missing = [key for key in missing if not key.startswith("callbacks.")] or missing
    if missing:
        example = REQUIRED_EXAMPLES.get(missing[0], "...")
        raise ConfigError(f"{', '.join(missing)} must be given, e.g. {missing[0]}={example}.")


def validate(cfg: DictConfig) -> None:
    """Check the composed config before any heavy work; raise ConfigError with one sentence."""
    check_given(cfg)
    _check_added_keys(cfg)
    _require(_is_integer(cfg.seed, 0), f"seed={cfg.seed!r} must be a non-negative integer.")
    _require(_is_integer(cfg.runs_per_gpu, 1), f"runs_per_gpu={cfg.runs_per_gpu!r} must be a positive integer (the "
                                               f"runs a local sweep places on one GPU at a time).")
    train, optim, arch = cfg.train, cfg.optim, cfg.arch
    _require(_is_integer(train.steps, 1), f"train.steps={train.steps} must be a positive number of generator updates.")
    for key in ("batch_size", "g_batch_size", "log_every", "sample_every", "num_samples"):
        _require(_is_integer(train[key], 1), f"train.{key}={train[key]} must be a positive integer.")
    _require(_is_integer(train.diagnostics_every, 0),
             f"train.diagnostics_every={train.diagnostics_every} must be 0 (off) or a positive integer.")
    check_metrics(cfg)
    _check_critic_output(cfg)
    _require(_is_integer(train.checkpoint_every, 0),
             f"train.checkpoint_every={train.checkpoint_every} must be 0 (final checkpoint only) "
             f"or a positive integer.")
    _require(_is_integer(optim.n_dis, 1),
             f"optim.n_dis={optim.n_dis} must be an integer >= 1 (discriminator updates per generator update).")
    boost = optim.get("n_dis_boost")
    if boost is not None:
        for key in ("n_dis", "first", "every"):
            _require(_is_integer(boost.get(key), 1),
                     f"optim.n_dis_boost.{key}={boost.get(key)} must be an integer >= 1.")
    for key in ("lr_g", "lr_d"):
        _require(_is_positive_number(optim[key]), f"optim.{key}={optim[key]} must be positive.")
    _require(optim.lr_decay in LR_DECAYS, f"optim.lr_decay={optim.lr_decay!r} is not one of {', '.join(LR_DECAYS)}.")
    _check_plateau(cfg)
    _require(_is_integer(arch.latent_dim, 1), f"arch.latent_dim={arch.latent_dim!r} must be a positive integer (the "
                                             f"length of the generator's code z).")
    _require(_is_positive_number(arch.width), f"arch.width={arch.width!r} must be a positive number (the multiplier "
                                              f"of every layer's channel count).")
    _require(arch.latent_distribution in LATENT_DISTRIBUTIONS,
             f"arch.latent_distribution={arch.latent_distribution!r} is not one of {', '.join(LATENT_DISTRIBUTIONS)}.")
    _require(len(arch.output_range) == 2 and arch.output_range[0] < arch.output_range[1],
             f"arch.output_range={list(arch.output_range)} must be [low, high] with low < high.")
    if cfg.get("ckpt_path"):
        check_checkpoint(cfg.ckpt_path)


def _check_plateau(cfg: DictConfig) -> None:
    """optim.plateau goes with optim.lr_decay=plateau, and that with a loss that keeps a convergence measure."""
    optim, plateau = cfg.optim, cfg.optim.get("plateau")
    if optim.lr_decay != "plateau":
        _require(plateau is None, f"optim.plateau={_plain(plateau)} is read only with optim.lr_decay=plateau (got "
                                  f"{optim.lr_decay}); drop it or set optim.lr_decay=plateau.")
        return
    example = "for example optim.plateau='{every: 781, factor: 0.5, min_lr: 2.0e-5}'"
    _require(isinstance(plateau, DictConfig) and set(plateau) == {"every", "factor", "min_lr"},
             f"optim.lr_decay=plateau needs optim.plateau with exactly every, factor and min_lr (got "
             f"{_plain(plateau)}), {example}.")
    _require(_is_integer(plateau.every, 1) and _is_positive_number(plateau.factor) and plateau.factor < 1
             and (plateau.min_lr == 0 or _is_positive_number(plateau.min_lr)),
             f"optim.plateau={_plain(plateau)} needs an integer every >= 1, 0 < factor < 1 and min_lr >= 0, "
             f"{example}.")
    loss = cfg.get("choices", {}).get("loss", cfg.loss._target_)
    _require(_target_attribute(cfg.loss, "measures_convergence", False),
             f"optim.lr_decay=plateau watches a loss's convergence measure, and loss={loss} keeps none; use it with "
             f"loss=began (M_global), or optim.lr_decay=constant or linear.")


def _target_attribute(node, name: str, default: str) -> str:
    """A class attribute of a config node's ``_target_`` class, without building it (``default`` if the class
    cannot be imported: building it reports that)."""
    try:
        return getattr(get_class(node._target_), name, default)
    except (ImportError, ValueError, AttributeError):
        return default


def _check_critic_output(cfg: DictConfig) -> None:
    """The loss reads what the critic outputs: scores (logits, critic values) or autoencoder energies."""
    reads = _target_attribute(cfg.loss, "critic_output", "score")
    gives = _target_attribute(cfg.arch.discriminator, "output", "score")
    choices = cfg.get("choices", {})
    plural = {"score": "scores", "energy": "reconstruction energies"}
    _require(reads == gives, f"loss={choices.get('loss', cfg.loss._target_)} reads a critic's {plural[reads]}, and "
                             f"arch={choices.get('arch', cfg.arch.discriminator._target_)}'s critic outputs "
                             f"{plural[gives]}; pair autoencoder critics (arch=began, ebgan, infogan_began, "
                             f"infogan_ebgan) with their losses (loss=began, ebgan) and the others with nonsat, hinge "
                             f"or wgan.")
    if _target_attribute(cfg.loss, "reads_embeddings", False):
        _require(cfg.train.g_batch_size >= 2, f"loss={choices.get('loss', cfg.loss._target_)}'s pulling-away term "
                                              f"compares pairs of generated images; train.g_batch_size="
                                              f"{cfg.train.g_batch_size} must be at least 2.")
