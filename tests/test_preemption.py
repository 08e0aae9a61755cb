"""Preemption (sngan_repro/callbacks/preemption.py): a signal stops a run with a checkpoint at a safe point, and
the same command continues it to the weights of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_run_overrides
from helpers.ddp import run_processes, start_processes

from sngan_repro import compose
from sngan_repro.errors import ConfigError
from sngan_repro.train import run

STEPS = 60


def _command(run_dir: Path) -> list[str]:
    overrides = [o for o in tiny_run_overrides(run_dir, STEPS) if not o.startswith("paths.output_dir=")]
    return [sys.executable, "-m", "sngan_repro.train", *overrides, "logger=none", f"hydra.run.dir={run_dir}"]


def _weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def _signal_mid_run(process: subprocess.Popen, run_dir: Path, signum: signal.Signals) -> None:
    """Send ``signum`` once the run has written its checkpoint of generator step 10 (of 60)."""
    deadline = time.monotonic() + 240
    while not (run_dir / "checkpoints" / "g_step_0000010.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signum)


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


@pytest.mark.slow
def test_sigterm_then_the_same_command_gives_the_uninterrupted_weights(tmp_path):
    uninterrupted = subprocess.run(_command(tmp_path / "whole"), capture_output=True, text=True, timeout=300)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]

    run_dir = tmp_path / "interrupted"
    process = subprocess.Popen(_command(run_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _signal_mid_run(process, run_dir, signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr[-3000:]  # a clean exit
    record = _record(run_dir)
    assert record["status"] == "preempted" and record["signals"] == ["SIGTERM"]
    assert 10 <= record["g_step"] < STEPS  # stopped mid-run, after the checkpoint it waited for
    stopped = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert stopped["gan_counters"]["g_step"] == record["g_step"]
    assert f"saved {run_dir / 'checkpoints' / 'last.ckpt'} at generator step {record['g_step']}" in stdout
    stopped_at = record["g_step"]  # named if the weights differ: where the run stopped decides the path taken

    again = subprocess.run(_command(run_dir), capture_output=True, text=True, timeout=300)  # no path typed
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Continuing this run from its own" in again.stderr
    record = _record(run_dir)
    assert record["status"] == "finished" and record["g_step"] == STEPS and len(record["sessions"]) == 2
    whole, resumed = _weights(tmp_path / "whole"), _weights(run_dir)
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), f"{name} (stopped at generator step {stopped_at})"


@pytest.mark.slow
def test_slurm_pre_timeout_signal_checkpoints_then_requeues_through_lightning(tmp_path):
    """Under SLURM (its variables set, a stand-in `scontrol` on PATH), SIGUSR1 stops the run at a safe point with
    last.ckpt, then hands over to Lightning's auto-requeue, which requeues the job; the requeued job continues."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "scontrol_calls"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    (bin_dir / "scontrol").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SLURM_JOB_ID": "4242",
           "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "1", "SLURM_PROCID": "0",
           "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_JOB_NAME": "train", "SLURM_NODELIST": "localhost"}
    run_dir = tmp_path / "run"
    process = subprocess.Popen(_command(run_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _signal_mid_run(process, run_dir, signal.SIGUSR1)
    _, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr[-3000:]
    assert calls.read_text().split() == ["requeue", "4242"]
    record = _record(run_dir)
    assert record["status"] == "preempted" and record["signals"] == ["SIGUSR1"] and record["g_step"] < STEPS

    requeued = subprocess.run(_command(run_dir), capture_output=True, text=True, timeout=300, env=env)
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    assert _record(run_dir)["status"] == "finished" and _record(run_dir)["g_step"] == STEPS


@pytest.mark.slow
def test_under_ddp_a_signal_to_one_rank_stops_both_at_the_same_update(tmp_path):
    """SIGTERM to rank 0 only (the launching process): the ranks agree at the next check (every 10 generator
    updates), both save and stop cleanly, and the same command continues to the uninterrupted run's weights."""
    def overrides(run_dir):
        return tiny_run_overrides(run_dir, STEPS, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                                  "logger=none", "train.diagnostics_every=0")

    run_processes(tmp_path, overrides(tmp_path / "whole"), tmp_path / "whole_done")
    run_dir = tmp_path / "interrupted"
    process = start_processes(tmp_path, overrides(run_dir), tmp_path / "first_done")
    _signal_mid_run(process, run_dir, signal.SIGTERM)
    _, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr[-3000:]
    record = _record(run_dir)
    assert record["status"] == "preempted" and record["g_step"] % 10 == 0 and 10 <= record["g_step"] < STEPS

    run_processes(tmp_path, overrides(run_dir), tmp_path / "second_done")
    assert _record(run_dir)["status"] == "finished"
    whole, resumed = _weights(tmp_path / "whole"), _weights(run_dir)
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name


@pytest.mark.parametrize(("override", "message"), [
    ("callbacks.preemption.check_every=0", r"^callbacks.preemption.check_every=0 must be an integer >= 1 \(generator "
                                           r"updates between the ranks' checks for a stop signal\)\.$"),
    ("callbacks.preemption.signals=[SIGTERM,SIGFOO]", r"^callbacks.preemption.signals has 'SIGFOO', not a signal name; "
                                                     r"accepted: names such as SIGTERM, SIGUSR1, SIGUSR2\.$"),
])
def test_bad_preemption_settings_are_refused_in_one_sentence(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        run(compose(tiny_run_overrides(tmp_path, 2, override)))
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_a_run_preempted_before_its_first_periodic_checkpoint_resumes_into_last_ckpt(tmp_path):
    """A stop before the checkpoint callback's first save (here at update 3 of 20, checkpoints every 10): the resumed
    run overwrites last.ckpt, which ends with the uninterrupted run's weights; no last-v1.ckpt beside a stale one
    (Lightning's version counter did that, and the next resume continued from the stale file)."""
    import pytorch_lightning as pl

    class StopAtThirdUpdate(pl.Callback):
        sent = False

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if pl_module.g_step == 2 and not self.sent:
                self.sent = True
                os.kill(os.getpid(), signal.SIGTERM)  # the preemption callback stops after this update

    run(compose(tiny_run_overrides(tmp_path / "whole", 20, "logger=none")))
    interrupted = tmp_path / "interrupted"
    run(compose(tiny_run_overrides(interrupted, 20, "logger=none")), callbacks=[StopAtThirdUpdate()])
    assert torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=True)["gan_counters"]["g_step"] == 3
    run(compose(tiny_run_overrides(interrupted, 20, "logger=none")))
    assert sorted(path.name for path in (interrupted / "checkpoints").iterdir()) == \
        ["g_step_0000003.ckpt", "g_step_0000010.ckpt", "g_step_0000020.ckpt", "last.ckpt"]
    whole, resumed = _weights(tmp_path / "whole"), _weights(interrupted)
    assert all(torch.equal(whole[name], resumed[name]) for name in whole)
