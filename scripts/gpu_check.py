"""`make gpu-check`: one prepared command for the first minutes on a GPU. It proves every path on the device and
measures how fast it is, writing one JSON file and printing a short table against the targets.

    .venv/bin/python scripts/gpu_check.py                            # on a machine with CUDA (make gpu-check)
    .venv/bin/python scripts/gpu_check.py --device cuda:1 --sections correctness speed
    .venv/bin/python scripts/gpu_check.py --device cpu --smoke       # every line at tiny sizes, on the CPU (tests)

Sections (each also alone, with --sections):
- environment: torch, the build's CUDA and cuDNN, the GPU's name, memory and compute capability, the driver, our commit.
- correctness: every architecture family x every critic normalization the config allows (a refusal is recorded,
  not run), three generator updates on synthetic images at the family's image size, then the method's invariant
  on the trained critic (the checks of tests/helpers/invariants.py, the ones tests/test_combinations.py runs on the
  CPU); bf16-mixed, 16-mixed, channels_last and compile on the standard CNN and the ResNet with SN and SAN, each
  keeping the invariant and computing the float32 run's losses within the CPU tests' tolerances; IS and FID of one
  generator's samples computed on the device and on the CPU (random-weights Inception) equal to 1e-4.
- speed, each a ratio of two things timed alternately in this process: one critic update of SN, SAN, WN and GP
  against norm=none (scripts/bench_norms.py); our training run against the hand-written loop of
  scripts/bench_train.py for the CIFAR-10 standard CNN and ResNet at batch 64, with each acceleration's speed-up,
  generator iterations per second, peak memory and achieved FLOP/s as a fraction of the device's matrix product;
  Inception images per second; the host synchronizations inside training steps that do not log.
- two_processes: trainer=ddp trainer.devices=2 (NCCL) when two GPUs are visible, the two ranks bit-identical after
  every update (tests/helpers/ddp.py); skipped, and said so, with one GPU.
- packing: runs completed per hour by a local sweep (hydra/launcher=local runs_per_gpu=k) of the standard CNN at
  batch 64 on one GPU, for k = 1, 2, 4; the best k is what a study should use.

It runs from a checkout (as `make gpu-check` does): the invariant checks, the host-transfer counter, the rank
comparison and the random Inception weights are the test suite's (tests/helpers), the timings the benchmarks'.
The exit code is 1 when a correctness check failed (the JSON is written first), 2 without CUDA.
"""

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from argparse import Namespace
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

ROOT = Path(__file__).resolve().parent.parent
for support in (ROOT / "tests", ROOT / "scripts"):  # the test suite's helpers and the benchmarks, from the checkout
    if str(support) not in sys.path:
        sys.path.insert(0, str(support))

import bench_norms  # noqa: E402
import bench_train  # noqa: E402
from helpers.combinations import AUTOENCODERS, FAMILIES, NORMS, combination_overrides  # noqa: E402
from helpers.ddp import assert_ranks_equal, recorder_override, run_processes  # noqa: E402
from helpers.host_sync import HostTransferCounter  # noqa: E402
from helpers.inception import write_random_weights  # noqa: E402
from helpers.invariants import CHECKS, COMPARED, LOSS_TOLERANCES, assert_same_losses, run_recording_start  # noqa: E402

from sngan_repro import compose  # noqa: E402
from sngan_repro.errors import ConfigError  # noqa: E402
from sngan_repro.evaluate import evaluate  # noqa: E402
from sngan_repro.metrics.inception import load_inception  # noqa: E402
from sngan_repro.metrics.scores import extract  # noqa: E402
from sngan_repro.run_directory import git_state, source_dir, versions  # noqa: E402
from sngan_repro.sample import sample  # noqa: E402
from sngan_repro.train import run  # noqa: E402

NO_CUDA = ("error: make gpu-check needs a CUDA GPU, and torch sees none (torch.cuda.is_available() is False); on a "
           "CPU, scripts/gpu_check.py --device cpu --smoke runs every check at tiny sizes.")
SECTIONS = ("correctness", "speed", "two_processes", "packing")
# what the output is read against: per critic update relative to norm=none, ours relative to the plain
# loop, bf16-mixed's speed-up over float32 on the ResNet, host synchronizations in steps that do not log
TARGETS = {"critic_update_ratio_max": {"sn": 1.05, "san": 1.10}, "ours_over_plain_max": 1.02,
           "bf16_speedup_on_resnet_min": 1.5, "host_synchronizations_max": 0, "scores_relative_difference_max": 1e-4}
