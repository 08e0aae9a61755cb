"""What a training run says on the console: a banner before training (the run directory, the composed choices, the
device, the length and the global batch), one progress bar counting generator updates (``callbacks/progress.py``),
and a summary at the end (what was done, the last value of every metric, where the files are and the commands
that come next). Global rank zero prints them.

``quiet_libraries`` keeps the libraries' own start-up messages (Lightning's device lines, advertisements and model
table, all sent through Lightning's logger) and the deprecation warnings raised inside library code off the
console, with the switches the libraries offer (their loggers' levels, Python's warning filters by module);
``verbose=true`` or ``hydra.verbose=true`` leaves everything on. Warnings raised in this project's code, or raised
by a library about this project's calls, and every error, are never filtered.
"""

import logging
import os
import shlex
import sys
import warnings
from pathlib import Path

from pytorch_lightning.loggers import TensorBoardLogger

from . import trackers
from .callbacks import FixedLatentSamples
from .callbacks.run_record import device_names
from .checkpointing import checkpoint_folders, newest_checkpoint
from .run_directory import LAST_CHECKPOINT

# packages whose deprecation warnings about their own internals are for their authors, not for our users
LIBRARIES = ("pytorch_lightning", "lightning_fabric", "lightning", "torch", "torchvision", "torchmetrics",
             "torch_fidelity", "hydra", "omegaconf", "tensorboard", "numpy", "scipy", "sklearn", "matplotlib", "PIL",
             "wandb", "mlflow")
# Lightning's loggers: its INFO lines are the device report, the advertisements and the model summary table; MLflow's
# and its database migrations': a new tracking store's set-up
LIBRARY_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric", "mlflow",
                   "alembic")
TRAINING_LOSSES = ("loss/d", "loss/g")  # the summary's values besides the quality metrics
BANNER_CHOICES = ("experiment", "dataset", "arch", "norm", "gen_norm", "loss", "optim")


def counted(count: int, noun: str) -> str:
    """``1 run``, ``2 runs``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def quiet_libraries(verbose: bool) -> None:
    if verbose:
        return
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("WANDB_SILENT", "true")  # W&B's own run report (the summary names its folder)
    inside_a_library = rf"({'|'.join(LIBRARIES)})(\.|$)"  # the module the warning is attributed to
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=inside_a_library)


def _choices(cfg) -> str:
    choices = cfg.get("choices") or {}
    return " ".join(f"{group}={choices[group]}" for group in BANNER_CHOICES
                    if choices.get(group) not in (None, "none") or group == "norm")


def banner(cfg, trainer) -> str:
    train = cfg.train
    devices = ", ".join(sorted(set(device_names(trainer))))
    lines = [f"sngan-repro: {_choices(cfg)} seed={cfg.seed}",
             f"  run directory   {cfg.paths.output_dir}",
             f"  device          {trainer.strategy.root_device.type}: {devices}; {trainer.world_size} process(es), "
             f"precision {trainer.precision}",
             f"  training        {train.steps} generator updates, {cfg.optim.n_dis} critic update(s) each; global "
             f"batch {train.batch_size} real, {train.g_batch_size} generated"]
    if cfg.ckpt_path:
        lines.append(f"  resuming from   {cfg.ckpt_path}")
    return "\n".join(lines)


def run_files(trainer) -> dict[str, Path]:
    """The run's files a user looks for next: the last checkpoint, the sample grids and the TensorBoard folder (each
    only if the run wrote it)."""
    folders = [Path(folder) for folder in checkpoint_folders(trainer)]
    last = next((folder / LAST_CHECKPOINT for folder in folders if (folder / LAST_CHECKPOINT).is_file()), None)
    files = {"last checkpoint": last or newest_checkpoint(*folders)}
    files["sample grids"] = next((callback.directory for callback in trainer.callbacks
                                  if isinstance(callback, FixedLatentSamples) and callback.directory), None)
    files["TensorBoard"] = next((Path(logger.log_dir) for logger in trainer.loggers
                                 if isinstance(logger, TensorBoardLogger)), None)
    return {name: path for name, path in files.items() if path is not None and path.exists()}


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def program(name: str) -> str:
    """How to call ``name`` ("python", "tensorboard") as this run did: this interpreter's own copy, relative to the
    current folder when inside it (".venv/bin/python"), else by name."""
    program = Path(sys.executable) if name == "python" else Path(sys.executable).with_name(name)
    if not program.is_file():
        return name
    return os.path.relpath(program) if program.is_relative_to(Path.cwd()) else str(program)


def next_commands(cfg, files: dict[str, Path], overrides: list[str] | None, measured: bool,
                  viewers: list[list[str]]) -> list[str]:
    """Shell lines that open what the trackers logged (``viewers``, e.g. TensorBoard; W&B's upload of an offline run),
    evaluate the last checkpoint with the metrics the run measured (when it measured any: they are then available on
    this machine) and train on from it (when the command line's overrides are known, i.e. under Hydra)."""
    commands = [shlex.join([program(name), *arguments]) for name, *arguments in viewers]
    checkpoint = files.get("last checkpoint")
    if checkpoint is not None:
        if measured:
            commands.append(shlex.join([program("python"), "-m", "sngan_repro.evaluate", f"ckpt={checkpoint}"]))
        if overrides is not None:
            kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in ("ckpt_path", "train.steps")]
            commands.append(shlex.join([program("python"), "-m", "sngan_repro.train", *kept, f"ckpt_path={checkpoint}",
                                        f"train.steps={2 * cfg.train.steps}"]))
    return commands


def summary(cfg, trainer, g_step: int, done: int, seconds: float, values: dict[str, float],
            overrides: list[str] | None) -> str:
    """What a run did (``done`` of its ``g_step`` generator updates in ``seconds``), the last ``values`` of its losses
    and metrics, where its files are and the commands that come next."""
    steps = cfg.train.steps
    if done == 0 and g_step >= steps:
        headline = (f"already finished: its checkpoint is at {g_step} generator updates and train.steps={steps} "
                    f"(nothing to train; raise train.steps to train on)")
    else:
        headline = (f"{'done' if g_step >= steps else 'stopped'}, {g_step} of {steps} generator updates ({done} in "
                    f"{_duration(seconds)}, {done / seconds if seconds > 0 else 0.0:.2f} it/s)")
    lines = [f"sngan-repro: {headline}"]
    width = max(map(len, values), default=0)
    lines += [f"  {name:<{width}}  {value:.6g}" for name, value in values.items()]
    files = run_files(trainer)
    lines.append(f"  {'run directory':<16}{cfg.paths.output_dir}")
    lines += [f"  {name:<16}{path}" for name, path in files.items()]
    measured = any(name not in TRAINING_LOSSES for name in values)
    commands = next_commands(cfg, files, overrides, measured, trackers.next_commands(trainer.loggers))
    if commands:
        lines.append("next: view the curves and samples, " + ("evaluate the checkpoint, " if measured else "")
                     + "train on to twice the length:")
        lines += [f"  {command}" for command in commands]
    return "\n".join(lines)
