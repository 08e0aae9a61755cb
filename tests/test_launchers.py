"""The sweep launcher presets conf/hydra/launcher/{local,slurm}.yaml (hydra-submitit-launcher): the SLURM preset asks
for one task per GPU and builds its sbatch script offline; the local preset's GPU queue and SLURM scrub work in the
shell submitit runs them in; a local sweep runs through the real command line."""

import fcntl
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_run_overrides
from omegaconf import OmegaConf

from sngan_repro.config import CONFIG_DIR, CONFIG_NAME

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="hydra-submitit-launcher is not installed")

ROOT = Path(__file__).resolve().parent.parent
SUBMITIT = "hydra_plugins.hydra_submitit_launcher.submitit_launcher"
# what Lightning prints when it takes the process for a SLURM task (SLURMEnvironment detected)
LIGHTNING_SEES_SLURM = "SLURM auto-requeueing enabled"
FAKE_ALLOCATION = {"SLURM_NTASKS": "4", "SLURM_NTASKS_PER_NODE": "4", "SLURM_NNODES": "1", "SLURM_JOB_NAME": "alloc",
                   "SLURM_JOB_ID": "99", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}


def compose_with_hydra(overrides):
    """The composed config with its ``hydra`` node (sngan_repro.compose drops it)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(CONFIG_NAME, overrides=list(overrides), return_hydra_config=True)


SLURM_OVERRIDES = ("hydra/launcher=slurm", "trainer.devices=4", "trainer.num_nodes=2", "hydra.launcher.partition=gpu")


def test_slurm_preset_asks_for_one_task_per_gpu():
    launcher = OmegaConf.to_container(compose_with_hydra(SLURM_OVERRIDES).hydra.launcher, resolve=True)
    assert launcher["_target_"] == f"{SUBMITIT}.SlurmLauncher"
    assert (launcher["tasks_per_node"], launcher["gpus_per_node"], launcher["nodes"]) == (4, 4, 2)
    assert launcher["partition"] == "gpu"
    assert launcher["max_num_timeout"] == 3  # a requeued run continues from its own last.ckpt


def test_slurm_preset_defaults_to_one_gpu_on_one_node():
    launcher = compose_with_hydra(["hydra/launcher=slurm"]).hydra.launcher
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes, launcher.partition) == (1, 1, 1, None)


def test_slurm_launcher_writes_one_task_per_gpu_into_its_sbatch_script(tmp_path, monkeypatch):
    """hydra-submitit-launcher's own launch() (the Hydra node -> AutoExecutor -> SlurmExecutor parameters), with a
    fake srun (submitit requires one on PATH) and a fake sbatch; the jobs' results are not waited for."""
    from hydra.utils import instantiate
    from submitit.slurm.slurm import SlurmJob

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("srun", "exit 1"), ("sbatch", 'echo "Submitted batch job 4242"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(SlurmJob, "results", lambda self: [f"result of {self.job_id}"])

    cfg = compose_with_hydra([*SLURM_OVERRIDES, "hydra.launcher.timeout_min=4320", f"hydra.sweep.dir={tmp_path}"])
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    assert launcher.launch([["seed=0"], ["seed=1"]], initial_job_idx=0) == ["result of 4242_0", "result of 4242_1"]

    script = (tmp_path / ".submitit" / "4242" / "4242_submission.sh").read_text()
    for flag in ("--ntasks-per-node=4", "--gpus-per-node=4", "--nodes=2", "--partition=gpu", "--time=4320",
                 "--cpus-per-task=8", "--signal=USR2@120", "--array=0-1%2"):
        assert f"#SBATCH {flag}\n" in script, (flag, script)
    assert "--mem" not in script  # mem_gb=null: the partition's default
    # srun starts the ntasks-per-node x nodes processes, each the pickled launcher call of one run
    assert "\nsrun --unbuffered " in script and "-m submitit.core._submit" in script


def _local_setup(env=None, *overrides: str) -> list[str]:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        launcher = OmegaConf.to_container(compose_with_hydra(["hydra/launcher=local", *overrides]).hydra.launcher,
                                          resolve=True)
    assert launcher["_target_"] == f"{SUBMITIT}.LocalLauncher"
    return launcher["setup"]


def _run_setup(setup, env, timeout=None):
    """The setup commands as submitit's local executor runs them (``sh -c "<setup> && ..."``, local.py), followed by
    a command printing the environment the job's controller would get."""
    command = " && ".join([*setup, "env"])
    return subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=timeout)


