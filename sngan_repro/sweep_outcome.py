"""The end of a sweep (``-m``): one line per run (its overrides, how it ended, its last metric values), which runs
failed, and an exit code that says whether the sweep did its job.

A run that fails inside a sweep writes its sentence to ``error.txt`` in its directory, and the sweep goes on (one
bad setting must not stop a weekend's sweep); Hydra itself would then end with exit code 0 whatever happened. This
Hydra callback reads the runs' directories once the sweep is over (also those a cluster launcher filled) and names
the failed runs in one sentence. A run that diverged is a result of the sweep (Miyato et al. 2018, Sec. 4.1, sweep
optimizer settings to find those that fail), so it only gets named; a run that could not do what it was asked
(an invalid value, a missing dataset, a full disk) makes the sweep's exit code 2.
"""

import json
import sys
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from .console import counted
from .errors import TrainingDivergedError
from .run_directory import ERROR_FILE, STUDY_RECORD, RunDirectory


def job_line(run: Path, error: str | None, label: str) -> str:
    """One line of a sweep's end: the run's folder, its overrides, how it ended and its last metric values."""
    directory = RunDirectory(run)
    overrides = " ".join(OmegaConf.load(directory.overrides_file)) if directory.overrides_file.is_file() else ""
    record = directory.read_record()
    if error is not None:
        outcome = f"failed: {error}"
    else:
        values = ", ".join(f"{name} {value:.6g}" for name, value in record.get("final_metrics", {}).items())
        outcome = f"{record.get('status', 'no record')} at {record.get('g_step', '?')} updates" + (
            f"; {values}" if values else "")
    return f"{label} [{overrides}]: {outcome}"


def _folders(folder: Path) -> list[Path]:
    return [path for path in folder.iterdir() if path.is_dir() and not path.name.startswith(".")]


def sweep_runs(folder: Path) -> list[Path]:
    """The run directories of a sweep: its job folders, or a study's (one level deeper: <method>/draw_<n>)."""
    if (folder / STUDY_RECORD).is_file():  # its methods' folders (not e.g. its report/)
        methods = json.loads((folder / STUDY_RECORD).read_text())["methods"]
        return sorted(run for method in methods if (folder / method).is_dir() for run in _folders(folder / method))
    return sorted(_folders(folder))


class SweepOutcome(Callback):
    def __init__(self) -> None:
        self.started = time.time()

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self.started = time.time()  # error files older than this are an earlier sweep's in the same folder

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        folder = Path(config.hydra.sweep.dir)
        runs = sweep_runs(folder)
        error_files = {run: RunDirectory(run).error_file for run in runs}
        errors = {run: file.read_text().strip() for run, file in error_files.items()
                  if file.is_file() and file.stat().st_mtime >= self.started}
        print(f"sngan-repro: sweep of {counted(len(runs), 'run')} in {folder}", flush=True)
        for run in runs:
            print(f"  {job_line(run, errors.get(run), str(run.relative_to(folder)))}", flush=True)
        if not errors:
            return
        diverged = TrainingDivergedError.__name__ + ":"
        unmet = {run: text for run, text in errors.items() if not text.startswith(diverged)}
        names = ", ".join(str(run.relative_to(folder)) for run in errors)
        first = next(iter((unmet or errors).values()))
        print(f"{'error' if unmet else 'note'}: {len(errors)} of the sweep's {counted(len(runs), 'run')} failed "
              f"({names} in {folder}; {len(unmet)} not by diverging; first: {first.rstrip('.')}); each run's "
              f"{ERROR_FILE} says why, and the others' results stand.", file=sys.stderr)
        if unmet:
            sys.exit(2)
