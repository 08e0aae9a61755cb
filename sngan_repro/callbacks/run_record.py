"""``run.json`` in every run directory: what is needed to re-run a result and to know what produced it.

``config.yaml`` (written by ``train.run``) holds the composed config; it does not say how the run was
started, from which source, with which library versions, on how many devices, or whether it ended. The
record adds that: the command line and Hydra overrides, the group choices, the git commit of the source
(and whether it had uncommitted changes), the versions, the world size and the batch per rank, the devices,
the quality metrics measured during training with their protocols (``metrics``: {name: sentence}), each
tracker's run (``trackers``: {kind: what finds it again, e.g. W&B's id, MLflow's run id and store}) and, once
finished, their last values (``final_metrics``), and the run's status ("running", then "finished" or "failed").
A resumed run keeps the earlier record and appends a session to ``sessions``; the top-level fields describe
the latest session. Only global rank 0 writes. Other code sets fields later with
``RunDirectory.update_record`` (e.g. a status "preempted").
"""

import os
import platform
import shlex
import socket
import sys
import time
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from pytorch_lightning.accelerators import CUDAAccelerator
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_warn

from .. import trackers
from ..distributed import rank_share
from ..run_directory import CONFIG_FILE, RunDirectory, git_state, now, source_dir, versions
from .metrics import last_quality_values
from .schedule import GeneratorStepCallback

# top-level fields that describe how a session ended; moved into its ``sessions`` entry when another starts
SESSION_END_FIELDS = ("status", "finished", "wall_seconds", "error", "g_step", "final_metrics")


def rerunnable_command(argv: list[str]) -> str:
    """``argv`` as a shell line; ``python -m sngan_repro.train`` runs with argv[0] = the path of train.py,
    which is written back as the module form so that the line works from any folder."""
    if argv and Path(argv[0]).as_posix().endswith("sngan_repro/train.py"):
        return shlex.join(["python", "-m", "sngan_repro.train", *argv[1:]])
    return shlex.join(argv)


def hydra_overrides() -> list[str] | None:
    """The overrides of the Hydra task (the command line's ``key=value`` arguments), None outside Hydra."""
    if not HydraConfig.initialized():
        return None
    return list(HydraConfig.get().overrides.task)


def device_names(trainer) -> list[str]:
    """The devices this node trains on: the CUDA devices by name, otherwise the CPU."""
    if isinstance(trainer.accelerator, CUDAAccelerator):
        import torch

        return [torch.cuda.get_device_name(index) for index in trainer.device_ids]
    return [f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs)"]


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
    """Writes ``<directory>/run.json`` at the start of fitting and its end status (see the module doc).

    ``steps``: the run's length in generator updates (a session that reached it is "finished"); ``choices``: the
    option picked in each config group; ``batch_size`` and ``g_batch_size``: the global real and generated batches,
    recorded with each rank's share."""

    def __init__(self, directory: str, steps: int, choices: dict | None, batch_size: int, g_batch_size: int):
        self.directory = RunDirectory(directory)
        self.steps, self.choices = steps, dict(choices) if choices is not None else None
        self.batch_size, self.g_batch_size = batch_size, g_batch_size
        self._started_at: float | None = None  # time.monotonic() at this session's start

    def session_start(self, trainer) -> dict:
        """The fields of the record that describe the session starting now."""
        world_size = trainer.world_size
        return {
            "status": "running",
            "started": now(),
            "command": rerunnable_command(sys.argv),
            "argv": list(sys.argv),
            "cwd": os.getcwd(),
            "overrides": hydra_overrides(),
            "choices": self.choices,
            "config": CONFIG_FILE,
            "git": git_state(source_dir()),
            "versions": versions(),
            "world_size": world_size,
            "num_nodes": trainer.num_nodes,
            "devices_per_node": len(trainer.device_ids),
            "strategy": type(trainer.strategy).__name__,
            "accelerator": type(trainer.accelerator).__name__,
            "precision": trainer.precision,
            "batch": {"global": self.batch_size,
                      "per_rank": rank_share("train.batch_size", self.batch_size, world_size),
                      "generator_global": self.g_batch_size,
                      "generator_per_rank": rank_share("train.g_batch_size", self.g_batch_size, world_size)},
            "metrics": {name: protocol for callback in trainer.callbacks
                        if isinstance(callback, GeneratorStepCallback)
                        for name, protocol in callback.measured_protocols().items()},
            "devices": device_names(trainer),
            "hostname": socket.gethostname(),
        }

    def on_fit_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self._start(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        # a run stopped before its length (e.g. preempted) is not finished; what stopped it says so
        if trainer.is_global_zero and pl_module.g_step >= self.steps:
            self.directory.update_record(status="finished", finished=now(), g_step=pl_module.g_step,
                                         wall_seconds=self._wall_seconds(), final_metrics=last_quality_values(trainer))

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not trainer.is_global_zero:
            return
        try:
            if self._started_at is None:  # failed before fitting started: record the session anyway
                self._start(trainer, pl_module)
            # ``finished``: when the session ended, whichever way
            self.directory.update_record(status="failed", error=f"{type(exception).__name__}: {exception}",
                                         finished=now(), g_step=pl_module.g_step, wall_seconds=self._wall_seconds())
        except Exception as error:  # the run's own exception is the one to report, not the record's
            rank_zero_warn(f"Could not record the failure in {self.directory.record_file}: {error}")

    def _start(self, trainer, pl_module) -> None:
        self._started_at = time.monotonic()
        previous = self.directory.read_record()
        # each tracker's run, which a continued run continues (also one that this session does not log to)
        start = {**self.session_start(trainer),
                 "trackers": {**previous.get("trackers", {}), **trackers.identities(trainer.loggers)}}
        record = start_session(previous, start, pl_module.g_step)
        self.directory.write_record(record)

    def _wall_seconds(self) -> float:
        return round(time.monotonic() - self._started_at, 3)
