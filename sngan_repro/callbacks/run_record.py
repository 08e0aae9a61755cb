"""``run.json`` in every run directory: what is needed to re-run a result and to know what produced it.

``config.yaml`` (written by ``train.run``) holds the composed config; it does not say how the run was
started, from which source, with which library versions, on how many devices, or whether it ended. The
record adds that: the command line and Hydra overrides, the group choices, the git commit of the source
(and whether it had uncommitted changes), the versions, the world size and the batch per rank, the devices,
the quality metrics measured during training with their protocols (``metrics``: {name: sentence}) and, once
finished, their last values (``final_metrics``), and the run's status ("running", then "finished" or "failed").
A resumed run keeps the earlier record and appends a session to ``sessions``; the top-level fields describe
the latest session. Only global rank 0 writes. Other code can set fields later with ``RunRecord.update`` (e.g. a
status "preempted").
"""

import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import import_module, metadata
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from pytorch_lightning.accelerators import CUDAAccelerator
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_warn

from .metrics import last_quality_values
from .schedule import GeneratorStepCallback

FILE_NAME = "run.json"
CONFIG_FILE_NAME = "config.yaml"  # written by train.run beside run.json
GIT_TIMEOUT_SECONDS = 10
# distribution name -> module whose __version__ is recorded instead of the distribution's metadata: torch's
# and torchvision's carry the build tag (e.g. +cu121, +cpu) that their metadata may lack
DISTRIBUTIONS = {"torch": "torch", "torchvision": "torchvision", "pytorch-lightning": None, "hydra-core": None,
                 "omegaconf": None, "numpy": None, "torch-fidelity": None, "sngan-repro": None}
# top-level fields that describe how a session ended; moved into its ``sessions`` entry when another starts
SESSION_END_FIELDS = ("status", "finished", "wall_seconds", "error", "g_step", "final_metrics")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def rerunnable_command(argv: list[str]) -> str:
    """``argv`` as a shell line; ``python -m sngan_repro.train`` runs with argv[0] = the path of train.py,
    which is written back as the module form so that the line works from any folder."""
    if argv and Path(argv[0]).as_posix().endswith("sngan_repro/train.py"):
        return shlex.join(["python", "-m", "sngan_repro.train", *argv[1:]])
    return shlex.join(argv)


def source_dir() -> Path:
    """The folder holding the ``sngan_repro`` package (the repository root of a source checkout)."""
    return Path(__file__).resolve().parents[2]


def _git(directory: Path, *args: str) -> str | None:
    """The output of ``git -C directory args``, or None when git fails, is missing or hangs."""
    try:
        result = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True,
                                timeout=GIT_TIMEOUT_SECONDS)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def git_state(directory: Path) -> dict | None:
    """``{"commit", "dirty"}`` of the checkout the package source in ``directory`` is tracked in; None when it
    is not tracked by git (e.g. an installed copy, even inside some other repository) or git is missing."""
    if _git(directory, "ls-files", "--error-unmatch", "--", "sngan_repro") is None:
        return None
    commit, status = _git(directory, "rev-parse", "HEAD"), _git(directory, "status", "--porcelain")
    if commit is None or status is None:
        return None
    return {"commit": commit.strip(), "dirty": bool(status.strip())}


def _version(distribution: str, module: str | None) -> str | None:
    try:
        return str(import_module(module).__version__) if module else metadata.version(distribution)
    except (ImportError, AttributeError, metadata.PackageNotFoundError):
        return None


def versions() -> dict:
    return {"python": platform.python_version(),
            **{name: _version(name, module) for name, module in DISTRIBUTIONS.items()}}


def hydra_overrides() -> list[str] | None:
    """The overrides of the Hydra task (the command line's ``key=value`` arguments), None outside Hydra."""
    if not HydraConfig.initialized():
        return None
    return list(HydraConfig.get().overrides.task)


def group_choices(cfg) -> dict | None:
    choices = cfg.get("choices")
    return OmegaConf.to_container(choices, resolve=True) if choices is not None else None


def device_names(trainer) -> list[str]:
    """The devices this node trains on: the CUDA devices by name, otherwise the CPU."""
    if isinstance(trainer.accelerator, CUDAAccelerator):
        import torch

        return [torch.cuda.get_device_name(index) for index in trainer.device_ids]
    return [f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs)"]