# the image size each family is used at in its papers' presets (CIFAR-10 32 px, CelebA 64 px, the report's 28 px)
FAMILY_IMAGE_SIZE = {"standard_cnn": 32, "resnet": 32, "xiang_dcgan_wn": 64, "xiang_dcgan_vanilla": 64,
                     "xiang_dcgan_wn_mean_bn": 64, "xiang_resnet": 64, "iwgan": 32, "infogan": 28, "began": 32,
                     "ebgan": 32, "infogan_began": 28, "infogan_ebgan": 28}
ACCELERATION_OPTIONS = ("trainer.precision=bf16-mixed", "trainer.precision=16-mixed", "train.channels_last=true",
                        "train.compile=true")
SPEED_OPTIONS = (*ACCELERATION_OPTIONS[:1], *ACCELERATION_OPTIONS[2:], "dataset.device_resident=true")


@dataclass(frozen=True)
class Sizes:
    """How much each section does: the full check on a GPU, or the smoke run's tiny sizes on a CPU."""

    families: tuple[str, ...]
    norms: tuple[str, ...]
    natural_image_sizes: bool  # the family's image size (else the combination tests' small ones)
    accelerated: tuple[tuple[str, str, str], ...]  # (option, family, norm)
    score_samples: int
    critic_batch: int
    critic_rounds: int
    critic_updates: int
    critic_overrides: tuple[str, ...]
    train_batch: int
    train_pairs: int
    train_iterations: int
    train_archs: tuple[str, ...]
    train_options: tuple[str, ...]
    train_overrides: tuple[str, ...]
    matmul_size: int
    inception_images: int
    packing_counts: tuple[int, ...]
    packing_runs: int
    packing_steps: int


FULL = Sizes(
    families=tuple(sorted(FAMILIES | AUTOENCODERS)), norms=tuple(NORMS), natural_image_sizes=True,
    accelerated=tuple((option, family, norm) for option in ACCELERATION_OPTIONS for family in ("standard_cnn", "resnet")
                      for norm in ("sn", "san_reparametrization")),
    score_samples=500, critic_batch=64, critic_rounds=7, critic_updates=3, critic_overrides=(), train_batch=64,
    train_pairs=5, train_iterations=3, train_archs=("sngan_cnn", "sngan_resnet"), train_options=SPEED_OPTIONS,
    train_overrides=(), matmul_size=8192, inception_images=500, packing_counts=(1, 2, 4), packing_runs=4,
    packing_steps=300)
# every line once, in under a minute on two CPU cores: one refused and a few kept combinations, one option, one k
# (on a CPU the GPU queue is off, so every k runs the same lines)
SMOKE = Sizes(
    families=("began", "standard_cnn"), norms=("san_reparametrization", "sn"), natural_image_sizes=False,
    accelerated=(("trainer.precision=bf16-mixed", "standard_cnn", "san_reparametrization"),),
    score_samples=10, critic_batch=4, critic_rounds=2, critic_updates=1,
    critic_overrides=("dataset.image_size=16", "arch.width=0.0625"), train_batch=4, train_pairs=2, train_iterations=1,
    train_archs=("sngan_cnn",), train_options=("trainer.precision=bf16-mixed",),
    train_overrides=("dataset.image_size=16", "arch.width=0.0625", "dataset.size=64"), matmul_size=256,
    inception_images=4, packing_counts=(1,), packing_runs=1, packing_steps=2)


CONSOLE = [sys.stdout]  # where the progress lines go while the runs' own output goes to the log file


def say(text: str) -> None:
    print(text, file=CONSOLE[0], flush=True)


