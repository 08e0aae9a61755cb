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

from .callbacks import FixedLatentSamples
from .callbacks.metrics import last_quality_values
from .callbacks.run_record import device_names
from .checkpointing import checkpoint_folders, newest_checkpoint
from .run_directory import LAST_CHECKPOINT

# packages whose deprecation warnings about their own internals are for their authors, not for our users
LIBRARIES = ("pytorch_lightning", "lightning_fabric", "lightning", "torch", "torchvision", "torchmetrics",
             "torch_fidelity", "hydra", "omegaconf", "tensorboard", "numpy", "scipy", "sklearn", "matplotlib", "PIL")
# Lightning's loggers: its INFO lines are the device report, the advertisements and the model summary table
LIBRARY_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")
BANNER_CHOICES = ("experiment", "dataset", "arch", "norm", "gen_norm", "loss", "optim")


def quiet_libraries(verbose: bool) -> None:
    if verbose:
        return
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
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


def _program(name: str) -> str:
    """How to call ``name`` ("python", "tensorboard") as this run did: this interpreter's own copy, relative to the
    current folder when inside it (".venv/bin/python"), else by name."""
    program = Path(sys.executable) if name == "python" else Path(sys.executable).with_name(name)
    if not program.is_file():
        return name
    return os.path.relpath(program) if program.is_relative_to(Path.cwd()) else str(program)


def next_commands(cfg, files: dict[str, Path], overrides: list[str] | None) -> list[str]:
    """Shell lines that open TensorBoard, evaluate the last checkpoint and train on from it (the last only when the
    command line's overrides are known, i.e. under Hydra)."""
    commands = []
    if "TensorBoard" in files:
        commands.append(shlex.join([_program("tensorboard"), "--logdir", str(files["TensorBoard"])]))
    checkpoint = files.get("last checkpoint")
    if checkpoint is not None:
        metrics = (cfg.get("choices") or {}).get("metrics")
        evaluate = [_program("python"), "-m", "sngan_repro.evaluate", f"ckpt={checkpoint}"]
        commands.append(shlex.join([*evaluate, *([f"metrics={metrics}"] if metrics not in (None, "none") else [])]))
        if overrides is not None:
            kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in ("ckpt_path", "train.steps")]
            commands.append(shlex.join([_program("python"), "-m", "sngan_repro.train", *kept, f"ckpt_path={checkpoint}",
                                        f"train.steps={2 * cfg.train.steps}"]))
    return commands


def summary(cfg, trainer, module, first_g_step: int, seconds: float, overrides: list[str] | None) -> str:
    done = module.g_step - first_g_step
    status = "done" if module.g_step >= module.steps else "stopped"
    lines = [f"sngan-repro: {status}, {module.g_step} of {cfg.train.steps} generator updates ({done} in "
             f"{_duration(seconds)}, {done / seconds if seconds > 0 else 0.0:.2f} it/s)"]
    values = {**{name: module.last_metrics[name] for name in ("loss/d", "loss/g") if name in module.last_metrics},
              **last_quality_values(trainer)}
    width = max(map(len, values), default=0)
    lines += [f"  {name:<{width}}  {value:.6g}" for name, value in values.items()]
    files = run_files(trainer)
    lines.append(f"  {'run directory':<16}{cfg.paths.output_dir}")
    lines += [f"  {name:<16}{path}" for name, path in files.items()]
    commands = next_commands(cfg, files, overrides)
    if commands:
        lines.append("next: view the curves and samples, evaluate the checkpoint, train on to twice the length:")
        lines += [f"  {command}" for command in commands]
    return "\n".join(lines)