def batch_sizes(cfg) -> dict:
    """``train.batch_size`` and ``train.g_batch_size`` are global (all ranks together); ``train.run`` has added each
    rank's share to the config once the number of ranks was known."""
    train = cfg.train
    return {"global": train.batch_size, "per_rank": train.batch_size_per_rank,
            "generator_global": train.g_batch_size, "generator_per_rank": train.g_batch_size_per_rank}


def session_start(trainer, pl_module) -> dict:
    """The fields of the record that describe the session starting now."""
    cfg = pl_module.cfg
    return {
        "status": "running",
        "started": now(),
        "command": rerunnable_command(sys.argv),
        "argv": list(sys.argv),
        "cwd": os.getcwd(),
        "overrides": hydra_overrides(),
        "choices": group_choices(cfg),
        "config": CONFIG_FILE_NAME,
        "git": git_state(source_dir()),
        "versions": versions(),
        "world_size": trainer.world_size,
        "num_nodes": trainer.num_nodes,
        "devices_per_node": len(trainer.device_ids),
        "strategy": type(trainer.strategy).__name__,
        "accelerator": type(trainer.accelerator).__name__,
        "precision": trainer.precision,
        "batch": batch_sizes(cfg),
        "metrics": {name: protocol for callback in trainer.callbacks if isinstance(callback, GeneratorStepCallback)
                    for name, protocol in callback.measured_protocols().items()},
        "devices": device_names(trainer),
        "hostname": socket.gethostname(),
    }


def read_record(directory: str | Path) -> dict:
    path = Path(directory) / FILE_NAME
    return json.loads(path.read_text()) if path.exists() else {}


def write_record(directory: str | Path, record: dict) -> None:
    """Write ``run.json`` whole or not at all (a reader never sees half a file)."""
    path = Path(directory) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(FILE_NAME + ".tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(temporary, path)


def start_session(record: dict, start: dict, g_step: int) -> dict:
    """``record`` (empty for a new run) with a new session: the previous session's end moves into its
    ``sessions`` entry, the top-level fields become this session's, and this session is appended."""
    sessions = record.pop("sessions", [])
    ended = {key: record.pop(key) for key in SESSION_END_FIELDS if key in record}
    if sessions:
        sessions[-1].update(ended)
    entry = {key: start[key] for key in ("started", "command", "world_size", "hostname")}
    return {**record, **start, "sessions": [*sessions, {**entry, "g_step_at_start": g_step}]}


class RunRecord(Callback):
    """Writes ``<directory>/run.json`` at the start of fitting and its end status (see the module doc)."""

    def __init__(self, directory: str):
        self.directory = directory
        self._started_at: float | None = None  # time.monotonic() at this session's start

    @staticmethod
    def update(output_dir: str | Path, **fields) -> dict:
        """Set top-level ``fields`` of ``output_dir/run.json`` (read, change, write atomically); the new record."""
        record = {**read_record(output_dir), **fields}
        write_record(output_dir, record)
        return record

    def on_fit_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self._start(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        # a run stopped before train.steps (e.g. preempted) is not finished; what stopped it says so
        if trainer.is_global_zero and pl_module.g_step >= pl_module.cfg.train.steps:
            self.update(self.directory, status="finished", finished=now(), g_step=pl_module.g_step,
                        wall_seconds=self._wall_seconds(), final_metrics=last_quality_values(trainer))

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not trainer.is_global_zero:
            return
        try:
            if self._started_at is None:  # failed before fitting started: record the session anyway
                self._start(trainer, pl_module)
            # ``finished``: when the session ended, whichever way
            self.update(self.directory, status="failed", error=f"{type(exception).__name__}: {exception}",
                        finished=now(), g_step=pl_module.g_step, wall_seconds=self._wall_seconds())
        except Exception as error:  # the run's own exception is the one to report, not the record's
            rank_zero_warn(f"Could not record the failure in {Path(self.directory) / FILE_NAME}: {error}")

    def _start(self, trainer, pl_module) -> None:
        self._started_at = time.monotonic()
        record = start_session(read_record(self.directory), session_start(trainer, pl_module), pl_module.g_step)
        write_record(self.directory, record)

    def _wall_seconds(self) -> float:
        return round(time.monotonic() - self._started_at, 3)
