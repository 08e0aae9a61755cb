"""TensorBoard HParams: each run's group choices and key settings, with its metrics, so that a
sweep compares runs by option in the HParams tab."""

from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.tensorboard.summary import hparams

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


class HParamsSummary(Callback):
    """Declares the run's hyper-parameters (``hparams_of`` its ``choices``, ``settings`` and ``normalizations``) and
    the metric tags the HParams tab shows: the losses and every scalar the run's periodic callbacks log; the values
    are the latest of those scalars."""

    def __init__(self, choices, settings, normalizations):
        self.hparams = hparams_of(choices, dict(settings), normalizations)

    @rank_zero_only
    def on_fit_start(self, trainer, pl_module) -> None:
        logged = [name for callback in trainer.callbacks if isinstance(callback, GeneratorStepCallback)
                  for name in callback.logged_names()]
        names = ["loss/d", "loss/g", *logged]
        # the summary alone: TensorBoardLogger.log_hyperparams would also log placeholder values at step 0
        experiment, start, end = hparams(self.hparams, {name: 0.0 for name in names})
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                for summary in (experiment, start, end):
                    logger.experiment.file_writer.add_summary(summary)
