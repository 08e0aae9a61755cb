"""Before a sweep's first job (``-m``): every dataset its jobs train on is there, or can be downloaded.

Each job checks its own dataset before training, but a sweep of nine jobs on a machine without the dataset (and
without network) would then try the download nine times and print the same sentence nine times. This Hydra callback
composes the config of each of the sweep's jobs once, before the launcher starts any, and prepares each distinct
dataset once (downloading it if it can); a dataset that cannot be had stops the sweep there, with one sentence.
"""

import itertools
import sys

from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .data import build_datamodule
from .errors import ConfigError, DatasetUnavailableError


def job_overrides(task: list[str]) -> list[list[str]]:
    """The overrides of each job of a sweep over ``task`` (the command line's overrides): one value of every sweep
    override (``key=a,b``, ``range(...)``) with the others, as Hydra's basic sweeper combines them."""
    options = []
    for override in OverridesParser.create().parse_overrides(task):
        if override.is_sweep_override():
            key = override.get_key_element()
            options.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            options.append([override.input_line])
    return [list(combination) for combination in itertools.product(*options)]


def study_job_overrides(study: DictConfig, task: list[str]) -> list[list[str]]:
    """The overrides of each method's runs of a study preset (``conf/study``), as its sweeper composes them."""
    base = list(study.get("base") or [])
    return [[*base, *task, *(entry or {}).get("overrides", [])] for entry in (study.get("methods") or {}).values()]


class SweepDatasets(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        task = list(config.hydra.overrides.task)
        try:
            jobs = study_job_overrides(config.study, task) if config.get("study") else job_overrides(task)
        except HydraException:  # a search space no list enumerates (an interval, a glob): each job checks its own
            return
        try:  # every job's config first: Hydra's sentence for an override it refuses comes before any data
            configs = [compose(config_name=config.hydra.job.config_name, overrides=overrides) for overrides in jobs]
        except (HydraException, OmegaConfBaseException):
            return
        datasets = {OmegaConf.to_yaml(job.dataset, resolve=True): job for job in configs}  # each distinct one once
        for job in datasets.values():
            try:
                build_datamodule(job).prepare_data()
            except ConfigError:  # e.g. a size the dataset does not come in: the job refuses it in its own sentence
                continue
            except DatasetUnavailableError as error:
                print(f"error: {str(error).rstrip('.')}; none of the sweep's {len(jobs)} runs was started.",
                      file=sys.stderr)
                sys.exit(2)
