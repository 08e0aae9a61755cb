"""A new user's first hour, through the real command line: checkpoint paths paste into overrides, the summary's
commands work as printed (training on continues in the same run directory), refusals are one sentence and leave no
folder, an offline sweep stops once before its first run, evaluate measures what the run measured."""

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_run_overrides
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sngan_repro.run_directory import RunDirectory

# the tiny digits run of the other tests, with the digits metrics on a small sample and Hydra choosing the run
# directory (no paths.output_dir)
BASE = [override for override in tiny_run_overrides(Path("unused"), 4) if not override.startswith("paths.output_dir")
        and override != "metrics=none"] + ["train.log_every=2", "train.checkpoint_every=2", "train.sample_every=2"]
TINY = [*BASE, "metrics=digits", "metrics.measures.digits.every=4", "metrics.measures.digits.fid.samples=300",
        "metrics.measures.digits.inception_score.samples=300", "metrics.measures.digits.batch_size=100"]
CIFAR10_MISSING = ["dataset=cifar10", "dataset.image_size=32", "dataset.download=false", "metrics=none"]


def command(name: str, *arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"sngan_repro.{name}", *arguments], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def refused(result: subprocess.CompletedProcess) -> str:
    """The one sentence a refusal prints, checked to be all it printed."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: "), result.stderr[-3000:]
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr.strip()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """A 4-update digits run in <tmp>/run (hydra.run.dir) and its console output."""
    folder = tmp_path_factory.mktemp("first_hour")
    result = command("train", *TINY, f"hydra.run.dir={folder / 'run'}", cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "run", result.stdout


def _next_commands(out: str) -> list[list[str]]:
    return [shlex.split(line) for line in out[out.index("next: "):].splitlines()[1:]]


def _steps(run: Path, tag: str) -> list[int]:
    return [event.step for event in EventAccumulator(str(run / "tensorboard")).Reload().Scalars(tag)]


@pytest.mark.slow
def test_the_summarys_commands_work_as_printed_and_training_on_stays_in_the_run(trained):
    run, out = trained
    folder = run.parent
    tensorboard, evaluate, train_on = _next_commands(out)
    assert evaluate[3:] == [f"ckpt={run / 'checkpoints' / 'last.ckpt'}"]  # the run's own metrics, no preset named
    result = subprocess.run(evaluate, cwd=folder, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads((run / "evaluation" / "last_digits.json").read_text())
    assert document["metrics_preset"] == "digits" and "digits_fid/300_vs_train1797" in document["results"]

    assert train_on[-2:] == [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "train.steps=8"]
    result = subprocess.run(train_on, cwd=folder, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"  run directory   {run}\n" in result.stdout and "dirpath has changed" not in result.stderr
    assert not (folder / "outputs").exists()  # no second folder for the same training
    assert _steps(run, "loss/d") == [2, 4, 6, 8]  # one step axis across both sessions
    assert _steps(run, "digits_fid/300_vs_train1797") == [0, 4, 8]
    record = RunDirectory(run).read_record()
    assert [session["g_step_at_start"] for session in record["sessions"]] == [0, 4]
    assert record["status"] == "finished" and record["g_step"] == 8

    again = subprocess.run(train_on, cwd=folder, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.startswith("sngan-repro: already finished: its checkpoint is at 8 generator updates and "
                                   "train.steps=8 (nothing to train; raise train.steps to train on)")
    assert "digits_fid/300_vs_train1797" in again.stdout  # the run's last values, from its record
    assert RunDirectory(run).read_record() == record  # nothing recorded for a session that did nothing


@pytest.mark.slow
def test_checkpoint_paths_paste_into_overrides_and_earlier_names_get_the_quoting(trained, tmp_path):
    run, _ = trained
    names = {path.name for path in (run / "checkpoints").iterdir()}  # (and 6, 8 once trained on)
    assert {"g_step_0000002.ckpt", "g_step_0000004.ckpt", "last.ckpt"} <= names
    assert not any("=" in name for name in names)
    pasted = command("evaluate", f"ckpt={run / 'checkpoints' / 'g_step_0000002.ckpt'}",
                     f"output={tmp_path / 'pasted.json'}", cwd=tmp_path)
    assert pasted.returncode == 0, pasted.stderr[-3000:]
    assert json.loads((tmp_path / "pasted.json").read_text())["g_step"] == 2

    earlier = tmp_path / "earlier" / "checkpoints" / "g_step=0000002.ckpt"  # an earlier version's name
    earlier.parent.mkdir(parents=True)
    shutil.copy(run / "checkpoints" / "g_step_0000002.ckpt", earlier)
    assert RunDirectory(earlier.parent.parent).latest_checkpoint() == earlier
    assert refused(command("evaluate", f"ckpt={earlier}", cwd=tmp_path)) == (
        f"error: 'ckpt={earlier}' is not an override Hydra can read: its value holds '='; quote the value for Hydra "
        f"inside the shell's quotes: ckpt=\"'{earlier}'\".")
    quoted = command("evaluate", *shlex.split(f"ckpt=\"'{earlier}'\""), f"output={tmp_path / 'quoted.json'}",
                     cwd=tmp_path)
    assert quoted.returncode == 0, quoted.stderr[-3000:]


def test_a_missing_required_value_is_one_sentence_through_both_commands(tmp_path):
    assert refused(command("evaluate", cwd=tmp_path)) == (
        "error: Give exactly one of ckpt=<checkpoint> and images=<folder or .npz> to evaluate; got neither.")
    assert refused(command("sample", "n=3", cwd=tmp_path)) == (
        "error: ckpt must be given, e.g. ckpt=outputs/<date>/<time>/checkpoints/last.ckpt.")
    assert refused(command("train", "dataset=imagefolder", cwd=tmp_path)) == (
        "error: dataset.root must be given, e.g. dataset.root=/path/to/images.")
    assert not (tmp_path / "outputs").exists()


def test_a_comma_list_without_m_says_to_add_it(tmp_path):
    assert refused(command("train", "norm=sn,san", cwd=tmp_path)) == (
        "error: norm=sn,san lists several values: add -m (--multirun) to sweep them, or quote the value "
        "(key='a,b') to mean the text itself.")


@pytest.mark.slow
@pytest.mark.parametrize("overrides, sentence", [
    (["train.steps=abc"], "error: train.steps=abc must be a positive number of generator updates."),
    (["arch.width=0"], "error: arch.width=0 must be a positive number (the multiplier of every layer's channel "
                       "count)."),
    (["arch.latent_dim=0"], "error: arch.latent_dim=0 must be a positive integer (the length of the generator's code "
                            "z)."),
    ([*CIFAR10_MISSING, "paths.data_dir=nothing"], "error: CIFAR-10 was not found"),
])
def test_a_run_refused_before_it_starts_leaves_no_folder(tmp_path, overrides, sentence):
    sentence_printed = refused(command("train", *BASE, *overrides, cwd=tmp_path))
    assert sentence_printed.startswith(sentence), sentence_printed
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_an_offline_sweep_stops_once_before_its_first_run(tmp_path):
    result = command("train", "-m", *BASE, "optim=A,B,C", *CIFAR10_MISSING, f"paths.data_dir={tmp_path / 'nothing'}",
                     f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    sentence = refused(result)
    assert sentence.startswith(f"error: CIFAR-10 was not found (or is corrupt) in {tmp_path / 'nothing' / 'cifar10'}")
    assert sentence.endswith("offline, the embedded digits need no download (dataset=digits, as make demo runs); "
                             "none of the sweep's 3 runs was started.")
    assert not any(path.is_dir() for path in (tmp_path / "sweep").glob("*"))


@pytest.mark.slow
def test_a_run_without_quality_metrics_is_not_offered_an_evaluation(tmp_path):
    result = command("train", *BASE, "metrics=none", "train.steps=2", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    commands = _next_commands(result.stdout)
    assert [words[:3] for words in commands] == [[str(Path(sys.executable).with_name("tensorboard")), "--logdir",
                                                  str(tmp_path / "run" / "tensorboard")],
                                                 [sys.executable, "-m", "sngan_repro.train"]]
    assert refused(command("evaluate", f"ckpt={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}", cwd=tmp_path)
                   ).startswith("error: metrics=none computes nothing")