# -- environment ---------------------------------------------------------------------------------------------------
def driver_version() -> str:
    """The NVIDIA driver's version as nvidia-smi reports it (torch does not expose it)."""
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return "unknown (nvidia-smi not found)"
    try:
        result = subprocess.run([nvidia_smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return f"unknown (nvidia-smi: {type(error).__name__})"
    return result.stdout.splitlines()[0].strip() if result.returncode == 0 and result.stdout else "unknown"


def environment(device: torch.device) -> dict:
    """What the numbers were measured with: library versions, the build's CUDA and cuDNN, the device, the source."""
    git = git_state(source_dir())
    found = {"versions": versions(), "commit": git["commit"] if git else "not a git checkout",
             "uncommitted_changes": git["dirty"] if git else None, "torch_cuda_build": torch.version.cuda or "none",
             "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else "none",
             "device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        found |= {"device_name": properties.name, "device_memory_gib": round(properties.total_memory / 2**30, 2),
                  "compute_capability": f"{properties.major}.{properties.minor}",
                  "visible_gpus": torch.cuda.device_count(), "driver": driver_version()}
    else:
        found |= {"device_name": platform.processor() or platform.machine(), "visible_gpus": 0}
    return found


# -- the device's runs -------------------------------------------------------------------------------------------
def device_overrides(device: torch.device) -> list[str]:
    """A run on ``device``: Lightning's GPU accelerator on that one GPU, or the CPU."""
    if device.type == "cuda":
        return ["trainer=gpu", f"trainer.devices=[{device.index or 0}]"]
    return ["trainer=cpu"]


def family_overrides(family: str, norm: str, folder: Path, sizes: Sizes, device: torch.device) -> list[str]:
    """The combination tests' three-update run of ``family`` x ``norm``, at the family's image size, on ``device``."""
    size = [f"dataset.image_size={FAMILY_IMAGE_SIZE[family]}"] if sizes.natural_image_sizes else []
    return [*combination_overrides(family, norm, folder), *size, *device_overrides(device)]


def _failure(error: BaseException) -> str:
    """One line on what went wrong: the error's first and last lines (a subprocess's traceback ends with its
    exception), and for an assertion where it failed."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = " ... ".join(dict.fromkeys([lines[0][:200], lines[-1][:300]])) if lines else ""
    if isinstance(error, AssertionError):
        frame = traceback.extract_tb(error.__traceback__)[-1]
        return f"AssertionError at {Path(frame.filename).name}:{frame.lineno}: {text}"
    return f"{type(error).__name__}: {text}"


class FirstUpdate(pl.Callback):
    """The scalars logged at the first generator update: the critic's loss and outputs computed from the initial
    weights, the generator's loss after one critic update, before the runs of two precisions can drift apart."""

    def __init__(self):
        self.metrics: dict[str, float] = {}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if not self.metrics and module.generator_stepped:
            self.metrics = dict(module.last_metrics)


def checked_run(overrides: list[str], norm: str) -> tuple[dict, object, dict]:
    """Train ``overrides`` and check ``norm``'s invariant: (a row with its status, the trained module or None, the
    first update's scalars)."""
    started, first = time.perf_counter(), FirstUpdate()
    try:
        cfg = compose(overrides)
        module, initial = run_recording_start(cfg, callbacks=[first])
        # under 16-mixed an update whose float16 gradients overflow has infinite gradient norms by design: the loss
        # scaler skips it and halves the scale (trainer.precision in docs/performance.md); everything else is finite
        skipped_updates = cfg.trainer.precision == "16-mixed"
        finite = {name: value for name, value in module.last_metrics.items()
                  if not (skipped_updates and name.startswith("grad_norm/"))}
        assert module.g_step == 3 and set(COMPARED) <= set(finite), module.last_metrics  # three updates, logged
        assert all(math.isfinite(value) for value in finite.values()), module.last_metrics
        CHECKS[norm](module, initial)
    except ConfigError as refusal:  # the config refuses this combination: a sentence, not a failure
        return {"status": "refused", "detail": str(refusal), "seconds": time.perf_counter() - started}, None, {}
    except Exception as error:  # noqa: BLE001 (every failure is a finding of the check, recorded, not raised)
        return {"status": "failed", "detail": _failure(error), "seconds": time.perf_counter() - started}, None, {}
    return {"status": "passed", "detail": "", "seconds": time.perf_counter() - started}, module, first.metrics


def check_combinations(sizes: Sizes, device: torch.device, folder: Path) -> tuple[list[dict], dict]:
    """Every family x norm: its row, and the float32 losses (first and last update) of each passed one, the
    accelerations' reference."""
    rows, losses = [], {}
    for family in sizes.families:
        for norm in sizes.norms:
            row, module, first = checked_run(family_overrides(family, norm, folder / f"{family}-{norm}", sizes,
                                                              device), norm)
            rows.append({"family": family, "norm": norm, **row})
            if module is not None:
                losses[family, norm] = _compared(first, module)
            say(f"  {family:>22s} x {norm:<22s} {row['status']:>8s} {row['seconds']:6.1f} s  {row['detail'][:90]}")
    return rows, losses


def _compared(first: dict, module) -> dict:
    return {"first": {name: first[name] for name in COMPARED},
            "last": {name: module.last_metrics[name] for name in COMPARED}}


def _relative_difference(values: dict, reference: dict) -> float:
    return max(abs(values[name] - reference[name]) / max(abs(reference[name]), 1.0) for name in COMPARED)


def skipped_updates(module) -> dict[str, int]:
    """Under 16-mixed, the updates each network's loss scaler skipped (each halves the scale from 2^16)."""
    scalers = getattr(module.trainer.precision_plugin, "scalers", {})
    return {network: round(math.log2(2.0**16 / scaler.get_scale())) for network, scaler in scalers.items()}


def check_accelerations(sizes: Sizes, device: torch.device, folder: Path, float32: dict) -> list[dict]:
    """Each option on each (family, norm): the invariant, and the float32 run's losses and critic outputs within the
    CPU tests' tolerance, at the first update (the arithmetic alone) and at the last (the updates too). 16-mixed's
    last update is compared only when its loss scaler skipped no update after the first (as in the CPU test): the
    updates whose float16 gradients overflow are skipped, and its run falls as many updates behind."""
    rows = []
    for option, family, norm in sizes.accelerated:
        name = f"{option.split('=')[0].split('.')[-1]}-{option.split('=')[1]}-{family}-{norm}"
        if (family, norm) not in float32:
            _, module, first = checked_run(family_overrides(family, norm, folder / f"float32-{family}-{norm}", sizes,
                                                            device), norm)
            float32[family, norm] = _compared(first, module) if module else None
        row, module, first = checked_run([*family_overrides(family, norm, folder / name, sizes, device), option],
                                         norm)
        reference, tolerance = float32[family, norm], LOSS_TOLERANCES[option]
        differences, skipped = {}, {}
        if module is not None and reference is not None:
            ours = _compared(first, module)
            differences = {when: _relative_difference(ours[when], reference[when]) for when in ("first", "last")}
            skipped = skipped_updates(module)
            compared = ("first", "last") if max(skipped.values(), default=0) <= 1 else ("first",)
            try:
                for when in compared:
                    assert_same_losses(ours[when], reference[when], tolerance)
            except AssertionError as error:
                row |= {"status": "failed", "detail": f"the {when} update's losses differ from float32's beyond "
                                                      f"{tolerance}: {error}"}
        elif row["status"] == "passed":
            row |= {"status": "failed", "detail": "the float32 run of this combination failed"}
        rows.append({"option": option, "family": family, "norm": norm, "tolerance": tolerance,
                     "relative_loss_difference": differences, "skipped_updates": skipped, **row})
        shown = ", ".join(f"{when} {value:.1e}" for when, value in differences.items())
        say(f"  {option:>30s} {family:>12s} x {norm:<22s} {row['status']:>8s} "
            f"{f'loss difference {shown}' if shown else ''}"
            f"{f' (skipped {skipped})' if any(skipped.values()) else ''}  {row['detail'][:80]}")
    return rows


def random_inception_weights(folder: Path) -> str:
    """The test suite's random Inception weights (real shapes, offline), written once for all sections."""
    path = folder.parent / "weights-inception-random.pth"
    return str(path) if path.exists() else write_random_weights(path)


def check_scores(sizes: Sizes, device: torch.device, folder: Path) -> dict:
    """IS and FID of one generator's samples (made once) computed on ``device`` and on the CPU with a random-weights
    Inception, relative difference <= 1e-4; and the checkpoint's own evaluation (its generator on the device)."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = random_inception_weights(folder)
    # at full width: the slim generator of the combinations draws near-identical images (IS 1.0000 on any device);
    # three updates in, these still differ little (IS ~1.001), so FID carries most of the comparison
    run(compose([*combination_overrides("standard_cnn", "sn", folder / "run"), "dataset.image_size=32",
                 "arch.width=1.0"]))
    checkpoint = str(folder / "run" / "checkpoints" / "last.ckpt")
    images = sample(checkpoint, sizes.score_samples, output=str(folder / "samples.npz"), device="cpu")["output"]
    n = sizes.score_samples
    metrics = [f"metrics.inception_weights={weights}", "metrics=paper_miyato",
               f"metrics.measures.inception.inception_score={{samples: {n}, splits: 2}}",
               f"metrics.measures.inception.fid={{samples: {n}, real: {n}}}",
               f"metrics.measures.inception.batch_size={min(n, 100)}", f"paths.cache_dir={folder / 'cache'}"]
    dataset = ["dataset=synthetic", "dataset.channels=3", "dataset.image_size=32", f"dataset.size={max(n, 32)}"]
    scores, started = {}, time.perf_counter()
    for where in ("cpu", str(device)):
        document = evaluate(compose([f"images={images}", *dataset, *metrics, f"device={where}",
                                     f"output={folder / f'scores_{where}.json'}"], config_name="evaluate"))
        scores[where] = {name: entry["value"] for name, entry in document["results"].items()}
    on_cpu, on_device = scores["cpu"], scores[str(device)]
    difference = max(abs(on_device[name] - on_cpu[name]) / max(abs(on_cpu[name]), 1.0) for name in on_cpu)
    generator_on_device = evaluate(compose([f"ckpt={checkpoint}", *metrics, f"device={device}",
                                            f"output={folder / 'checkpoint_scores.json'}"], config_name="evaluate"))
    passed = difference <= TARGETS["scores_relative_difference_max"] and on_cpu.keys() == on_device.keys()
    return {"status": "passed" if passed else "failed", "samples": n, "on_cpu": on_cpu, "on_device": on_device,
            "largest_relative_difference": difference, "seconds": time.perf_counter() - started,
            "checkpoint_on_device": {name: entry["value"] for name, entry in generator_on_device["results"].items()}}


def correctness(sizes: Sizes, device: torch.device, folder: Path) -> dict:
    say("correctness on the device: every family x normalization, then each acceleration, then IS/FID")
    combinations, float32 = check_combinations(sizes, device, folder / "combinations")
    return {"combinations": combinations,
            "accelerations": check_accelerations(sizes, device, folder / "accelerations", float32),
            "scores": check_scores(sizes, device, folder / "scores")}


# -- speed ---------------------------------------------------------------------------------------------------------
def train_rows(sizes: Sizes, device: torch.device) -> list[dict]:
    """Ours against the plain loop per arch (SN, the CIFAR-10 presets' batch), then with each acceleration: each
    row with ours' iterations per second, the speed-up over ours in float32, peak memory and FLOP/s fractions."""
    args = Namespace(device=device.type, batch=sizes.train_batch, pairs=sizes.train_pairs,
                     iterations=sizes.train_iterations, experiment_iterations=None,
                     overrides=[*sizes.train_overrides, *device_overrides(device)[1:]])
    reference = bench_train.matmul_flop_per_s(device, sizes.matmul_size)
    rows = []
    for arch in sizes.train_archs:
        setting = bench_train.Setting(arch, "sn")
        plain_memory = bench_train.measure_memory("plain", setting, "", args)
        for option in ("", *sizes.train_options):
            row = bench_train.time_pairs(setting, option, args)
            default = next((r for r in rows if r["arch"] == row["arch"] and r["option"] == "none"), row)
            kept = ("arch", "image_size", "batch", "ratio", "ratio_quartiles", "ours_ms", "plain_ms", "ours_it_per_s",
                    "plain_it_per_s")
            row = {"option": option or "none"} | {key: row[key] for key in kept} | {
                # both timed against the same plain loop: the ratio of the two ratios cancels the machine's drift
                "speedup_over_float32": default["ratio"] / row["ratio"],
                "peak_memory_mb": {"ours": bench_train.measure_memory("ours", setting, option, args),
                                   "plain": plain_memory},
                "ours_fraction_of_matmul": row["plain_flop_per_iteration"] * row["ours_it_per_s"] / reference,
                "plain_fraction_of_matmul": row["plain_flop_per_s"] / reference}
            rows.append(row)
            say(f"  {arch:>12s} {option or '(float32)':>30s} ours/plain {row['ratio']:.3f}, "
                f"{row['ours_it_per_s']:.2f} it/s, x{row['speedup_over_float32']:.2f} over float32, "
                f"{row['peak_memory_mb']['ours']:.1f} MB, {row['ours_fraction_of_matmul']:.3f} of matmul")
    return rows


def inception_throughput(sizes: Sizes, device: torch.device, folder: Path) -> dict:
    """Images per second through our Inception extractor (random weights of the real shapes) on ``device``."""
    extractor = load_inception(random_inception_weights(folder), device)
    batch = min(sizes.inception_images, 100)
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8)
    batches = [images] * math.ceil(sizes.inception_images / batch)
    extract(extractor, batches[:1], device)  # warm-up (cuDNN's kernel choice, the allocator)
    clock = bench_train.Clock(device)
    started = clock.read()[0]
    extract(extractor, batches, device)
    return {"images": batch * len(batches), "images_per_s": batch * len(batches) / (clock.read()[0] - started)}


def host_synchronizations(sizes: Sizes, device: torch.device, folder: Path) -> dict:
    """Host transfers inside the training steps that do not log (tests/helpers/host_sync.py), standard CNN with SN
    and with SAN, 12 generator updates logging every 5th."""
    found = {}
    for norm in ("sn", "san_reparametrization"):
        overrides = [*family_overrides("standard_cnn", norm, folder / norm, sizes, device), "train.steps=12",
                     "train.log_every=5", "train.diagnostics_every=0"]
        with pytest.MonkeyPatch.context() as patch:
            counter = HostTransferCounter(patch)
            run(compose(overrides), callbacks=[counter])
        found[norm] = {"quiet_steps": counter.quiet_batches, "synchronizations": len(counter.calls),
                       "calls": sorted({name for _, name in counter.calls})}
    return found


def speed(sizes: Sizes, device: torch.device, folder: Path) -> dict:
    say("speed on the device: critic updates against norm=none, ours against the plain loop, accelerations")
    critic = bench_norms.critic_update_ratios(["none", "sn", "san", "wn", "gp"], sizes.critic_batch,
                                              sizes.critic_rounds, sizes.critic_updates, device,
                                              sizes.critic_overrides)
    return {"critic_update": {name: {key: value[key] for key in ("ms", "ratio", "ratio_quartiles")}
                              for name, value in critic.items()},
            "training": train_rows(sizes, device),
            "inception": inception_throughput(sizes, device, folder),
            "host_synchronizations": host_synchronizations(sizes, device, folder / "host_sync")}


# -- two processes -------------------------------------------------------------------------------------------------
def two_processes(sizes: Sizes, device: torch.device, folder: Path) -> dict:
    """trainer=ddp on two devices (two GPUs with NCCL; two CPU processes with gloo in the smoke run): the ranks hold
    bit-identical weights and buffers after every update."""
    if device.type == "cuda" and torch.cuda.device_count() < 2:
        return {"status": "skipped", "detail": f"{torch.cuda.device_count()} GPU visible; two are needed"}
    accelerator = ["trainer.accelerator=gpu"] if device.type == "cuda" else ["trainer.accelerator=cpu"]
    states = folder / "states"
    overrides = [*family_overrides("standard_cnn", "san_reparametrization", folder, sizes, device), "optim.n_dis=2",
                 "train.diagnostics_every=0", "trainer=ddp", *accelerator, "trainer.devices=2",
                 recorder_override(states)]
    started = time.perf_counter()
    try:
        run_processes(folder, overrides, folder / "done")
        assert_ranks_equal(*(torch.load(states / f"states{rank}.pt") for rank in range(2)))
    except Exception as error:  # noqa: BLE001 (recorded as the check's finding)
        return {"status": "failed", "detail": _failure(error), "seconds": time.perf_counter() - started}
    return {"status": "passed", "detail": "", "seconds": time.perf_counter() - started}


# -- packing small runs --------------------------------------------------------------------------------------------
@contextmanager
def visible_gpu(device: torch.device):
    """Child processes see only ``device`` (none for the CPU), and take GPU locks of their own folder."""
    # torch's index counts the GPUs this process sees: through CUDA_VISIBLE_DEVICES when it is set
    seen = [gpu for gpu in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if gpu.strip()]
    index = device.index or 0
    with tempfile.TemporaryDirectory() as locks, pytest.MonkeyPatch.context() as patch:
        patch.setenv("CUDA_VISIBLE_DEVICES", (seen[index] if seen else str(index)) if device.type == "cuda" else "")
        patch.setenv("SNGAN_REPRO_GPU_LOCKS", locks)
        yield


def packing(sizes: Sizes, device: torch.device, folder: Path) -> dict:
    """Runs per hour of a local sweep of ``packing_runs`` standard-CNN runs (batch 64, SN, 32 px synthetic images)
    with runs_per_gpu = k, each k timed from the sweep's start to its end."""
    small = ["dataset.image_size=16", "arch.width=0.0625"] if not sizes.natural_image_sizes else []
    workload = ["arch=sngan_cnn", "norm=sn", "dataset=synthetic", "dataset.channels=3", "dataset.image_size=32",
                *small, f"train.batch_size={sizes.train_batch}", f"train.steps={sizes.packing_steps}",
                "metrics=none", "logger=none", "train.sample_every=100000", "train.diagnostics_every=0",
                "train.checkpoint_every=0", "trainer.enable_progress_bar=false",
                f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}"]
    per_hour = {}
    with visible_gpu(device):
        for k in sizes.packing_counts:
            sweep = folder / f"runs_per_gpu_{k}"
            command = [sys.executable, "-m", "sngan_repro.train", "-m", "hydra/launcher=local", f"runs_per_gpu={k}",
                       f"seed=range({sizes.packing_runs})", *workload, f"hydra.sweep.dir={sweep}"]
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, cwd=folder)
            elapsed = time.perf_counter() - started
            if result.returncode != 0:
                return {"status": "failed", "detail": f"the sweep with runs_per_gpu={k} exited with "
                                                      f"{result.returncode}: {result.stderr.strip()[-500:]}"}
            done = len(list(sweep.glob("*/checkpoints/last.ckpt")))
            per_hour[k] = done * 3600 / elapsed
            say(f"  runs_per_gpu={k}: {done} runs in {elapsed:.1f} s, {per_hour[k]:.0f} runs per hour")
    best = max(per_hour, key=per_hour.get)
    return {"status": "passed", "detail": "", "runs": sizes.packing_runs, "steps": sizes.packing_steps,
            "runs_per_hour": {str(k): value for k, value in per_hour.items()}, "best_runs_per_gpu": best}


# -- the table -----------------------------------------------------------------------------------------------------
def verdict(value: float, limit: float, at_most: bool = True) -> str:
    return "meets" if (value <= limit if at_most else value >= limit) else "MISSES"


def summary_lines(report: dict) -> list[str]:
    """The printed table: each check's outcome and each measure beside its target."""
    lines = ["(--smoke: tiny sizes; every line ran, the speed figures mean little)"] if report["smoke"] else []
    stopped = {name for name in ("correctness", "speed") if report.get(name, {}).get("status") == "failed"}
    lines += [f"{name:<24s} stopped: {report[name]['detail']}" for name in sorted(stopped)]
    checks = report.get("correctness") if "correctness" not in stopped else None
    if checks:
        for name in ("combinations", "accelerations"):
            statuses = [row["status"] for row in checks[name]]
            failed = [f"{row.get('option', '')} {row['family']} x {row['norm']}".strip() for row in checks[name]
                      if row["status"] == "failed"]
            lines.append(f"{name:<24s} {statuses.count('passed')} passed, {statuses.count('refused')} refused by the "
                         f"config, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
        scores = checks["scores"]
        lines.append(f"{'IS/FID device vs CPU':<24s} largest relative difference "
                     f"{scores['largest_relative_difference']:.1e} (target <= 1e-4): {scores['status']}")
    measured = report.get("speed") if "speed" not in stopped else None
    if measured:
        for name, limit in TARGETS["critic_update_ratio_max"].items():
            ratio = measured["critic_update"][name]["ratio"]
            lines.append(f"{'critic update ' + name:<24s} {ratio:.3f}x norm=none (target <= {limit}): "
                         f"{verdict(ratio, limit)}")
        lines.append(f"{'critic update wn, gp':<24s} " + ", ".join(
            f"{measured['critic_update'][name]['ratio']:.3f}x" for name in ("wn", "gp")) + " norm=none")
        for row in measured["training"]:
            label = f"{row['arch']} {row['option'].replace('none', 'float32')}"
            line = (f"{label:<40s} ours/plain {row['ratio']:.3f}, {row['ours_it_per_s']:.1f} it/s, "
                    f"x{row['speedup_over_float32']:.2f}, {row['peak_memory_mb']['ours']:.1f} MB, "
                    f"{row['ours_fraction_of_matmul']:.2f} of matmul")
            if row["option"] == "none":
                line += f" (target <= {TARGETS['ours_over_plain_max']}: " \
                        f"{verdict(row['ratio'], TARGETS['ours_over_plain_max'])})"
            if row["option"] == "trainer.precision=bf16-mixed" and row["arch"] == "sngan_resnet":
                line += f" (target >= {TARGETS['bf16_speedup_on_resnet_min']}: " \
                        f"{verdict(row['speedup_over_float32'], TARGETS['bf16_speedup_on_resnet_min'], False)})"
            lines.append(line)
        lines.append(f"{'Inception':<24s} {measured['inception']['images_per_s']:.0f} images/s")
        for norm, found in measured["host_synchronizations"].items():
            lines.append(f"{'host syncs ' + norm:<24s} {found['synchronizations']} in {found['quiet_steps']} steps "
                         f"that do not log (target 0): {verdict(found['synchronizations'], 0)}")
    if "two_processes" in report:
        found = report["two_processes"]
        lines.append(f"{'two processes':<24s} {found['status']} {found['detail']}".rstrip())
    if "packing" in report:
        found = report["packing"]
        lines.append(f"{'packing':<24s} " + (", ".join(f"k={k}: {value:.0f} runs/h" for k, value in
                                                       found["runs_per_hour"].items())
                                             + f"; best runs_per_gpu={found['best_runs_per_gpu']}"
                                             if found["status"] == "passed" else f"failed: {found['detail']}"))
    return lines


def failed_checks(report: dict) -> bool:
    checks = report.get("correctness", {})
    rows = [*checks.get("combinations", []), *checks.get("accelerations", []), checks.get("scores", {}),
            *(report.get(name, {}) for name in SECTIONS)]  # a section's own status: it stopped, or its one check
    return any(row.get("status") == "failed" for row in rows)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:1, ..., or cpu (with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: every check runs, its numbers mean little")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="the sections to run (the environment always): a GPU's minutes spent where needed")
    parser.add_argument("--output", default="benchmarks/gpu_check_{device}.json",
                        help="the JSON file ({device}: the device type)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        raise SystemExit(2)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # "cuda" in the benchmarks' own tensors is this GPU
    sizes = SMOKE if args.smoke else FULL
    report = {"smoke": args.smoke, "environment": environment(device), "targets": TARGETS}
    found = report["environment"]
    print(f"environment: torch {found['versions']['torch']} (CUDA build {found['torch_cuda_build']}, cuDNN "
          f"{found['cudnn']}), {found['device']}: {found['device_name']}"
          + (f", {found['device_memory_gib']} GiB, driver {found['driver']}" if device.type == "cuda" else "")
          + f"; commit {found['commit']}" + (" with uncommitted changes" if found["uncommitted_changes"] else ""),
          flush=True)
    sections = {"correctness": correctness, "speed": speed, "two_processes": two_processes, "packing": packing}
    seconds, path = {}, Path(args.output.format(device=device.type))
    path.parent.mkdir(parents=True, exist_ok=True)
    log = path.with_suffix(".log")
    CONSOLE[0] = sys.stdout
    say(f"the runs' own output: {log}")
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as work, open(log, "w") as log_file, \
            redirect_stdout(log_file), redirect_stderr(log_file):
        for name in args.sections:
            started = time.perf_counter()
            folder = Path(work) / name
            folder.mkdir()
            try:
                report[name] = sections[name](sizes, device, folder)
            except Exception as error:  # noqa: BLE001 (a section that breaks must not cost the others' results)
                traceback.print_exc()  # into the log
                report[name] = {"status": "failed", "detail": _failure(error)}
                say(f"  the {name} section stopped: {report[name]['detail']} (traceback in {log})")
            seconds[name] = time.perf_counter() - started
            # after every section: a GPU slot that ends early keeps what was measured
            path.write_text(json.dumps(report | {"seconds": seconds}, indent=1) + "\n")
    report["seconds"] = seconds
    print("\n" + "\n".join(summary_lines(report)))
    print(f"{sum(seconds.values()):.0f} s in all; written to {path}")
    if failed_checks(report):
        raise SystemExit(1)
    return report


if __name__ == "__main__":
    main()
