"""Running a study: every method's draws, then its best draw again with each of the study's seeds (Lucic et al. 2018,
Sec. 4), each run an ordinary training run started through Hydra's launcher, each result kept in Optuna's storage.

Draws come from Optuna's ask interface and go back through its tell: a finished run gives its metric; a run that
diverged gives the worst value (+inf when minimizing, so that it is counted, never dropped); a run that failed
otherwise is a FAILED trial (kept and counted too). A trial left RUNNING was started by a driver that died: the
driver holds the study folder's lock while it runs, so whoever holds it next runs that trial again, with its number
and parameters (its run continues from its own checkpoint). Running the same command again therefore continues a
study, and a larger ``n_draws`` adds only new draws.
"""

import contextlib
import fcntl
import json
import math
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..console import counted
from ..errors import ConfigError, TrainingDivergedError
from ..run_directory import STUDY_RECORD, RunDirectory, write_atomically
from .preset import StudyPreset
from .space import ask, make_sampler
from .summary import worst

STORAGE_FILE = "study.db"
LOCK_FILE = "study.lock"
RECORD_FILE = STUDY_RECORD  # what the study is and where its storage is, for the report
SEED_KEY = "seed"  # the training config's seed, set by the best draws' re-runs
RESULTS = (TrialState.COMPLETE, TrialState.FAIL)

# launch(list of each job's overrides) -> per job, the exception that escaped its task function, or None
Launch = Callable[[list[list[str]]], list[BaseException | None]]


def storage_url(url: str | None, folder: Path) -> str:
    """``url`` as given (a database URL such as ``sqlite:///...`` or ``postgresql://...``, or the path of an Optuna
    journal file for many drivers on a shared filesystem), by default ``study.db`` in the study folder."""
    return url or f"sqlite:///{folder.resolve() / STORAGE_FILE}"


def open_storage(url: str | None, folder: Path) -> optuna.storages.BaseStorage:
    """Optuna's storage of the study in ``folder`` (``storage_url``)."""
    url = storage_url(url, folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if "://" in url:
            return optuna.storages.RDBStorage(url)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(url)))
    except Exception as error:  # noqa: BLE001 - SQLAlchemy's, a driver's or the filesystem's: one sentence for all
        raise ConfigError(f"hydra.sweeper.storage={url!r} cannot be opened ({str(error).splitlines()[0]}); give a "
                          f"database URL such as sqlite:///study.db or the path of a journal file.") from None


def write_study_record(folder: Path, preset: StudyPreset, url: str | None) -> None:
    """``study.json``: the study's name, storage, metric and methods (the report reads the rest from the storage)."""
    record = {"name": preset.name, "storage": storage_url(url, folder), "metric": preset.metric,
              "direction": preset.direction, "n_draws": preset.n_draws, "seeds": list(preset.seeds),
              "sampler": preset.sampler, "seed": preset.seed,
              "methods": {method: preset.definition(method) for method in preset.methods}}
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / RECORD_FILE, json.dumps(record, indent=2) + "\n")


def draw_folder(method: str, number: int) -> str:
    return f"{method}/draw_{number:03d}"


def seed_folder(method: str, number: int, seed: int) -> str:
    return f"{method}/draw_{number:03d}_seed_{seed}"


@dataclass(frozen=True)
class Outcome:
    kind: str  # finished, diverged, failed, or stopped (preempted: the trial stays RUNNING)
    value: float | None = None
    sentence: str = ""


def read_outcome(run: Path, metric: str, since: float, escaped: BaseException | None) -> Outcome:
    """How the run in ``run`` (started at ``since``) ended, from its folder: its error sentence, else its record."""
    directory = RunDirectory(run)
    error = directory.read_error() if directory.error_file.is_file() and \
        directory.error_file.stat().st_mtime >= since else None
    if error is not None:
        kind, sentence = error
        return Outcome("diverged" if kind == TrainingDivergedError.__name__ else "failed", sentence=sentence)
    if escaped is not None:
        return Outcome("failed", sentence=f"{type(escaped).__name__}: {escaped}")
    record = directory.read_record() if directory.record_file.is_file() else {}
    if record.get("status") != "finished":
        return Outcome("stopped", sentence=f"its record says {record.get('status', 'nothing')}")
    values = record.get("final_metrics") or {}
    if metric not in values:
        return Outcome("failed", sentence=f"the run logged no {metric}; its metrics: "
                                          f"{', '.join(values) or 'none'}")
    if not math.isfinite(values[metric]):
        return Outcome("diverged", sentence=f"{metric} = {values[metric]}")
    return Outcome("finished", float(values[metric]))


