"""Train a GAN: ``python -m sngan_repro.train [group=option ...] [key=value ...]``.

Thin: validate the composed config, then datamodule + models + module + callbacks + loggers
-> Trainer.fit. Errors in the user's input are reported as one sentence, before heavy work.
"""

import contextlib
import ctypes
import functools
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.strategies.launchers import _SubprocessScriptLauncher

from . import trackers
from .callbacks import Preemption
from .callbacks.metrics import last_quality_values
from .callbacks.run_record import hydra_overrides
from .checkpointing import (
    AtomicCheckpointIO,
    check_checkpoint,
    check_networks_match,
    checkpoint_folders,
    checkpoint_g_step,
    disk_full_cause,
    disk_full_error,
    load_training_state,
)
from .config import CONFIG_DIR, CONFIG_NAME, resolve, settings_of, validate
from .console import TRAINING_LOSSES, banner, quiet_libraries, summary
from .data import build_datamodule
from .distributed import rank_share
from .errors import ConfigError, SnganReproError
from .instantiate import instantiate_checked
from .metrics.base import metric_cache_folders
from .module import GAN
from .nn import initialize_from_data_
from .overrides import run_command
from .precision import precision_arguments
from .run_directory import RunDirectory, check_folders_writable


def instantiate_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """The callbacks of ``cfg.callbacks``, each built from its ``_target_`` (entries set to null are left out)."""
    callbacks = []
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None:
            continue
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ConfigError(f"callbacks.{name} has no _target_; give {{_target_: <a Lightning Callback class>}}.")
        callback = instantiate_checked(node)
        if not isinstance(callback, pl.Callback):
            raise ConfigError(f"callbacks.{name}._target_={node._target_!r} is not a Lightning Callback.")
        # Lightning refuses a progress-bar callback when the bar is switched off
        if cfg.trainer.enable_progress_bar or not isinstance(callback, pl.callbacks.ProgressBar):
            callbacks.append(callback)
    return callbacks


def build_trainer(cfg: DictConfig, output_dir: Path, callbacks: Sequence[pl.Callback] = ()) -> pl.Trainer:
    # a run that continues in its directory continues the tracker runs its record names
    recorded = RunDirectory(output_dir).read_record().get("trackers") if cfg.ckpt_path else None
    loggers = trackers.build_loggers(cfg, recorded)
    precision = precision_arguments(cfg.trainer)
    plugins = [AtomicCheckpointIO(), *precision.pop("plugins", [])]
    return instantiate_checked(cfg.trainer, logger=loggers or False,
                               callbacks=instantiate_callbacks(cfg) + list(callbacks),
                               default_root_dir=str(output_dir), plugins=plugins, **precision)


def check_process_launch(trainer: pl.Trainer) -> None:
    """Lightning starts the DDP processes of one machine by running the command line again, which inside a sweep
    would start the whole sweep again in every process; refuse that before any work."""
    if (isinstance(trainer.strategy.launcher, _SubprocessScriptLauncher) and HydraConfig.initialized()
            and HydraConfig.get().mode == RunMode.MULTIRUN):
        raise ConfigError(f"trainer.devices={trainer.num_devices} in a sweep (-m) needs a launcher that starts one "
                          f"task per device: use hydra/launcher=slurm, or sweep single-device runs and run "
                          f"multi-device ones one at a time without -m.")


NVML_CUDA_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def skip_unloadable_nvml_check() -> None:
    """Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 on import, so that asking whether CUDA is available asks NVML
    and does not initialize CUDA before processes fork; until CUDA is initialized torch then loads NVML on every ask,
    and torch.optim asks on every step. Where NVML cannot be loaded (no NVIDIA driver) torch falls back to the CUDA
    runtime's answer anyway, so the variable only adds a failing library load per optimizer step: unset it there."""
    if os.environ.get(NVML_CUDA_CHECK) != "1":
        return
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        del os.environ[NVML_CUDA_CHECK]


