"""Experiment trackers beside TensorBoard (sngan_repro/trackers.py, conf/logger/): W&B offline and MLflow's SQLite
store with the real libraries, read back and held against TensorBoard's events of the same run; a resumed run
continues the same tracker runs; a sweep's runs are one group; a tracker that is not installed, or a store that
lost the run, is refused in one sentence."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
from conftest import tiny_run_overrides
from helpers.trackers import (
    csv_scalars,
    mlflow_scalars,
    tensorboard_events,
    tensorboard_scalars,
    wandb_offline_run,
)
from mlflow.tracking import MlflowClient
from PIL import Image

from sngan_repro import compose, trackers
from sngan_repro.errors import ConfigError
from sngan_repro.run_directory import RunDirectory
from sngan_repro.train import run

TINY = ("train.log_every=5", "train.sample_every=5", "train.checkpoint_every=5")


def tracked_run_overrides(output: Path, steps: int, *extra: str) -> list[str]:
    return tiny_run_overrides(output, steps, *TINY, *extra)


def _as_float32(series):
    """TensorBoard keeps float32: the other trackers' values compared at that precision, steps exactly."""
    return [(step, np.float32(value)) for step, value in series]


class StatusWhileTraining(pl.Callback):
    """The status of the recorded MLflow run once training has started."""

    def __init__(self, recorded: dict):
        self.recorded, self.status = recorded, None

    def on_train_start(self, trainer, pl_module) -> None:
        self.status = MlflowClient(self.recorded["tracking_uri"]).get_run(self.recorded["run_id"]).info.status


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _wandb_runs(folder: Path, run_id: str) -> list[dict]:
    return [wandb_offline_run(session) for session in sorted((folder / "wandb").glob(f"offline-run-*-{run_id}"))]


@pytest.mark.slow
def test_every_tracker_holds_the_runs_scalars_and_samples_and_a_resume_continues_the_same_tracker_runs(tmp_path):
    output = tmp_path / "run"
    run(compose(tracked_run_overrides(output, 10, "logger=many")))
    first = RunDirectory(output).read_record()["trackers"]
    first_status = MlflowClient(first["mlflow"]["tracking_uri"]).get_run(first["mlflow"]["run_id"]).info.status
    status_while_training = StatusWhileTraining(first["mlflow"])
    # continues from its own last.ckpt
    run(compose(tracked_run_overrides(output, 20, "logger=many")), callbacks=[status_while_training])
    assert (first_status, status_while_training.status) == ("FINISHED", "RUNNING")  # the continued run is running
    record = RunDirectory(output).read_record()
    assert len(record["sessions"]) == 2
    assert record["trackers"]["wandb"]["id"] == first["wandb"]["id"]
    assert record["trackers"]["mlflow"]["run_id"] == first["mlflow"]["run_id"]

    tensorboard = tensorboard_scalars(output / "tensorboard")
    assert [step for step, _ in tensorboard["loss/d"]] == [5, 10, 15, 20]
    sample_steps = [event.step for event in tensorboard_events(output / "tensorboard").Images("samples/fixed_z")]
    assert sample_steps == [0, 5, 10, 15, 20]

    # W&B: one offline folder per session, both of the recorded run id
    sessions = _wandb_runs(output, first["wandb"]["id"])
    assert len(sessions) == 2 and {session["id"] for session in sessions} == {first["wandb"]["id"]}
    history = [row for session in sessions for row in session["history"]]
    for name, series in tensorboard.items():
        logged = [(row["trainer/global_step"], row[name]) for row in history if name in row]
        assert _as_float32(logged) == _as_float32(series), name
    grids = [(row["trainer/global_step"], session["folder"] / "files" / row["samples/fixed_z/filenames"][0])
             for session in sessions for row in session["history"]
             if row.get("samples/fixed_z/_type") == "images/separated"]
    assert [step for step, _ in grids] == sample_steps
    for step, path in grids:  # the same grid as the run's own PNG, pixel for pixel
        assert np.array_equal(_pixels(path), _pixels(output / "samples" / f"g_step_{step:07d}.png")), step
    config = sessions[-1]["config"]
    assert (config["norm"], config["dataset"], config["run/directory"]) == ("sn", "digits", str(output))

    # MLflow: one run in the store beside the run, holding every scalar TensorBoard holds
    client = MlflowClient(record["trackers"]["mlflow"]["tracking_uri"])
    assert record["trackers"]["mlflow"]["tracking_uri"] == f"sqlite:///{output}/mlflow.db"
    (mlflow_run,) = client.search_runs([record["trackers"]["mlflow"]["experiment_id"]])
    assert mlflow_run.info.run_id == first["mlflow"]["run_id"] and mlflow_run.info.status == "FINISHED"
    stored = mlflow_scalars(client, mlflow_run.info.run_id, tensorboard)
    assert {name: _as_float32(series) for name, series in stored.items()} == \
           {name: _as_float32(series) for name, series in tensorboard.items()}
    assert mlflow_run.data.params["norm"] == "sn" and mlflow_run.data.tags["run/directory"] == str(output)
    images = sorted(Path(client.download_artifacts(mlflow_run.info.run_id, "images")).glob("samples~fixed_z+*.png"))
    by_step = {int(path.name.split("+step+")[1].split("+")[0]): path for path in images}  # MLflow's file names
    assert sorted(by_step) == sample_steps
    for step, path in by_step.items():
        assert np.array_equal(_pixels(path), _pixels(output / "samples" / f"g_step_{step:07d}.png")), step

    # CSV: one folder per session, nothing of the first lost
    files = sorted((output / "csv").glob("version_*/metrics.csv"))
    assert len(files) == 2
    assert _as_float32(csv_scalars(files)["loss/d"]) == _as_float32(tensorboard["loss/d"])


