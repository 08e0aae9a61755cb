"""Experiment trackers: the Lightning loggers of ``conf/logger`` (TensorBoard, Weights & Biases, MLflow, CSV, any
other Lightning logger by its ``_target_``), built with the project's sentences, and the one place that knows what
each takes beyond scalars (Lightning's ``log_metrics`` is common to all): images, histograms, hyper-parameters and
the run's identity, how its run is found again when a run continues (``run.json``'s ``trackers``) and how it ends.

Scalars reach every logger through ``log_metrics(values, step=g_step)`` (generator updates, the papers'
iterations). A tracker's run is one per run directory: a resumed, preempted or requeued run continues the tracker run
its ``run.json`` names; a sweep's runs carry the sweep's folder as their group (W&B's ``group``, MLflow's tag
``run/group``).
"""

import contextlib
import fcntl
import importlib
import netrc
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from hydra.utils import get_class
from omegaconf import DictConfig
from pytorch_lightning.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from torch.utils.tensorboard.summary import hparams as tensorboard_hparams

from .errors import ConfigError
from .instantiate import instantiate_checked

SQLITE_PREFIX = "sqlite:///"


def image_pixels(image: torch.Tensor) -> np.ndarray:
    """A (C, H, W) image with values in [0, 1] as the (H, W, 3) uint8 array image files hold (rounded as
    torchvision's ``save_image``)."""
    pixels = image.detach().float().cpu().mul(255).add(0.5).clamp(0, 255).to(torch.uint8)
    if pixels.shape[0] == 1:
        pixels = pixels.expand(3, -1, -1)
    return pixels.permute(1, 2, 0).numpy()


class Tracker:
    """What a Lightning logger takes beyond scalars; this base serves any logger (hyper-parameters through
    ``log_hyperparams``, no images). ``package``: the optional dependency the logger needs, installed by the extra of
    the same name (``pip install -e '.[<package>]'``)."""

    kind = "logger"  # the logger's key in run.json's ``trackers``
    package: str | None = None

    def build_arguments(self, node: DictConfig, recorded: dict) -> dict:
        """Constructor arguments beyond ``node``'s: those that continue the tracker run ``recorded`` (this kind's
        entry of run.json's ``trackers``, {} for a new run)."""
        return {}

    def started(self, logger: Logger) -> None:
        """At the start of every session (global rank zero)."""

    def log_hparams(self, logger: Logger, params: dict, identity: dict, metric_names: list[str]) -> None:
        logger.log_hyperparams({**params, **identity})

    def log_image(self, logger: Logger, tag: str, image: torch.Tensor, step: int) -> None:
        """``image``: (C, H, W) in [0, 1]."""

    def log_histogram(self, logger: Logger, tag: str, values: torch.Tensor, step: int) -> None:
        pass

    def identity(self, logger: Logger) -> dict:
        """What finds this logger's run again (recorded in run.json)."""
        return {}

    def next_commands(self, logger: Logger) -> list[list[str]]:
        """Commands that open or upload what the run logged here."""
        return []

    def close(self, logger: Logger, failed: bool) -> None:
        """After fitting, however it ended (global rank zero)."""


class TensorBoard(Tracker):
    kind = "tensorboard"

    def log_hparams(self, logger, params, identity, metric_names):
        # the HParams summary alone, with the metric tags the tab shows: TensorBoardLogger.log_hyperparams would
        # also log placeholder values at step 0
        for summary in tensorboard_hparams({**params, **identity}, {name: 0.0 for name in metric_names}):
            logger.experiment.file_writer.add_summary(summary)

    def log_image(self, logger, tag, image, step):
        logger.experiment.add_image(tag, image, global_step=step)

    def log_histogram(self, logger, tag, values, step):
        logger.experiment.add_histogram(tag, values, global_step=step)

    def identity(self, logger):
        return {"dir": str(Path(logger.log_dir))}

    def next_commands(self, logger):
        return [["tensorboard", "--logdir", str(Path(logger.log_dir))]]


class CSV(Tracker):
    kind = "csv"

    def identity(self, logger):
        return {"dir": str(Path(logger.log_dir))}


WANDB_MODES = ("auto", "online", "offline", "disabled")
WANDB_DEFAULT_PROJECT = "sngan-repro"


