"""The run directory: the one place that knows its layout and reads and writes its record.

``python -m sngan_repro.train`` writes into ``paths.output_dir``:

- ``config.yaml``: the composed config the run trained with;
- ``run.json``: the record (how it was started, from which source and library versions, on which devices, how
  each session ended; see ``callbacks/run_record.py``);
- ``error.txt``: the sentence of an error that refused or stopped it, as ``ErrorClass: sentence``;
- ``checkpoints/``: ``g_step_<n>.ckpt`` every ``train.checkpoint_every`` updates, ``best-g_step_<n>.ckpt`` and
  ``last.ckpt`` (which a run of the same directory resumes from); no name holds ``=``, so a checkpoint's path can be
  pasted unquoted into an override (``ckpt=...``); earlier versions wrote ``g_step=<n>.ckpt``, still found and loaded;
- ``samples/``, ``tensorboard/``, ``evaluation/`` (``python -m sngan_repro.evaluate``'s documents) and Hydra's
  ``.hydra/overrides.yaml``;
- with other trackers (``trackers.py``): ``wandb/``, ``csv/``, and MLflow's ``mlflow.db`` and ``mlflow-artifacts/``
  (a sweep's are in the sweep's folder).

``conf/`` names the same folders (``callbacks.checkpoint.dirpath``, ``callbacks.samples.directory``,
``logger.tensorboard.name``); a test holds them equal to these names.
"""

import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from importlib import import_module, metadata
from pathlib import Path

from .errors import ConfigError

CONFIG_FILE = "config.yaml"
RECORD_FILE = "run.json"
ERROR_FILE = "error.txt"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
# Lightning's ModelCheckpoint filename templates (the ``g_step`` of the checkpoint, zero-padded to sort)
CHECKPOINT_TEMPLATE = "g_step_{g_step:07d}"
BEST_CHECKPOINT_TEMPLATE = "best-" + CHECKPOINT_TEMPLATE
# the numbered checkpoints' names, and those of earlier versions (g_step=<n>.ckpt, which Hydra cannot parse unquoted)
NUMBERED_CHECKPOINTS = re.compile(r"g_step[_=](\d+)\.ckpt")
SAMPLES = "samples"
SAMPLE_GRID_TEMPLATE = "g_step_{g_step:07d}.png"  # the fixed-z sample grid after g_step generator updates
SAMPLE_GRIDS = re.compile(r"g_step_(\d+)\.png")
TENSORBOARD = "tensorboard"
EVALUATION = "evaluation"
EXPORTS = "exports"  # python -m sngan_repro.sample's default output: <checkpoint>_<n>.npz and its record
HYDRA_FOLDER = ".hydra"  # Hydra's own record of the job (config, overrides)
HYDRA_OVERRIDES = HYDRA_FOLDER + "/overrides.yaml"
#: any of these marks a folder as a run directory (a refused run may hold only its error file)
MARKERS = (CONFIG_FILE, RECORD_FILE, ERROR_FILE, HYDRA_OVERRIDES)
STUDY_RECORD = "study.json"  # in a study's folder, whose runs are <method>/<draw>/ (sngan_repro.study.driver)

GIT_TIMEOUT_SECONDS = 10
# distribution name -> module whose __version__ is recorded instead of the distribution's metadata: torch's
# and torchvision's carry the build tag (e.g. +cu121, +cpu) that their metadata may lack
DISTRIBUTIONS = {"torch": "torch", "torchvision": "torchvision", "pytorch-lightning": None, "hydra-core": None,
                 "omegaconf": None, "numpy": None, "scipy": None, "torch-fidelity": None, "sngan-repro": None}


# the folders this process created as a run or sweep directory, and the parents created for them: a run refused
# before it started removes what it created (``RunDirectory.remove_if_unstarted``)
_created_folders: set[Path] = set()


def record_created(*folders: Path) -> None:
    _created_folders.update(Path(folder).resolve() for folder in folders)