@pytest.mark.slow
def test_a_sweep_gives_each_job_its_own_tracker_runs_in_one_group(tmp_path):
    sweep = tmp_path / "sweep"
    overrides = [o for o in tiny_run_overrides(tmp_path, 2, "logger=[wandb,mlflow]") if not o.startswith("paths.")]
    result = subprocess.run([sys.executable, "-m", "sngan_repro.train", "-m", *overrides, "seed=0,1",
                             f"hydra.sweep.dir={sweep}"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [RunDirectory(sweep / job).read_record()["trackers"] for job in ("0", "1")]
    wandb_runs = [_wandb_runs(sweep / job, record["wandb"]["id"]) for job, record in zip(("0", "1"), records)]
    assert [len(runs) for runs in wandb_runs] == [1, 1]
    assert wandb_runs[0][0]["id"] != wandb_runs[1][0]["id"]  # the second job did not log into the first's run
    assert wandb_runs[0][0]["group"] == wandb_runs[1][0]["group"] == "sweep"  # relative to the sweep's cwd
    assert [run["config"]["seed"] for run in (wandb_runs[0][0], wandb_runs[1][0])] == [0, 1]

    client = MlflowClient(f"sqlite:///{sweep}/mlflow.db")  # one store for the sweep
    assert {record["mlflow"]["tracking_uri"] for record in records} == {client.tracking_uri}
    stored = client.search_runs([records[0]["mlflow"]["experiment_id"]])
    assert sorted(run.info.run_id for run in stored) == sorted(record["mlflow"]["run_id"] for record in records)
    assert {run.data.tags["run/group"] for run in stored} == {"sweep"}


def test_a_tracker_that_is_not_installed_is_refused_with_its_install_command(tmp_path, monkeypatch):
    cfg = compose(tracked_run_overrides(tmp_path / "run", 2, "logger=[tensorboard,mlflow]"))
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` meets when it is not installed
    with pytest.raises(ConfigError, match=r"^logger\.mlflow needs the mlflow package, which is not installed: "
                                          r"pip install -e '\.\[mlflow\]'\.$"):
        trackers.build_loggers(cfg)


def test_a_continued_run_whose_mlflow_store_lacks_its_run_is_refused_naming_the_recorded_store(tmp_path):
    cfg = compose(tracked_run_overrides(tmp_path / "run", 2, "logger=mlflow"))
    recorded = {"mlflow": {"run_id": "0123456789abcdef", "tracking_uri": "sqlite:////elsewhere/mlflow.db"}}
    with pytest.raises(ConfigError, match=r"MLflow run 0123456789abcdef \(run\.json\) is not in the tracking store "
                                          r".*; set it to sqlite:////elsewhere/mlflow\.db to continue that run\.$"):
        trackers.build_loggers(cfg, recorded)


def test_a_logger_without_a_target_is_refused_in_one_sentence(tmp_path):
    cfg = compose(tracked_run_overrides(tmp_path / "run", 2, "+logger.mine={save_dir: x}"))
    with pytest.raises(ConfigError, match=r"^logger\.mine has no _target_"):
        trackers.build_loggers(cfg)


@pytest.mark.parametrize(("mode", "project", "credentials", "environment_mode", "expected"), [
    ("auto", None, False, None, "offline"),
    ("auto", "gans", False, None, "offline"),   # a project but not logged in
    ("auto", None, True, None, "offline"),      # logged in but no project configured
    ("auto", "gans", True, None, "online"),
    ("auto", "gans", True, "disabled", None),  # $WANDB_MODE decides auto: W&B reads it
    ("offline", "gans", True, None, "offline"),
    ("online", None, False, None, "online"),
])
def test_wandb_is_offline_unless_a_project_is_configured_and_credentials_are_at_hand(
        mode, project, credentials, environment_mode, expected, tmp_path, monkeypatch):
    for variable in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL", "WANDB_MODE"):
        monkeypatch.delenv(variable, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password 0123456789\n" if credentials else "")
    monkeypatch.setenv("NETRC", str(netrc))
    if environment_mode:
        monkeypatch.setenv("WANDB_MODE", environment_mode)
    assert trackers.wandb_mode(mode, project) == expected


def test_an_unknown_wandb_mode_is_refused_naming_the_modes():
    with pytest.raises(ConfigError, match=r"^logger\.wandb\.mode='cloud' is not a W&B mode; use one of auto, online, "
                                          r"offline, disabled\.$"):
        trackers.wandb_mode("cloud", None)


@pytest.mark.slow
def test_parallel_jobs_sharing_a_new_mlflow_store_create_it_and_its_experiment_once(tmp_path):
    """A sweep's parallel jobs (hydra/launcher=local) all open the sweep's new store at their start."""
    cfg = compose(tracked_run_overrides(tmp_path / "run", 2, "logger=mlflow"))
    uri = f"sqlite:///{tmp_path / 'sweep' / 'mlflow.db'}"
    node = json.dumps({**{key: cfg.logger.mlflow[key] for key in ("experiment_name", "artifact_location")},
                       "tracking_uri": uri})
    script = ("import json, sys; from omegaconf import OmegaConf; from sngan_repro.trackers import MLflow; "
              "MLflow().build_arguments(OmegaConf.create(json.loads(sys.argv[1])), {})")
    jobs = [subprocess.Popen([sys.executable, "-c", script, node], stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    errors = [job.communicate(timeout=300)[1] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], errors
    assert [experiment.name for experiment in MlflowClient(uri).search_experiments()] == ["sngan-repro", "Default"]