def test_local_setup_hides_slurm_and_gives_each_job_a_free_gpu(tmp_path):
    setup = _local_setup({"CUDA_VISIBLE_DEVICES": "3,5"})
    env = {"PATH": os.environ["PATH"], "SNGAN_REPRO_GPU_LOCKS": str(tmp_path), **FAKE_ALLOCATION}

    result = _run_setup(setup, env, timeout=30)
    assert result.returncode == 0, result.stderr
    variables = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert not [name for name in variables if name.startswith("SLURM_")]
    assert variables["CUDA_VISIBLE_DEVICES"] == "3"
    assert "runs on GPU 3" in result.stderr

    with open(tmp_path / "3", "a") as held:  # a running job holds GPU 3: the next job takes GPU 5
        fcntl.flock(held, fcntl.LOCK_EX)
        result = _run_setup(setup, env, timeout=30)
        assert "CUDA_VISIBLE_DEVICES=5\n" in result.stdout, result.stderr
        with open(tmp_path / "5", "a") as also_held:  # every GPU busy: the job waits
            fcntl.flock(also_held, fcntl.LOCK_EX)
            with pytest.raises(subprocess.TimeoutExpired):
                _run_setup(setup, env, timeout=3)


def test_runs_per_gpu_places_that_many_jobs_on_each_gpu_before_any_waits(tmp_path):
    """runs_per_gpu=2 with GPUs 3 and 5: the first jobs spread over the GPUs (slot 1 of each), the next two take
    their second slots, a fifth waits; a value that is not a positive integer stops the job in one sentence."""
    setup = _local_setup({"CUDA_VISIBLE_DEVICES": "3,5"}, "runs_per_gpu=2")
    env = {"PATH": os.environ["PATH"], "SNGAN_REPRO_GPU_LOCKS": str(tmp_path)}
    held, placed = [], []
    try:
        for _ in range(4):  # each placed job's lock is then held, as its running controller would hold it
            result = _run_setup(setup, env, timeout=30)
            assert result.returncode == 0, result.stderr
            placed.append(re.search(r"runs on GPU (\d) \(slot (\d) of 2\)", result.stderr).groups())
            gpu, slot = placed[-1]
            held.append(open(tmp_path / (gpu if slot == "1" else f"{gpu}.{int(slot) - 1}"), "a"))
            fcntl.flock(held[-1], fcntl.LOCK_EX)
        assert placed == [("3", "1"), ("5", "1"), ("3", "2"), ("5", "2")]
        with pytest.raises(subprocess.TimeoutExpired):  # every slot of every GPU busy: the job waits
            _run_setup(setup, env, timeout=3)
    finally:
        for lock in held:
            lock.close()
    refused = _run_setup(_local_setup({"CUDA_VISIBLE_DEVICES": "3"}, "runs_per_gpu=0"), env, timeout=30)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "sngan_repro: runs_per_gpu=0 must be a positive integer"


def test_local_setup_without_gpus_leaves_the_jobs_alone(tmp_path):
    """No GPU (CUDA_VISIBLE_DEVICES empty): nothing queues; submitit's own CUDA_VISIBLE_DEVICES ("") stays."""
    setup = _local_setup({"CUDA_VISIBLE_DEVICES": ""})
    env = {"PATH": os.environ["PATH"], "SNGAN_REPRO_GPU_LOCKS": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}
    result = _run_setup(setup, env, timeout=30)
    assert result.returncode == 0 and "CUDA_VISIBLE_DEVICES=\n" in result.stdout, result.stderr
    assert not list(tmp_path.iterdir())


