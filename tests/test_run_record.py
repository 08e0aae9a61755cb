"""run.json: every run directory says how the run was started, from which source, with what, and how it ended.

- a finished run records its end, its world size and batch per rank, the library versions and the git commit;
- a copy of the source outside git records no commit and still trains;
- a failing run records the failure;
- a resumed run keeps the earlier record and appends a session;
- ``python -m sngan_repro.train`` is written back as a command that re-runs from any folder.
"""

import json
import subprocess
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from sngan_repro import run_directory
from sngan_repro.callbacks import run_record
from sngan_repro.run_directory import RunDirectory
from sngan_repro.train import run

REPOSITORY = Path(__file__).resolve().parents[1]
STEPS = 4


class FailAtGeneratorStep(pl.Callback):
    """A toy callback that raises once the generator has made ``g_step`` updates."""

    def __init__(self, g_step: int):
        self.g_step = g_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.g_step >= self.g_step:
            raise RuntimeError(f"boom at generator step {pl_module.g_step}")


def _record(directory: Path) -> dict:
    return json.loads((directory / "run.json").read_text())


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPOSITORY), *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout


def test_a_finished_run_records_its_end_world_batch_versions_and_commit(tiny_cfg, tmp_path):
    cfg = tiny_cfg("logger=none", steps=STEPS)
    run(cfg)
    record = _record(tmp_path)
    assert record["status"] == "finished" and record["g_step"] == STEPS and record["wall_seconds"] > 0
    assert record["finished"] >= record["started"]
    assert record["world_size"] == 1 and record["num_nodes"] == 1 and record["devices_per_node"] == 1
    assert record["batch"] == {"global": 16, "per_rank": 16, "generator_global": cfg.train.g_batch_size,
                               "generator_per_rank": cfg.train.g_batch_size}
    assert record["versions"]["torch"] == torch.__version__
    assert record["versions"]["pytorch-lightning"] == pl.__version__
    assert record["git"] == {"commit": _git("rev-parse", "HEAD").strip(), "dirty": bool(_git("status", "--porcelain"))}
    assert "train.steps=4" in record["overrides"] and record["choices"]["experiment"] == "quickstart"
    assert (tmp_path / record["config"]).is_file() and record["accelerator"] == "CPUAccelerator"
    assert len(record["sessions"]) == 1 and record["sessions"][0]["g_step_at_start"] == 0
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no staging file is left


def test_a_source_outside_git_records_no_commit_and_still_trains(tiny_cfg, tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    (copy / "sngan_repro").mkdir(parents=True)
    monkeypatch.setattr(run_record, "source_dir", lambda: copy)
    run(tiny_cfg("logger=none", steps=2, output_dir=tmp_path / "run"))
    record = _record(tmp_path / "run")
    assert record["git"] is None and record["status"] == "finished" and record["g_step"] == 2


def test_an_untracked_copy_inside_another_repository_records_no_commit(tmp_path):
    """E.g. a package installed into a virtualenv that lies in some other checkout: that checkout's commit
    says nothing about the source that ran."""
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                       capture_output=True, timeout=30)

    (tmp_path / "sngan_repro").mkdir()
    (tmp_path / "sngan_repro" / "__init__.py").write_text("")
    (tmp_path / "README").write_text("another project\n")
    git("init", "-q")
    git("add", "README")
    git("commit", "-q", "-m", "another project")
    assert run_directory.git_state(tmp_path) is None
    git("add", "sngan_repro")
    git("commit", "-q", "-m", "the source")
    commit = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert run_directory.git_state(tmp_path) == {"commit": commit, "dirty": False}
    (tmp_path / "sngan_repro" / "__init__.py").write_text("changed = True\n")
    assert run_directory.git_state(tmp_path) == {"commit": commit, "dirty": True}


def test_a_run_that_raises_records_the_failure(tiny_cfg, tmp_path):
    boom = f"+callbacks.boom={{_target_: {__name__}.FailAtGeneratorStep, g_step: 2}}"
    with pytest.raises(RuntimeError, match="boom at generator step 2"):
        run(tiny_cfg("logger=none", boom, steps=STEPS))
    record = _record(tmp_path)
    assert record["status"] == "failed" and record["g_step"] == 2
    assert record["error"] == "RuntimeError: boom at generator step 2"


def test_a_resumed_run_appends_a_session_and_keeps_the_earlier_one(tiny_cfg, tmp_path):
    run(tiny_cfg("logger=none", steps=2))
    first = _record(tmp_path)
    run(tiny_cfg("logger=none", f"ckpt_path={tmp_path / 'checkpoints' / 'last.ckpt'}", steps=STEPS))
    record = _record(tmp_path)
    assert record["status"] == "finished" and record["g_step"] == STEPS
    assert f"train.steps={STEPS}" in record["overrides"]
    earlier, latest = record["sessions"]
    assert earlier["started"] == first["started"] and earlier["status"] == "finished" and earlier["g_step"] == 2
    assert latest["g_step_at_start"] == 2 and latest["started"] == record["started"] and "status" not in latest


def test_the_update_method_sets_fields_and_keeps_the_others(tmp_path):
    RunDirectory(tmp_path).update_record(status="running", g_step=3)
    assert RunDirectory(tmp_path).update_record(status="preempted") == {"status": "preempted", "g_step": 3}
    assert _record(tmp_path) == {"status": "preempted", "g_step": 3}


@pytest.mark.parametrize(("argv", "command"), [
    (["/home/me/src/sngan_repro/train.py", "norm=sn", "experiment=quickstart"],
     "python -m sngan_repro.train norm=sn experiment=quickstart"),
    (["/home/me/src/sngan_repro/train.py", "+callbacks.x={_target_: a.B}"],
     "python -m sngan_repro.train '+callbacks.x={_target_: a.B}'"),
    (["scripts/sweep.py", "--dry run"], "scripts/sweep.py '--dry run'"),
])
def test_the_command_is_written_back_in_a_form_that_reruns(argv, command):
    assert run_record.rerunnable_command(argv) == command


def test_the_configured_folders_are_those_of_the_run_directory_layout(tiny_cfg, tmp_path):
    """conf/ names the folders the callbacks and the logger write into; run_directory.py names them for the code
    that reads a run back (the report, resume, evaluate): the same folders."""
    cfg = tiny_cfg("logger=tensorboard")
    layout = RunDirectory(cfg.paths.output_dir)
    callbacks = cfg.callbacks
    assert Path(callbacks.checkpoint.dirpath) == Path(callbacks.best_checkpoint.dirpath) == layout.checkpoints
    assert Path(callbacks.preemption.checkpoint) == layout.checkpoints / run_directory.LAST_CHECKPOINT
    assert Path(callbacks.samples.directory) == layout.samples
    assert Path(cfg.logger.tensorboard.save_dir) / cfg.logger.tensorboard.name == layout.tensorboard
    assert Path(callbacks.run_record.directory) == Path(callbacks.preemption.run_directory) == layout.path