def run(cfg: DictConfig, callbacks: Sequence[pl.Callback] = ()) -> GAN:
    """Train as ``cfg`` says and return the trained module; the run directory is ``cfg.paths.output_dir``.
    ``callbacks`` join those of ``cfg.callbacks`` (e.g. ``scripts/bench_train.py``'s timer)."""
    quiet_libraries(bool(cfg.get("verbose")) or (HydraConfig.initialized() and bool(HydraConfig.get().verbose)))
    validate(resolve(cfg))
    skip_unloadable_nvml_check()
    output_dir = Path(cfg.paths.output_dir)
    check_folders_writable({"paths.output_dir": str(output_dir), **metric_cache_folders(cfg)})
    # given no checkpoint, a run continues from its own (left by a preempted, requeued or crashed run)
    last = None if cfg.ckpt_path else RunDirectory(output_dir).last_checkpoint()
    if last is not None:
        with open_dict(cfg):
            cfg.ckpt_path = str(check_checkpoint(last))
        print(f"Continuing this run from its own {cfg.ckpt_path}", file=sys.stderr)

    trainer = build_trainer(cfg, output_dir, callbacks)  # refuses bad callback or logger settings before reading data
    with open_dict(cfg):  # the batch each process takes, once the number of processes is known (a record)
        cfg.train.world_size = trainer.world_size
        for key in ("batch_size", "g_batch_size"):
            cfg.train[f"{key}_per_rank"] = rank_share(f"train.{key}", cfg.train[key], trainer.world_size)
    check_process_launch(trainer)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # every rank initializes alike (DDP checks it too)
    module = GAN(cfg)  # cheap, and refuses sizes or options the architecture cannot serve
    if cfg.ckpt_path:
        check_networks_match(cfg.ckpt_path, module)
        if checkpoint_g_step(cfg.ckpt_path) >= cfg.train.steps:
            return _already_finished(cfg, trainer, module)
    if trainer.is_global_zero:
        RunDirectory(output_dir).write_config(OmegaConf.to_yaml(cfg))
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()  # a missing dataset stops the run here, before any training
    if not cfg.ckpt_path:  # a resumed run gets these layers' values back from its checkpoint
        initialize_from_data_(module, datamodule)
    if trainer.is_global_zero:
        print(banner(cfg, trainer), flush=True)
    started = time.monotonic()
    try:
        with trackers.session(trainer):
            trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
    except Exception as error:  # a full disk under a sample grid or TensorBoard's events (checkpoints: their writer)
        full = disk_full_cause(error)
        if full is None or isinstance(error, SnganReproError):
            raise
        raise disk_full_error(full.filename or f"the run's files in {output_dir}",
                              *checkpoint_folders(trainer)) from error
    if trainer.is_global_zero:
        seconds = time.monotonic() - started
        values = {**{name: module.last_metrics[name] for name in TRAINING_LOSSES if name in module.last_metrics},
                  **last_quality_values(trainer)}
        print(summary(cfg, trainer, module.g_step, module.g_step - (module.resumed_at or 0), seconds, values,
                      hydra_overrides()), flush=True)
    for callback in trainer.callbacks:  # a preempted run passes its signal on (e.g. SLURM's requeue) once stopped
        if isinstance(callback, Preemption) and callback.stopped:
            callback.hand_over()
    return module


def _already_finished(cfg: DictConfig, trainer: pl.Trainer, module: GAN) -> GAN:
    """A checkpoint at or past ``train.steps``: nothing to train. The module gets its weights and counters, the run's
    record and files stay as they are, and the summary gives the run's last measured values (from its record)."""
    load_training_state(cfg.ckpt_path, module)
    if trainer.is_global_zero:
        values = RunDirectory.of_checkpoint(cfg.ckpt_path).read_record().get("final_metrics") or {}
        print(summary(cfg, trainer, module.g_step, 0, 0.0, values, hydra_overrides()), flush=True)
    return module


@hydra.main(config_path=str(CONFIG_DIR), config_name=CONFIG_NAME, version_base="1.3")
def main(cfg: DictConfig) -> None:
    sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        if cfg.get("study") is not None and not sweep:
            study = HydraConfig.get().runtime.choices.get("study")
            raise ConfigError(f"study={study} is a study of many runs: add -m (python -m sngan_repro.train -m "
                              f"study={study}).")
        run(cfg)
    except SnganReproError as error:
        print(f"error: {error}", file=sys.stderr)
        run_directory = RunDirectory(cfg.paths.output_dir)
        # a single run refused before it started leaves no folder behind; a sweep's job keeps its error
        if run_directory.path.is_dir() and (sweep or not run_directory.remove_if_unstarted()):
            with contextlib.suppress(OSError):  # e.g. the disk is full: the sentence is on stderr anyway
                run_directory.write_error(error)
        if not sweep:  # in a sweep one failed run (e.g. a diverging setting) must not stop the others
            sys.exit(2)


if __name__ == "__main__":
    run_command(main, functools.partial(settings_of, config_name=CONFIG_NAME))
