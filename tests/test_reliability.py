"""Reliability: what a crash, a kill or a full disk while writing leaves behind."""

import datetime
import errno
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import tiny_run_overrides

from sngan_repro import compose
from sngan_repro.checkpointing import AtomicCheckpointIO, check_checkpoint
from sngan_repro.errors import DiskFullError, TrainingDivergedError
from sngan_repro.train import run


class NoTraining(pl.Callback):
    """Fails the test at the first training step: a refusal due before training must come before it."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        pytest.fail("trained")


def _fail_half_way(monkeypatch, should_fail):
    """torch.save as the checkpoint writer calls it, except that when ``should_fail(checkpoint)`` it writes half of
    the bytes and then hits a full disk (as a kill or a crash mid-write would leave the file)."""
    save = torch.save

    def failing_save(obj, file, *args, **kwargs):
        if not should_fail(obj):
            return save(obj, file, *args, **kwargs)
        file.write(b"PK\x03\x04" + b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("sngan_repro.checkpointing.torch.save", failing_save)


def test_a_write_that_fails_half_way_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path, io = tmp_path / "run" / "last.ckpt", AtomicCheckpointIO()
    io.save_checkpoint({"step": torch.tensor(1)}, path)
    _fail_half_way(monkeypatch, lambda checkpoint: True)
    with pytest.raises(DiskFullError, match=rf"^The disk filled up while writing the checkpoint {path}: the "
                                            rf"checkpoints written before stay; free space and resume with "
                                            rf"ckpt_path={path}\.$"):
        io.save_checkpoint({"step": torch.tensor(2)}, path)
    assert torch.load(path, weights_only=True)["step"].item() == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no staging file left behind


def test_a_run_whose_checkpoint_write_fails_keeps_the_last_good_one(tmp_path, monkeypatch):
    """Checkpoints every 2 updates; writing the one of update 4 fails half-way on a full disk. The run stops with
    one sentence, and its last.ckpt is update 2's: it passes the resume check and resumes from update 2."""
    _fail_half_way(monkeypatch, lambda checkpoint: checkpoint["gan_counters"]["g_step"] == 4)
    cfg = compose(tiny_run_overrides(tmp_path, 6, "logger=none", "train.checkpoint_every=2"))
    with pytest.raises(DiskFullError, match=r"^The disk filled up while writing the checkpoint .*g_step_0000004\.ckpt: "
                                            r"the checkpoints written before stay; free space and resume with "
                                            r"ckpt_path=.*"
                                            r"(last|g_step_0000002)\.ckpt\.$"):
        run(cfg)
    last = tmp_path / "checkpoints" / "last.ckpt"
    check_checkpoint(last)
    assert torch.load(last, weights_only=True)["gan_counters"]["g_step"] == 2
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))
    monkeypatch.undo()
    assert run(cfg).g_step == 6  # the same command continues from update 2



@pytest.mark.parametrize("target", ["sample grid", "TensorBoard events"])
def test_a_full_disk_under_a_sample_grid_or_tensorboard_stops_with_one_sentence_and_keeps_the_checkpoint(
        tmp_path, monkeypatch, target):
    """Once the checkpoint of update 5 is on disk, writing a sample grid (update 10) or TensorBoard's events (the
    logging step 10) hits a full disk: one sentence naming the file and the checkpoint to resume from, which is
    update 5's and resumes."""
    from torch.utils.tensorboard.writer import FileWriter

    from sngan_repro.callbacks import samples

    checkpoint_5 = tmp_path / "checkpoints" / "g_step_0000005.ckpt"

    def full_after_update_5(write):
        def writing(*args, **kwargs):
            if checkpoint_5.exists():
                raise OSError(errno.ENOSPC, "No space left on device", *(["grid.png"] if write is save else []))
            return write(*args, **kwargs)
        return writing

    save, add_event = samples.save_image, FileWriter.add_event
    if target == "sample grid":
        monkeypatch.setattr(samples, "save_image", full_after_update_5(save))
    else:
        monkeypatch.setattr(FileWriter, "add_event", full_after_update_5(add_event))
    cfg = compose(tiny_run_overrides(tmp_path, 20, "train.checkpoint_every=5"))
    written = "grid.png" if target == "sample grid" else f"the run's files in {tmp_path}"
    with pytest.raises(DiskFullError, match=rf"^The disk filled up while writing {written}: the checkpoints written "
                                            rf"before stay; free space and resume with ckpt_path="
                                            rf"{tmp_path}/checkpoints/(last|g_step_0000005)\.ckpt\.$"):
        run(cfg)
    assert _step_of(check_checkpoint(tmp_path / "checkpoints" / "last.ckpt")) == 5

