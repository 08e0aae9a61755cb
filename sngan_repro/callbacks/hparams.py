"""Each tracker gets the run's hyper-parameters (group choices and key settings) and identity (directory, sweep
group, overrides, source commit) at the start of every session, so that a sweep compares runs by option (TensorBoard's
HParams tab, W&B's config, MLflow's parameters and tags) and no result is separated from how it was made."""

from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_only

from .. import trackers
from ..run_directory import git_state, source_dir
from .run_record import hydra_overrides
from .schedule import GeneratorStepCallback

GROUPS = ("experiment", "dataset", "arch", "norm", "gen_norm", "loss", "optim", "metrics")


def _options(prefix: str, node) -> dict:
    """The scalar settings of a config node (e.g. norm.mode, norm.update_every), None written as 'null'."""
    return {f"{prefix}.{key}": "null" if value is None else value for key, value in node.items()
            if key != "_target_" and (value is None or isinstance(value, (bool, int, float, str)))}


def hparams_of(choices, settings, normalizations) -> dict:
    """The run's identity for comparisons: group choices, the settings sweeps vary (seed, length, batch, learning
    rates, ...) and every scalar setting of the normalizations ({"norm": node, "gen_norm": node}, e.g. SAN's
    mode), so that no result is separated from how it was made."""
    params = {group: str((choices or {}).get(group)) for group in GROUPS}
    params.update(settings)
    for name, node in normalizations.items():
        params.update(_options(name, node))
    return params


def run_identity(directory: str, group: str | None) -> dict:
    """Where the run is and how it was made, as the trackers show it beside the hyper-parameters."""
    git = git_state(source_dir()) or {}
    return {"run/directory": directory, "run/group": group or "", "run/overrides": " ".join(hydra_overrides() or []),
            "run/git_commit": git.get("commit", ""), "run/git_dirty": git.get("dirty", "")}


class HParamsSummary(Callback):
    """Gives every tracker the run's hyper-parameters (``hparams_of`` its ``choices``, ``settings`` and
    ``normalizations``) with its identity (``directory``, the sweep ``group``) and, for TensorBoard's HParams tab,
    the metric tags it shows: the losses and every scalar the run's periodic callbacks log."""

    def __init__(self, choices, settings, normalizations, directory: str, group: str | None = None):
        self.hparams = hparams_of(choices, dict(settings), normalizations)
        self.directory, self.group = directory, group

    @rank_zero_only
    def on_fit_start(self, trainer, pl_module) -> None:
        logged = [name for callback in trainer.callbacks if isinstance(callback, GeneratorStepCallback)
                  for name in callback.logged_names()]
        trackers.log_hparams(trainer.loggers, self.hparams, run_identity(self.directory, self.group),
                             ["loss/d", "loss/g", *logged])