def _local_sweep(tmp_path, env, seeds=(0, 1), timeout=900):
    overrides = [o for o in tiny_run_overrides(tmp_path, 3) if not o.startswith("paths.output_dir")]
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, "-m", "sngan_repro.train", "-m", "hydra/launcher=local",
         f"seed={','.join(map(str, seeds))}", *overrides, f"hydra.sweep.dir={sweep}"],
        capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
             **env},
    )
    # submitit keeps each job's stdout/stderr in <sweep>/.submitit/<job id>/
    logs = {str(p.relative_to(sweep)): p.read_text()[-3000:] for p in sorted(sweep.glob(".submitit/*/*_log.*"))}
    report = f"exit {result.returncode}\nstderr:\n{result.stderr[-3000:]}\n" + "".join(
        f"\n--- {name}:\n{text}" for name, text in logs.items())
    return sweep, result, logs, report


def _generator_weights(path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    return {name: value for name, value in state.items() if name.startswith("generator.")}


@pytest.mark.slow
def test_local_sweep_runs_its_jobs_with_their_own_seeds_one_per_gpu(tmp_path):
    """Two jobs through the command line, launched from inside a (fake) SLURM allocation, which Lightning must not
    see in the jobs, with one GPU (CUDA_VISIBLE_DEVICES=7; the jobs train on the CPU all the same): each job runs
    with its own seed, and the second starts once the first has ended (without a GPU the queue is off: see
    test_local_setup_without_gpus_leaves_the_jobs_alone)."""
    locks = tmp_path / "locks"
    sweep, result, logs, report = _local_sweep(tmp_path, {"CUDA_VISIBLE_DEVICES": "7",
                                                          "SNGAN_REPRO_GPU_LOCKS": str(locks), **FAKE_ALLOCATION})
    assert result.returncode == 0, report
    for seed in (0, 1):
        job = sweep / str(seed)  # hydra.sweep.subdir is the job number
        assert (job / "checkpoints" / "last.ckpt").is_file(), report
        assert OmegaConf.load(job / "config.yaml").seed == seed
    first, second = (_generator_weights(sweep / str(seed) / "checkpoints" / "last.ckpt") for seed in (0, 1))
    assert first.keys() == second.keys() and first
    assert any(not torch.equal(first[name], second[name]) for name in first)
    assert len([name for name in logs if name.endswith(".err")]) == 2, report
    assert not [name for name, text in logs.items() if LIGHTNING_SEES_SLURM in text], report

    assert result.stderr.count("runs on GPU 7") == 2, report
    def started(job):  # Hydra writes the job's .hydra/config.yaml when the job starts
        return (job / ".hydra" / "config.yaml").stat().st_mtime

    first, second = sorted((sweep / str(seed) for seed in (0, 1)), key=started)
    assert (first / "checkpoints" / "last.ckpt").stat().st_mtime <= started(second), report
    assert sorted(p.name for p in locks.iterdir()) == ["7"]


def test_local_preset_names_no_key_the_local_executor_refuses():
    """hydra-submitit-launcher passes every key of hydra.launcher to submitit's AutoExecutor, which accepts the
    shared keys and, for the local executor, only `setup` (plus max_num_timeout, given to its constructor)."""
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from submitit.local.local import LocalExecutor

    keys = set(compose_with_hydra(["hydra/launcher=local"]).hydra.launcher) - {"_target_"}
    accepted = set(OmegaConf.structured(BaseQueueConf)) | LocalExecutor._valid_parameters() | {"max_num_timeout"}
    assert keys <= accepted, keys - accepted