def _step_of(checkpoint) -> int:
    return torch.load(checkpoint, weights_only=True)["gan_counters"]["g_step"]


def _all_finite(checkpoint) -> bool:
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    return all(value.isfinite().all() for value in state.values() if value.is_floating_point())


def test_a_diverging_loss_stops_the_run_naming_the_step_and_the_last_good_checkpoint(tmp_path, monkeypatch):
    """The critic's loss is NaN from its 13th update on; the logging step 15 stops the run (within one interval),
    and the checkpoint of update 10 is named, kept as last.ckpt, and resumable."""
    from sngan_repro.losses import HingeLoss

    original, calls = HingeLoss.discriminator, iter(range(1, 10**6))

    def nan_from_the_13th_update(self, d_real, d_fake):
        loss = original(self, d_real, d_fake)
        return loss * float("nan") if next(calls) >= 13 else loss

    monkeypatch.setattr(HingeLoss, "discriminator", nan_from_the_13th_update)
    good = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(TrainingDivergedError, match=rf"^Training diverged at generator step 15: loss/d is nan; the "
                                                    rf"last good checkpoint, {good} \(generator step 10\), is kept: "
                                                    rf"resume from it with ckpt_path={good} once the setting that "
                                                    rf"diverged is changed\.$"):
        run(compose(tiny_run_overrides(tmp_path, 20, "logger=none")))
    assert _step_of(check_checkpoint(good)) == 10 and _all_finite(good)
    assert _step_of(tmp_path / "checkpoints" / "g_step_0000010.ckpt") == 10


