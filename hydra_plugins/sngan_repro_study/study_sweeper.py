"""``hydra/sweeper=study``: the Hydra sweeper that runs a study preset (``python -m sngan_repro.train -m study=<name>``;
every ``conf/study`` preset selects it).

It reads and checks the preset (each method's runs composed by Hydra's own config loader, as the launcher will), then
hands each batch of runs to the configured Hydra launcher (basic, ``hydra/launcher=local``, ``=slurm``) and their
results to Optuna (``sngan_repro.study.driver``). Why a sweeper and not a command of its own: Hydra gives a sweeper
its launcher, config loader and run directories, so each draw is an ordinary run of the training command, on any
launcher, with no launching code here. ``hydra-optuna-sweeper`` is not used because it pins optuna<3.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, open_dict
from omegaconf.errors import OmegaConfBaseException


@dataclass
class StudySweeperConf:
    _target_: str = "hydra_plugins.sngan_repro_study.study_sweeper.StudySweeper"
    batch: int = 1  # runs handed to the launcher at once (it runs them in parallel if it can, e.g. =local)
    storage: str | None = None  # Optuna's storage: a database URL or a journal file; null: <study folder>/study.db


ConfigStore.instance().store(group="hydra/sweeper", name="study", node=StudySweeperConf, provider="sngan-repro")


class StudySweeper(Sweeper):
    def __init__(self, batch: int = 1, storage: str | None = None) -> None:
        self.batch, self.storage = batch, storage
        self.config = self.launcher = self.config_loader = None
        self.job_index = 0

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.config, self.config_loader = config, hydra_context.config_loader
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        from sngan_repro.config import settings_of
        from sngan_repro.errors import ConfigError
        from sngan_repro.overrides import composition_error
        from sngan_repro.study.driver import StudyDriver, open_storage, progress
        from sngan_repro.study.preset import read_preset

        name = self.config.hydra.runtime.choices.get("study")
        if not name or self.config.get("study") is None:
            raise ConfigError("hydra/sweeper=study runs a study preset; choose one with study=<name> (conf/study/).")
        if not isinstance(self.batch, int) or isinstance(self.batch, bool) or self.batch < 1:
            raise ConfigError(f"hydra.sweeper.batch={self.batch!r} must be a positive number of runs launched "
                              f"together.")
        for override in OverridesParser.create().parse_overrides(arguments):
            if override.is_sweep_override():
                raise ConfigError(f"{override.input_line} lists several values, but a study draws its runs' settings "
                                  f"itself; compare options as the preset's methods (study.methods).")

        def compose(overrides: list[str]) -> DictConfig:
            try:
                job = self.config_loader.load_sweep_config(self.config, list(overrides))
            except (HydraException, OmegaConfBaseException) as error:
                raise composition_error(error, overrides, settings_of) from None
            with open_dict(job):
                del job["hydra"]
            return job

        preset = read_preset(name, self.config.study, compose, arguments)
        folder = Path(self.config.hydra.sweep.dir)
        storage = open_storage(self.storage, folder)
        driver = StudyDriver(preset, folder, storage, self._launch, self.batch, url=self.storage)
        print(f"sngan-repro: study {name} in {folder}: {len(preset.methods)} methods x {preset.n_draws} draws, "
              f"then each method's best draw with seeds {list(preset.seeds)}", flush=True)
        complete = driver.run()
        print(f"sngan-repro: study {name}" + ("" if complete else f" stopped: {driver.stopped}; the same command "
              f"continues it") + f"\n{progress(preset, storage)}\nits report: python -m sngan_repro.report {folder}",
              file=sys.stdout if complete else sys.stderr, flush=True)

    def _launch(self, jobs: list[list[str]]) -> list[BaseException | None]:
        returns = self.launcher.launch(jobs, initial_job_idx=self.job_index)
        self.job_index += len(jobs)
        escaped = []
        for job in returns:
            try:
                _ = job.return_value  # raises what escaped the job's task function
            except Exception as error:  # noqa: BLE001 - the run failed; its draw is kept as failed
                escaped.append(error)
            else:
                escaped.append(None)
        return escaped
