"""Running training in two CPU processes (gloo) from a test: Lightning's DDP launcher re-runs the script it
was started from for rank 1, so the run is a script file started as a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch

TESTS = Path(__file__).resolve().parents[1]

RUN_SCRIPT = """
import json, sys, time
from pathlib import Path
from sngan_repro import compose, train

module = train.run(compose(json.loads(sys.argv[1])))
# rank 0 leaves only once every rank has written its files (a child can be stopped when the launcher's main process
# exits), each written complete (renamed into place)
folder, world = Path(sys.argv[2]), module.trainer.world_size
(folder / f"done{module.global_rank}.part").write_text("")
(folder / f"done{module.global_rank}.part").rename(folder / f"done{module.global_rank}")
deadline = time.monotonic() + 120
while module.global_rank == 0 and len(list(folder.glob("done[0-9]"))) < world and time.monotonic() < deadline:
    time.sleep(0.1)
"""


def start_processes(tmp_path: Path, overrides: list[str], folder: Path) -> subprocess.Popen:
    """Start ``train.run`` of ``overrides`` through a script (two processes when the overrides say
    trainer.devices=2); ``folder`` is where the script's ranks report that they are done."""
    script = tmp_path / "run_training.py"
    script.write_text(RUN_SCRIPT)
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(script), json.dumps(overrides), str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def run_processes(tmp_path: Path, overrides: list[str], folder: Path, timeout: float = 300) -> None:
    """``start_processes`` and wait for a clean end."""
    process = start_processes(tmp_path, overrides, folder)
    _, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-4000:]


def _copied(value):
    """A state entry as it is now: tensors cloned, a module's extra state (a dict, e.g. SAN's pending refresh) too."""
    if torch.is_tensor(value):
        return value.detach().clone()
    return {key: _copied(item) for key, item in value.items()} if isinstance(value, dict) else value


def _identical(first, second) -> bool:
    if torch.is_tensor(first):
        return torch.is_tensor(second) and torch.equal(first, second)
    if isinstance(first, dict):
        return isinstance(second, dict) and first.keys() == second.keys() and all(
            _identical(first[key], second[key]) for key in first)
    return first == second


class UpdateRecorder(pl.Callback):
    """The module's state (weights and buffers: SN's u, SAN's state, BN statistics) after every training step, i.e.
    after every critic update and the generator update that may follow it, saved per rank to
    ``<directory>/states<rank>.pt`` at the end."""

    def __init__(self, directory: str):
        self.directory, self.states = Path(directory), []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        state = {name: _copied(value) for name, value in pl_module.state_dict().items()}
        self.states.append({"d_step": pl_module.d_step, "g_step": pl_module.g_step, "state": state})

    def on_train_end(self, trainer, pl_module) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.states, self.directory / f"states{trainer.global_rank}.pt")


def recorder_override(directory: Path) -> str:
    return f"+callbacks.recorder={{_target_: helpers.ddp.UpdateRecorder, directory: {json.dumps(str(directory))}}}"


def assert_ranks_equal(rank0: list[dict], rank1: list[dict]) -> None:
    """Two ranks' ``UpdateRecorder`` states: after every update, the same step counts and bit-identical weights and
    buffers (gradients all-reduced, batch statistics synchronized, the same noise and the same normalization state)."""
    assert len(rank0) == len(rank1) > 0, (len(rank0), len(rank1))
    for state0, state1 in zip(rank0, rank1):
        assert (state0["d_step"], state0["g_step"]) == (state1["d_step"], state1["g_step"])
        assert state0["state"].keys() == state1["state"].keys()
        for name, value in state0["state"].items():
            assert _identical(value, state1["state"][name]), f"ranks differ in {name} after update {state0['d_step']}"