def wandb_credentials() -> bool:
    """Whether a W&B API key is at hand without asking the network: ``WANDB_API_KEY``, an identity token file, or
    the netrc entry ``wandb login`` writes for the host of ``WANDB_BASE_URL`` (default api.wandb.ai)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        return path.is_file() and netrc.netrc(str(path)).authenticators(host) is not None
    except (netrc.NetrcParseError, OSError):
        return False


def wandb_mode(mode: str, project: str | None) -> str | None:
    """The mode W&B runs in for ``logger.wandb.mode`` and the configured project: ``auto`` is online when a project
    is configured and credentials are at hand, offline otherwise; ``WANDB_MODE`` set in the environment decides
    ``auto`` instead (None: W&B reads it)."""
    if mode not in WANDB_MODES:
        raise ConfigError(f"logger.wandb.mode={mode!r} is not a W&B mode; use one of {', '.join(WANDB_MODES)}.")
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return None
    return "online" if project and wandb_credentials() else "offline"


class WeightsAndBiases(Tracker):
    kind = "wandb"
    package = "wandb"

    def build_arguments(self, node, recorded):
        project = node.get("project")
        arguments = {"project": project or WANDB_DEFAULT_PROJECT, "mode": wandb_mode(node.get("mode", "auto"), project)}
        if recorded.get("id"):
            arguments["id"] = recorded["id"]
        return arguments

    def log_image(self, logger, tag, image, step):
        logger.log_image(key=tag, images=[image_pixels(image)], step=step)

    def log_histogram(self, logger, tag, values, step):
        import wandb

        logger.log_metrics({tag: wandb.Histogram(values.detach().float().cpu().numpy())}, step=step)

    def identity(self, logger):
        run = logger.experiment
        return {"id": run.id, "project": run.project, "group": run.group or None, "offline": run.offline,
                "folder": str(Path(run.dir).parent)}

    def next_commands(self, logger):
        run = logger.experiment
        if not run.offline:
            return []
        # every session of a resumed run is an offline folder of its own, under the same run id
        folders = sorted(Path(run.dir).parent.parent.glob(f"offline-run-*-{run.id}"))
        return [["wandb", "sync", *map(str, folders)]]

    def close(self, logger, failed):
        # Lightning leaves the run open until the process exits, and the next run of a sweep in this process
        # would log into it
        logger.experiment.finish(exit_code=1 if failed else 0)


class MLflow(Tracker):
    kind = "mlflow"
    package = "mlflow"

    def build_arguments(self, node, recorded):
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        uri = node.get("tracking_uri")
        with store_lock(uri):  # the jobs of a parallel sweep share a new store: one creates its tables
            client = MlflowClient(uri)
            if not recorded.get("run_id"):
                if client.get_experiment_by_name(node.experiment_name) is None:
                    client.create_experiment(node.experiment_name, artifact_location=node.get("artifact_location"))
                return {}
        try:
            client.get_run(recorded["run_id"])
        except MlflowException:
            raise ConfigError(f"This run's MLflow run {recorded['run_id']} (run.json) is not in the tracking store "
                              f"logger.mlflow.tracking_uri={uri}; set it to {recorded.get('tracking_uri')} to "
                              f"continue that run.") from None
        return {"run_id": recorded["run_id"]}

    def started(self, logger):
        logger.experiment.update_run(logger.run_id, status="RUNNING")  # a continued run was left FINISHED

    def log_hparams(self, logger, params, identity, metric_names):
        from mlflow.entities import Param, RunTag

        # MLflow keeps a parameter's first value (a changed one is refused): a continued run logs the new keys only;
        # its identity (the command of this session) goes to tags, which may change
        logged = logger.experiment.get_run(logger.run_id).data.params
        new = [Param(key, str(value)) for key, value in params.items() if key not in logged]
        for start in range(0, len(new), 100):  # MLflow takes at most 100 parameters per call
            logger.experiment.log_batch(logger.run_id, params=new[start:start + 100])
        logger.experiment.log_batch(logger.run_id, tags=[RunTag(key, str(value)) for key, value in identity.items()])

    def log_image(self, logger, tag, image, step):
        logger.experiment.log_image(logger.run_id, image_pixels(image), key=tag, step=step)

    def identity(self, logger):
        return {"run_id": logger.run_id, "experiment_id": logger.experiment_id,
                "tracking_uri": logger.experiment.tracking_uri}

    def next_commands(self, logger):
        return [["mlflow", "ui", "--backend-store-uri", logger.experiment.tracking_uri]]


TRACKERS: dict[type, Tracker] = {TensorBoardLogger: TensorBoard(), CSVLogger: CSV(), WandbLogger: WeightsAndBiases(),
                                 MLFlowLogger: MLflow()}


def tracker_of(logger_class: type) -> Tracker:
    return next((tracker for cls, tracker in TRACKERS.items() if issubclass(logger_class, cls)), Tracker())


@contextlib.contextmanager
def store_lock(tracking_uri: str | None):
    """Hold an exclusive lock beside a SQLite tracking store (``sqlite:///<file>``); other stores need none."""
    if not tracking_uri or not tracking_uri.startswith(SQLITE_PREFIX):
        yield
        return
    database = Path(tracking_uri[len(SQLITE_PREFIX):])
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _check_installed(name: str, tracker: Tracker) -> None:
    if tracker.package is None:
        return
    try:
        importlib.import_module(tracker.package)
    except ImportError:
        raise ConfigError(f"logger.{name} needs the {tracker.package} package, which is not installed: "
                          f"pip install -e '.[{tracker.package}]'.") from None


def build_loggers(cfg: DictConfig, recorded: dict | None = None) -> list[Logger]:
    """The loggers of ``cfg.logger`` ({name: node with ``_target_``}, entries set to null left out); ``recorded``:
    run.json's ``trackers`` of the run this one continues, whose tracker runs the loggers continue."""
    loggers = []
    for name, node in (cfg.get("logger") or {}).items():
        if node is None:
            continue
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ConfigError(f"logger.{name} has no _target_; give {{_target_: <a Lightning logger class>}}, or "
                              f"choose logger=tensorboard, wandb, mlflow, csv, many or none.")
        try:
            tracker = tracker_of(get_class(node._target_))
        except Exception:
            tracker = Tracker()  # instantiate_checked names what cannot be built
        _check_installed(name, tracker)
        arguments = tracker.build_arguments(node, (recorded or {}).get(tracker.kind, {}))
        logger = instantiate_checked(node, **arguments)  # the arguments replace the node's settings of that name
        if not isinstance(logger, Logger):
            raise ConfigError(f"logger.{name}._target_={node._target_!r} is not a Lightning logger.")
        loggers.append(logger)
    return loggers


def log_hparams(loggers, params: dict, identity: dict, metric_names: list[str]) -> None:
    for logger in loggers:
        tracker_of(type(logger)).log_hparams(logger, params, identity, metric_names)


def log_image(loggers, tag: str, image: torch.Tensor, step: int) -> None:
    for logger in loggers:
        tracker_of(type(logger)).log_image(logger, tag, image, step)


def log_histogram(loggers, tag: str, values: torch.Tensor, step: int) -> None:
    for logger in loggers:
        tracker_of(type(logger)).log_histogram(logger, tag, values, step)


def identities(loggers) -> dict[str, dict]:
    """{kind: identity} of the loggers that can be found again (run.json's ``trackers``)."""
    return {tracker.kind: identity for logger in loggers
            if (identity := (tracker := tracker_of(type(logger))).identity(logger))}


def next_commands(loggers) -> list[list[str]]:
    return [command for logger in loggers for command in tracker_of(type(logger)).next_commands(logger)]


@contextlib.contextmanager
def session(trainer):
    """The trackers' runs over one session of training (the block): started before it, ended after it, as failed when
    it raised (global rank zero)."""
    if trainer.is_global_zero:
        for logger in trainer.loggers:
            tracker_of(type(logger)).started(logger)
    try:
        yield
    except BaseException:
        _close(trainer, failed=True)
        raise
    _close(trainer, failed=False)


def _close(trainer, failed: bool) -> None:
    if not trainer.is_global_zero:
        return
    for logger in trainer.loggers:
        try:
            tracker_of(type(logger)).close(logger, failed)
        except Exception as error:  # the run's results are saved; a tracker that cannot close is reported
            print(f"warning: could not end the {type(logger).__name__} run: {error}", file=sys.stderr)