@dataclass
class Job:
    method: str
    study: optuna.Study
    number: int  # the trial's number in ``study``
    params: dict
    folder: str  # under the study folder
    seed: int | None = None  # a best draw's re-run

    def overrides(self, preset: StudyPreset) -> list[str]:
        draw = {key: value for key, value in self.params.items() if key != SEED_KEY}
        seed = [f"{SEED_KEY}={self.seed}"] if self.seed is not None else []
        return [*preset.job_overrides(self.method, draw), *seed, f"hydra.sweep.subdir={self.folder}"]


@dataclass
class StudyDriver:
    preset: StudyPreset
    folder: Path
    storage: optuna.storages.BaseStorage
    launch: Launch
    batch: int = 1  # runs launched together (the launcher runs them in parallel if it can)
    log: Callable[[str], None] = print
    url: str | None = None  # the storage's URL as configured (None: the default), for study.json
    stopped: str = ""  # why the driver stopped before the end
    _lock: object = field(default=None, repr=False)

    def study(self, method: str, seeds: bool = False) -> optuna.Study:
        """The Optuna study of ``method``'s draws, or of its best draws' re-runs with the study's seeds."""
        name = f"{self.preset.name}/{method}" + ("/seeds" if seeds else "")
        study = optuna.create_study(study_name=name, storage=self.storage, direction=self.preset.direction,
                                    sampler=make_sampler(self.preset.sampler, self.preset.seed, method),
                                    load_if_exists=True)
        definition = self.preset.definition(method)
        stored = study.user_attrs.get("definition")
        if stored is None:
            study.set_user_attr("definition", definition)
        elif json.dumps(stored, sort_keys=True) != json.dumps(definition, sort_keys=True):
            changed = sorted(key for key in definition if stored.get(key) != definition[key])
            raise ConfigError(f"The study {self.preset.name} in {self.folder} drew {method}'s runs with other "
                              f"settings ({', '.join(changed)} differ); only n_draws and seeds may change when a "
                              f"study continues: restore them, or start anew in another folder "
                              f"(hydra.sweep.dir=...).")
        return study

    def run(self) -> bool:
        """Run what the study still lacks; True when it is complete."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # its line per study created is noise in our console
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._holding_lock():
            draws = {method: self.study(method) for method in self.preset.methods}
            write_study_record(self.folder, self.preset, self.url)
            self._run_jobs(self._draw_jobs(draws))
            if self.stopped:
                return False
            reruns = {method: self.study(method, seeds=True) for method in self.preset.methods}
            self._run_jobs(self._seed_jobs(draws, reruns))
            return not self.stopped

    @contextlib.contextmanager
    def _holding_lock(self) -> Iterator[None]:
        # the lock ends with the process however it ends, so a RUNNING trial seen while holding it is a dead one's
        with open(self.folder / LOCK_FILE, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "another process"
                raise ConfigError(f"The study {self.preset.name} in {self.folder} is being run by {holder}; wait "
                                  f"for it to end, or stop it, before running it again.") from None
            lock.truncate(0)
            lock.write(f"process {os.getpid()} on {socket.gethostname()}\n")
            lock.flush()
            yield

    def _draw_jobs(self, draws: dict[str, optuna.Study]) -> Iterator[Job]:
        """Each method's missing draws, the methods taking turns: first the trials a dead driver left RUNNING, then
        new ones from the sampler (draw 0: the method's own setting)."""
        queues = {}
        for method, study in draws.items():
            trials = study.get_trials(deepcopy=False)
            dead = [trial for trial in trials if trial.state == TrialState.RUNNING]
            done = sum(trial.state in RESULTS for trial in trials)
            queues[method] = (deque(dead), max(self.preset.n_draws - done - len(dead), 0))
        while any(dead or new for dead, new in queues.values()):
            for method, (dead, new) in list(queues.items()):
                if dead:
                    trial = dead.popleft()
                    yield Job(method, draws[method], trial.number, dict(trial.params),
                              draw_folder(method, trial.number))
                elif new:
                    queues[method] = (dead, new - 1)
                    entry = self.preset.methods[method]
                    trial = ask(draws[method], entry.parameters, entry.published)
                    yield Job(method, draws[method], trial.number, dict(trial.params),
                              draw_folder(method, trial.number))

    def _seed_jobs(self, draws: dict[str, optuna.Study], reruns: dict[str, optuna.Study]) -> Iterator[Job]:
        """The re-runs of each method's best draw with the study's seeds that are not done yet."""
        for method, study in draws.items():
            best = best_draw(study.get_trials(deepcopy=False), self.preset.direction == "minimize")
            if best is None:
                if self.preset.seeds:
                    self.log(f"study {self.preset.name}: no draw of {method} finished, so none is re-run with seeds.")
                continue
            trials = [trial for trial in reruns[method].get_trials(deepcopy=False)
                      if trial.user_attrs.get("draw") == best.number]
            for seed in self.preset.seeds:
                mine = {trial.state: trial for trial in trials if trial.user_attrs.get(SEED_KEY) == seed}
                if any(state in mine for state in RESULTS):
                    continue
                if TrialState.RUNNING in mine:
                    number = mine[TrialState.RUNNING].number
                else:  # a re-run enqueued by a driver that died before starting it is asked for, not enqueued again
                    if TrialState.WAITING not in mine:
                        reruns[method].enqueue_trial({**best.params, SEED_KEY: seed},
                                                     user_attrs={"draw": best.number, SEED_KEY: seed})
                    distributions = {**best.distributions,
                                     SEED_KEY: optuna.distributions.IntDistribution(0, 2**31 - 1)}
                    number = reruns[method].ask(distributions).number
                yield Job(method, reruns[method], number, {**best.params, SEED_KEY: seed},
                          seed_folder(method, best.number, seed), seed)

    def _run_jobs(self, jobs: Iterator[Job]) -> None:
        while not self.stopped:
            batch = [job for _, job in zip(range(self.batch), jobs)]
            if not batch:
                return
            started = time.time() - 1  # file times may be coarser than the clock
            escaped = self.launch([job.overrides(self.preset) for job in batch])
            for job, error in zip(batch, escaped):
                self._tell(job, read_outcome(self.folder / job.folder, self.preset.metric, started, error))

    def _tell(self, job: Job, outcome: Outcome) -> None:
        minimize = self.preset.direction == "minimize"
        if outcome.kind == "finished":
            job.study.tell(job.number, outcome.value)
        elif outcome.kind == "diverged":
            job.study.tell(job.number, worst(minimize))
        elif outcome.kind == "failed":
            job.study.tell(job.number, state=TrialState.FAIL)
        else:
            self.stopped = f"{job.folder} stopped before its end ({outcome.sentence})"
            return
        if outcome.kind != "finished":
            self.log(f"study {self.preset.name}: {job.folder} {outcome.kind}: {outcome.sentence}")


def best_draw(trials: Sequence[FrozenTrial], minimize: bool) -> FrozenTrial | None:
    """The finished draw with the best value (the lowest number among equals), None when none finished."""
    finished = [trial for trial in trials if trial.state == TrialState.COMPLETE and math.isfinite(trial.value)]
    if not finished:
        return None
    return min(finished, key=lambda trial: ((trial.value if minimize else -trial.value), trial.number))


def progress(preset: StudyPreset, storage: optuna.storages.BaseStorage) -> str:
    """One line per method: its results so far (of n_draws) and its best value."""
    lines = []
    names = {summary.study_name for summary in optuna.get_all_study_summaries(storage)}
    for method in preset.methods:
        name = f"{preset.name}/{method}"
        trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False) \
            if name in names else []
        results = [trial for trial in trials if trial.state in RESULTS]
        best = best_draw(trials, preset.direction == "minimize")
        diverged = sum(trial.state == TrialState.COMPLETE and not math.isfinite(trial.value) for trial in results)
        failed = sum(trial.state == TrialState.FAIL for trial in results)
        lines.append(f"  {method}: {len(results)} of {counted(preset.n_draws, 'draw')}"
                     + (f", best {preset.metric} {best.value:.6g} (draw {best.number})" if best else "")
                     + (f", {diverged} diverged" if diverged else "") + (f", {failed} failed" if failed else ""))
    return "\n".join(lines)