class RunDirectory:
    """The files of one run directory, by what they are."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> "RunDirectory":
        """The run directory a checkpoint was written into (``<run>/checkpoints/<file>.ckpt``)."""
        return cls(Path(checkpoint).resolve().parent.parent)

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def record_file(self) -> Path:
        return self.path / RECORD_FILE

    @property
    def error_file(self) -> Path:
        return self.path / ERROR_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def samples(self) -> Path:
        return self.path / SAMPLES

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def evaluation(self) -> Path:
        return self.path / EVALUATION

    @property
    def exports(self) -> Path:
        return self.path / EXPORTS

    @property
    def overrides_file(self) -> Path:
        return self.path / HYDRA_OVERRIDES

    def is_run(self) -> bool:
        return any((self.path / marker).exists() for marker in MARKERS)

    def remove_if_unstarted(self) -> bool:
        """Remove this directory, and the parents created for it, if this process created it and it holds nothing but
        what a run writes before it starts (Hydra's files and job log, ``config.yaml``); whether it did."""
        path = self.path.resolve()
        unstarted = all(entry.name in (HYDRA_FOLDER, CONFIG_FILE) or entry.suffix == ".log" for entry in path.iterdir())
        if path not in _created_folders or not unstarted:
            return False
        shutil.rmtree(path)
        for parent in path.parents:  # e.g. outputs/<date>/ made for this run, unless another run wrote there since
            if parent not in _created_folders or any(parent.iterdir()):
                break
            parent.rmdir()
        return True

    def last_checkpoint(self) -> Path | None:
        """``checkpoints/last.ckpt``, the state a run of this directory continues from, if it was written."""
        last = self.checkpoints / LAST_CHECKPOINT
        return last if last.is_file() else None

    def latest_checkpoint(self) -> Path | None:
        """``last.ckpt``, else the numbered checkpoint of the highest generator step."""
        return self.last_checkpoint() or _highest_numbered(self.checkpoints, NUMBERED_CHECKPOINTS)

    def last_sample_grid(self) -> Path | None:
        """The fixed-z sample grid of the highest generator step, if any was written."""
        return _highest_numbered(self.samples, SAMPLE_GRIDS)

    # -- the record --------------------------------------------------------------------------------------------
    def read_record(self) -> dict:
        """``run.json`` ({} when there is none); a damaged one raises ``json.JSONDecodeError``."""
        return json.loads(self.record_file.read_text()) if self.record_file.is_file() else {}

    def write_record(self, record: dict) -> None:
        """Write ``run.json`` whole or not at all (a reader never sees half a file)."""
        write_atomically(self.record_file, json.dumps(record, indent=2) + "\n")

    def update_record(self, **fields) -> dict:
        """Set top-level ``fields`` of ``run.json`` (read, change, write atomically); the new record."""
        record = {**self.read_record(), **fields}
        self.write_record(record)
        return record

    def write_config(self, config_yaml: str) -> None:
        write_atomically(self.config_file, config_yaml)

    # -- the error that refused or stopped the run ------------------------------------------------------------
    def write_error(self, error: BaseException) -> None:
        """``error.txt``: ``ErrorClass: sentence`` (raises OSError when it cannot be written, e.g. a full disk)."""
        self.error_file.write_text(f"{type(error).__name__}: {error}\n")

    def read_error(self) -> tuple[str, str] | None:
        """(error class name, sentence) of ``error.txt``, None when there is none."""
        if not self.error_file.is_file():
            return None
        text = self.error_file.read_text().strip()
        kind, separator, sentence = text.partition(": ")
        return (kind, sentence) if separator and kind.isidentifier() else ("", text)


def _highest_numbered(folder: Path, names: re.Pattern) -> Path | None:
    """The file of ``folder`` whose name ``names`` matches with the highest number (its first group)."""
    numbered = {int(match[1]): path for path in folder.glob("*") if (match := names.fullmatch(path.name))}
    return numbered[max(numbered)] if numbered else None


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` beside ``path`` and rename it over ``path`` (a rename within a directory is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def check_folders_writable(folders: dict[str, str]) -> None:
    """Each folder, named by the config field that sets it, exists or can be created and takes a new file: checked
    before any heavy work, so that hours of training or evaluation are not lost at the first write."""
    for field, folder in folders.items():
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            why = "it is a file" if Path(folder).is_file() else error.strerror or type(error).__name__
            raise ConfigError(f"The folder {folder} ({field}) cannot be written ({why}); set {field} to a location "
                              f"this user can write.") from None


# -- where a result came from: written into run.json and into evaluate's documents --------------------------------
def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def source_dir() -> Path:
    """The folder holding the ``sngan_repro`` package (the repository root of a source checkout)."""
    return Path(__file__).resolve().parents[1]


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


def versions() -> dict[str, str | None]:
    """Python's and the libraries' versions (None: not installed)."""
    return {"python": platform.python_version(),
            **{name: _version(name, module) for name, module in DISTRIBUTIONS.items()}}