@pytest.mark.parametrize(("log_every", "checkpoint_every", "found_at", "good_step"), [
    (3, 4, 6, 4),    # found at the logging step 6: the checkpoint of step 4 is the last
    (10, 3, 6, 3),   # found when the checkpoint of step 6 was to be written: it is not, step 3's stays
], ids=["at-a-logging-step", "at-a-checkpoint"])
def test_a_non_finite_weight_stops_the_run_even_with_finite_losses(tmp_path, log_every, checkpoint_every, found_at,
                                                                     good_step):
    """The generator's BN running variance becomes infinite after update 5. Training mode normalizes by batch
    statistics, so the losses stay finite (only eval-mode samples would show it); the weight check stops the run at
    the next logging step or checkpoint, whichever comes first, and no checkpoint holding it is written."""

    class PoisonAfterUpdate5(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if pl_module.generator_stepped and pl_module.g_step == 5:
                norm = next(m for m in pl_module.generator.modules() if isinstance(m, torch.nn.BatchNorm2d))
                norm.running_var[0] = float("inf")

    good = tmp_path / "checkpoints" / "last.ckpt"
    overrides = ("logger=none", f"train.log_every={log_every}", f"train.checkpoint_every={checkpoint_every}")
    with pytest.raises(TrainingDivergedError) as raised:
        run(compose(tiny_run_overrides(tmp_path, 20, *overrides)), callbacks=[PoisonAfterUpdate5()])
    assert str(raised.value).startswith(f"Training diverged at generator step {found_at}: generator weight ")
    assert f"running_var holds inf; the last good checkpoint, {good} (generator step {good_step}), is kept" \
        in str(raised.value)
    assert _step_of(check_checkpoint(good)) == good_step and _all_finite(good)
    assert [path.name for path in (tmp_path / "checkpoints").glob("g_step_*")] == [f"g_step_{good_step:07d}.ckpt"]


@pytest.mark.parametrize(("change", "named"), [
    ("arch.width=0.25", "arch.width=0.125 there, 0.25 here"),
    ("norm=san", "norm=sn there, san here"),
    ("dataset.image_size=24", "dataset.image_size=16 there, 24 here"),
])
def test_a_checkpoint_of_other_networks_is_refused_before_training(tmp_path, change, named):
    """Resuming with another width, normalization or image size than the checkpoint's run: one sentence naming the
    file, the first weight that differs and the settings that differ, before any update (none is made)."""
    from sngan_repro.errors import CheckpointError

    run(compose(tiny_run_overrides(tmp_path / "first", 2, "logger=none")))
    checkpoint = tmp_path / "first" / "checkpoints" / "last.ckpt"
    shape = r"(of shape \[[0-9, ]*\]|absent)"
    with pytest.raises(CheckpointError, match=rf"^ckpt_path='{checkpoint}' holds other networks than this run builds "
                                              rf"\(\S+ is {shape} there and {shape} here; (.+; )?{named}(; .+)?\); "
                                              rf"resume with the settings it was written with, or start a new run "
                                              rf"without ckpt_path\.$"):
        run(compose(tiny_run_overrides(tmp_path / "second", 4, "logger=none", change, f"ckpt_path={checkpoint}")),
            callbacks=[NoTraining()])


def _occupy_the_next_seconds(folder: Path, seconds: int) -> None:
    """Folders named as runs and sweeps started in each of the next ``seconds`` would be, each holding a file: as if
    other jobs had just started then."""
    started = datetime.datetime.now()
    for second in range(seconds):
        moment = started + datetime.timedelta(seconds=second)
        for kind in ("outputs", "multirun"):
            earlier = folder / kind / f"{moment:%Y-%m-%d}" / f"{moment:%H-%M-%S}"
            earlier.mkdir(parents=True)
            (earlier / "earlier.txt").write_text("an earlier job's file")


def test_compose_names_a_fresh_run_directory_without_creating_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _occupy_the_next_seconds(tmp_path, 30)
    named = Path(compose(["experiment=quickstart"]).paths.output_dir)
    assert named.name.endswith("_1") and named.parent.parent == tmp_path / "outputs" and not named.exists()


@pytest.mark.slow
def test_runs_and_sweeps_started_in_the_same_second_get_their_own_directories(tmp_path):
    """With the folders of the next 90 seconds' runs and sweeps taken, a run and a sweep each take <time>_1, and the
    earlier folders get nothing."""
    _occupy_the_next_seconds(tmp_path, 90)
    # side by side: a run of one update, and a sweep whose jobs stop at once with their error.txt (exit code 2)
    results = _side_by_side([["train.steps=1", "experiment=quickstart", "metrics=none"],
                             ["-m", "train.steps=0,-1", "experiment=quickstart"]], cwd=tmp_path)
    assert [result.returncode for result in results] == [0, 2]
    for kind, files in (("outputs", {"config.yaml", "run.json", "checkpoints"}),
                        ("multirun", {"0", "1", "multirun.yaml"})):
        folders = {folder.name: {path.name for path in folder.iterdir()} - {".hydra", "train.log"}
                   for folder in (tmp_path / kind).glob("*/*")}
        fresh = [name for name in folders if name.endswith("_1")]
        assert len(fresh) == 1 and files <= folders.pop(fresh[0]), (kind, folders)
        assert all(contents == {"earlier.txt"} for contents in folders.values())


@pytest.mark.parametrize(("override", "field"), [("paths.output_dir={blocked}/run", "paths.output_dir"),
                                                 ("paths.cache_dir={blocked}/cache", "paths.cache_dir")])
def test_a_folder_that_cannot_be_written_is_named_by_its_field_before_training(tmp_path, override, field):
    """A run folder or a metric cache under a file (as an unwritable or mistyped folder would): one sentence naming
    the config field, before any update (the digits metrics cache their classifier and statistics there)."""
    from sngan_repro.errors import ConfigError

    blocked = tmp_path / "a_file"
    blocked.write_text("")
    overrides = tiny_run_overrides(tmp_path / "run", 2, "metrics=digits", f"paths.cache_dir={tmp_path}/cache",
                                   override.format(blocked=blocked))
    with pytest.raises(ConfigError, match=rf"^The folder {blocked}/\w+ \({field}\) cannot be written \(Not a "
                                          rf"directory\); set {field} to a location this user can write\.$"):
        run(compose(overrides), callbacks=[NoTraining()])


def _side_by_side(command_lines: list[list[str]], cwd: Path) -> list[subprocess.CompletedProcess]:
    """``python -m sngan_repro.train <command line>`` for each, all at once; their results once all have ended."""
    processes = [subprocess.Popen([sys.executable, "-m", "sngan_repro.train", *line], cwd=cwd, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for line in command_lines]
    results = []
    for process, line in zip(processes, command_lines):
        stdout, stderr = process.communicate(timeout=180)
        results.append(subprocess.CompletedProcess(line, process.returncode, stdout, stderr))
    return results


@pytest.mark.slow
def test_a_run_directory_that_cannot_be_created_is_one_sentence_and_exit_2(tmp_path):
    """Hydra creating a given hydra.run.dir, and the default's outputs/<day> (the fresh_directory resolver), where a
    file of that name is in the way."""
    blocked = tmp_path / "outputs"
    blocked.write_text("")
    days = [datetime.date.today()]
    given, default = _side_by_side([["experiment=quickstart", f"hydra.run.dir={blocked}/run"],
                                    ["experiment=quickstart"]], cwd=tmp_path)
    days.append(datetime.date.today())  # (a run started at midnight)
    for result, directories in ((given, {f"{blocked}/run"}), (default, {f"outputs/{day:%Y-%m-%d}" for day in days})):
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1] in {
            f"error: {directory} cannot be created or written (Not a directory); set hydra.run.dir, or "
            f"hydra.sweep.dir for a sweep (-m), to a folder this user can write." for directory in directories}
