"""Our training step against a hand-written PyTorch loop doing the same math, per generator iteration.

One generator iteration is n_dis critic updates and one generator update. Two kinds of rows:

- the 32 px grid (``--archs`` x ``--norms``): Miyato et al.'s setting B (n_dis = 1, Adam 1e-4, betas 0.5/0.999,
  non-saturating loss), batch 64, for the standard CNN and the ResNet and norm=none, sn, san;
- experiment presets (``--experiments``, default quickstart: the 24 px, width 0.25 SN CNN with the hinge loss and
  setting C, batch 64 on the digits), each as configured, where a tiny model makes fixed per-update costs show.

"Ours" is ``sngan_repro.train.run`` as a user runs it (Lightning Trainer, the default callbacks, TensorBoard logging
every train.log_every updates) with the progress bar and metrics off, and for experiment rows the sample grids,
periodic checkpoints and spectral diagnostics off too. "Plain" is the loop below: the same networks built with no
normalization, PyTorch's own ``spectral_norm`` for SN, SAN written out with ``torch.fft`` and nn.Conv2d's circular
padding, a shuffling DataLoader, ``torch.randn`` noise, the run's loss formula written here and its optimizer,
run with the environment variables Lightning sets on import as they were at launch (a script without Lightning).

``--options`` adds rows with an acceleration (or any override) on our side only, timed against the same plain
loop: the change of ours/plain from the defaults' row is the option's speed-up.

The two alternate in one process: inside our training run a callback runs the plain loop for k generator
iterations after every k of ours, so machine noise hits both alike; each side's time per iteration is taken over
its window of k after a warm-up (no setup inside), in wall time and in process CPU time (less sensitive to other
processes on a shared machine), and each ratio is the median over the pairs (with quartiles, min and max). An
experiment's window is its train.log_every updates, so that every window of ours holds one logging step.
Peak memory is measured in a fresh process per side (the growth over two iterations: VmHWM on CPU,
max_memory_allocated on CUDA). FLOP/s of the plain loop (PyTorch's FlopCounterMode) are given relative to a
large matrix product on the same device. The results go to a JSON file, which ``--baseline`` compares against.

    .venv/bin/python scripts/bench_train.py [--archs sngan_cnn sngan_resnet] [--norms none sn san] [--pairs 9]
        [--iterations 2] [--experiments quickstart] [--experiment-iterations K] [--no-grid]
        [--options 'trainer.precision=bf16-mixed' ...] [--output benchmarks/train_{device}.json]
        [--baseline benchmarks/train_cpu.json] [override for both sides ...]

    # the quickstart row alone (the acceptance check for fixed per-update costs):
    .venv/bin/python scripts/bench_train.py --no-grid --experiments quickstart --output /tmp/quickstart.json
"""

import argparse
import contextlib
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from sngan_repro import build_models, compose
from sngan_repro.data import build_datamodule
from sngan_repro.normalizations import Normalization
from sngan_repro.train import run

ARCHS = ["sngan_cnn", "sngan_resnet"]
NORMS = ["none", "sn", "san"]
EXPERIMENTS = ["quickstart"]
WARMUP_ITERATIONS = 2  # per side, before the first timed pair (allocator, oneDNN/cuDNN kernel choice)
MEMORY_ITERATIONS = 2
# what an experiment row switches off on our side: the quality metrics, the sample grids, the checkpoints (ours and
# Lightning's default one) and the spectral diagnostics; the training step, its logging and the other callbacks stay
EXPERIMENT_EXTRAS_OFF = ["metrics=none", "callbacks.samples=null", "callbacks.checkpoint=null",
                         "callbacks.best_checkpoint=null", "+trainer.enable_checkpointing=false",
                         "train.diagnostics_every=0"]


@dataclass(frozen=True)
class Setting:
    """What a row times: an experiment preset as configured, or an arch x norm of the 32 px grid."""

    arch: str = ""
    norm: str = ""
    experiment: str = ""

    @property
    def label(self) -> str:
        return f"experiment={self.experiment}" if self.experiment else f"{self.arch} norm={self.norm}"

    def overrides(self, args, steps: int, output_dir: str, option: str = "") -> list[str]:
        """The run's overrides; ``option`` (space-separated overrides, e.g. an acceleration) for our side only."""
        if self.experiment:
            setting = [f"experiment={self.experiment}", *EXPERIMENT_EXTRAS_OFF]
        else:
            setting = [f"arch={self.arch}", f"norm={self.norm}", "dataset=synthetic", "dataset.image_size=32",
                       "optim=B", "loss=nonsat", f"train.batch_size={args.batch}", "metrics=none"]
        return [*setting, f"train.steps={steps}", f"paths.output_dir={output_dir}",
                f"trainer.accelerator={args.device}", "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false", *args.overrides, *option.split()]

    def iterations(self, args) -> int:
        """Generator iterations per side per pair: an experiment's logging period unless given."""
        if not self.experiment:
            return args.iterations
        if args.experiment_iterations:
            return args.experiment_iterations
        return compose(self.overrides(args, 1, tempfile.gettempdir())).train.log_every


# Lightning sets this on import (lightning_fabric/__init__.py), so that torch.cuda.is_available() asks NVML instead of
# initializing CUDA; torch.optim.Adam asks on every step. A hand-written loop never imports Lightning, so it runs with
# the variable as the process was started with: a cost of the variable, if any, is ours.
NVML_CUDA_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def _launch_environment() -> dict[str, str]:
    """The environment the process was started with, before any import changed it (Linux; else the current one)."""
    try:
        entries = Path("/proc/self/environ").read_bytes().split(b"\0")
    except OSError:
        return dict(os.environ)
    return dict(entry.decode(errors="replace").split("=", 1) for entry in entries if b"=" in entry)


def _set_variable(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@contextlib.contextmanager
def without_lightning_environment():
    """Run the plain loop with the environment variables Lightning sets on import as they were at launch."""
    ours = os.environ.get(NVML_CUDA_CHECK)
    _set_variable(NVML_CUDA_CHECK, _launch_environment().get(NVML_CUDA_CHECK))
    try:
        yield
    finally:
        _set_variable(NVML_CUDA_CHECK, ours)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- the hand-written loop --------------------------------------------------------------------------
def _torch_convs(module: nn.Module, padding_mode: str) -> None:
    """Replace every conv of ``module`` by PyTorch's nn.Conv2d with the same weights and ``padding_mode``."""
    for parent in list(module.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                conv = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride, child.padding,
                                 child.dilation, child.groups, child.bias is not None, padding_mode=padding_mode)
                conv.load_state_dict(child.state_dict())
                setattr(parent, name, conv)


def _input_sizes(discriminator: nn.Module, image_shape) -> dict[nn.Module, tuple[int, int]]:
    sizes = {}

    def record(layer, inputs):
        sizes[layer] = tuple(inputs[0].shape[-2:])

    hooks = [conv.register_forward_pre_hook(record) for conv in discriminator.modules() if isinstance(conv, nn.Conv2d)]
    with torch.no_grad():
        discriminator(torch.zeros(1, *image_shape))
    for hook in hooks:
        hook.remove()
    return sizes


# (critic loss of D(x), D(G(z)); generator loss of D(G(z))) as written in Miyato et al. 2018, Eqs. 15-17
LOSSES = {
    "nonsat": (lambda real, fake: F.softplus(-real).mean() + F.softplus(fake).mean(),
               lambda fake: F.softplus(-fake).mean()),
    "hinge": (lambda real, fake: F.relu(1 - real).mean() + F.relu(1 + fake).mean(),
              lambda fake: -fake.mean()),
}


class PlainLoop:
    """What a researcher writes by hand for the same run."""

    def __init__(self, cfg, device: torch.device):
        """``cfg``: the run's composed config (its norm none, sn or san; its loss nonsat or hinge)."""
        norm, loss = cfg.choices.norm, cfg.choices.loss
        if norm not in NORMS or loss not in LOSSES:
            raise ValueError(f"the plain loop writes out norm={'|'.join(NORMS)} and loss={'|'.join(LOSSES)}; "
                             f"got norm={norm}, loss={loss}")
        self.critic_loss, self.generator_loss = LOSSES[loss]
        self.generator, self.discriminator = build_models(cfg, norm=Normalization())  # the networks unnormalized
        _torch_convs(self.discriminator, "circular" if norm == "san" else "zeros")
        image_shape = (cfg.dataset.channels, cfg.dataset.image_size, cfg.dataset.image_size)
        self.san_sizes = _input_sizes(self.discriminator, image_shape) if norm == "san" else {}
        # SN everywhere; SAN's dense layer by SN too (Kligvasser & Michaeli, Sec. 3)
        spectrally_normalized = (nn.Conv2d, nn.Linear) if norm == "sn" else (nn.Linear,) if norm == "san" else ()
        for layer in [m for m in self.discriminator.modules() if isinstance(m, spectrally_normalized)]:
            spectral_norm(layer)
        self.generator.to(device), self.discriminator.to(device)
        self.project_san()  # Kligvasser & Michaeli, Algorithm 1: normalized before the first step too
        betas = tuple(cfg.optim.optimizer.betas)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.optim.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.optim.lr_d, betas=betas)
        datamodule = build_datamodule(cfg)
        datamodule.prepare_data()
        datamodule.setup()
        loader = DataLoader(TensorDataset(datamodule.train_set.images), batch_size=cfg.train.batch_size,
                            shuffle=True, drop_last=True, pin_memory=device.type == "cuda")
        self.batches = self._endless(loader)
        self.device, self.latent_dim = device, cfg.arch.latent_dim
        self.batch_size, self.g_batch_size, self.n_dis = cfg.train.batch_size, cfg.train.g_batch_size, cfg.optim.n_dis

    @staticmethod
    def _endless(loader):
        while True:
            yield from loader

    @torch.no_grad()
    def project_san(self) -> None:
        for conv, size in self.san_sizes.items():
            conv.weight.div_(torch.fft.rfft2(conv.weight, s=tuple(size)).abs().amax())

    def real_batch(self) -> torch.Tensor:
        (images,) = next(self.batches)
        return images.to(self.device, non_blocking=True).float().div_(127.5).sub_(1)

    def run(self, iterations: int) -> None:
        """``iterations`` generator iterations, in the environment of a process without Lightning."""
        with without_lightning_environment():
            for _ in range(iterations):
                self.iteration()

    def iteration(self) -> None:
        for _ in range(self.n_dis):
            real = self.real_batch()
            with torch.no_grad():
                fake = self.generator(torch.randn(self.batch_size, self.latent_dim, device=self.device))
            loss_d = self.critic_loss(self.discriminator(real), self.discriminator(fake))
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            self.project_san()
        for p in self.discriminator.parameters():
            p.requires_grad_(False)
        fake = self.generator(torch.randn(self.g_batch_size, self.latent_dim, device=self.device))
        loss_g = self.generator_loss(self.discriminator(fake))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        for p in self.discriminator.parameters():
            p.requires_grad_(True)


# -- alternation inside our run ----------------------------------------------------------------------
class Clock:
    """Wall and process CPU seconds, read once the device has finished its queued work."""

    def __init__(self, device: torch.device):
        self.device = device

    def read(self) -> tuple[float, float]:
        synchronize(self.device)
        return time.perf_counter(), time.process_time()


class Alternation(pl.Callback):
    """After every ``iterations`` generator iterations of ours, run as many of the plain loop; stop after ``pairs``.

    Each side's window starts where the other's ended, so ours' includes everything our run does between two
    generator updates (Lightning's loop, data, hooks, logging) and nothing of its setup (the warm-up is before)."""

    def __init__(self, plain: PlainLoop, iterations: int, pairs: int, device: torch.device):
        self.plain, self.iterations, self.pairs, self.clock = plain, iterations, pairs, Clock(device)
        self.times = {side: {"wall": [], "cpu": []} for side in ("ours", "plain")}
        self.done, self.started = 0, (0.0, 0.0)

    def record(self, side: str, started: tuple[float, float]) -> None:
        ended = self.clock.read()
        for kind, end, start in zip(("wall", "cpu"), ended, started):
            self.times[side][kind].append((end - start) / self.iterations)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if not module.generator_stepped:
            return
        self.done += 1
        if self.done == WARMUP_ITERATIONS:  # ours warmed up: warm the plain loop up, then start the first pair
            self.plain.run(WARMUP_ITERATIONS)
        elif self.done > WARMUP_ITERATIONS and (self.done - WARMUP_ITERATIONS) % self.iterations == 0:
            self.record("ours", self.started)
            started = self.clock.read()
            self.plain.run(self.iterations)
            self.record("plain", started)
            trainer.should_stop = len(self.times["ours"]["wall"]) == self.pairs
        else:
            return
        self.started = self.clock.read()


def spread(ratios: list[float]) -> dict:
    """Median, quartiles, min and max of per-pair ratios."""
    quartiles = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
    return {"ratio": statistics.median(ratios), "ratio_quartiles": [quartiles[0], quartiles[2]],
            "ratio_range": [min(ratios), max(ratios)], "ratios": ratios}


def time_pairs(setting: Setting, option: str, args) -> dict:
    device = torch.device(args.device)
    iterations = setting.iterations(args)
    steps = WARMUP_ITERATIONS + args.pairs * iterations + 1
    with tempfile.TemporaryDirectory() as output_dir:
        torch.manual_seed(0)
        plain = PlainLoop(compose(setting.overrides(args, steps, output_dir)), device)  # without the option
        cfg = compose(setting.overrides(args, steps, output_dir, option))  # composed last, as run() records it
        alternation = Alternation(plain, iterations, args.pairs, device)
        run(cfg, callbacks=[alternation])
        with FlopCounterMode(display=False) as flops:
            plain.run(1)
    times = alternation.times
    ours, plain_times = (statistics.median(times[side]["wall"]) for side in ("ours", "plain"))
    wall = spread([o / p for o, p in zip(times["ours"]["wall"], times["plain"]["wall"])])
    cpu = spread([o / p for o, p in zip(times["ours"]["cpu"], times["plain"]["cpu"])])
    return {"setting": setting.label, "arch": cfg.choices.arch, "norm": cfg.choices.norm,
            "experiment": setting.experiment, "option": option, "image_size": cfg.dataset.image_size,
            "width": cfg.arch.width, "batch": cfg.train.batch_size, "iterations_per_side": iterations,
            "ours_ms": 1e3 * ours, "plain_ms": 1e3 * plain_times, **wall,
            "cpu_time": {"ours_ms": 1e3 * statistics.median(times["ours"]["cpu"]),
                         "plain_ms": 1e3 * statistics.median(times["plain"]["cpu"]), **cpu},
            "ours_it_per_s": 1 / ours, "plain_it_per_s": 1 / plain_times,
            "plain_flop_per_iteration": flops.get_total_flops(),
            "plain_flop_per_s": flops.get_total_flops() / plain_times}


# -- peak memory, one fresh process per side ---------------------------------------------------------
def _resident_kb(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1))


class PeakMemory:
    """Memory growth from ``start()`` to the peak: CUDA's allocator statistics, else the process's resident set."""

    def __init__(self, device: torch.device):
        self.device = device

    def start(self) -> None:
        synchronize(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
            self.base = 1024 * _resident_kb("VmRSS")

    def peak_mb(self) -> float:
        synchronize(self.device)
        peak = torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else 1024 * _resident_kb(
            "VmHWM")
        return (peak - self.base) / 2**20


class _MeasureOurs(pl.Callback):
    def __init__(self, meter: PeakMemory):
        self.meter, self.iterations, self.peak = meter, 0, None

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.meter.start()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.iterations += module.generator_stepped
        if self.iterations == MEMORY_ITERATIONS and self.peak is None:
            self.peak = self.meter.peak_mb()
            trainer.should_stop = True


def measure_memory(side: str, setting: Setting, option: str, args) -> float:
    device = torch.device(args.device)
    meter = PeakMemory(device)
    with tempfile.TemporaryDirectory() as output_dir:
        if side == "plain":
            torch.manual_seed(0)
            plain = PlainLoop(compose(setting.overrides(args, MEMORY_ITERATIONS, output_dir)), device)
            meter.start()
            plain.run(MEMORY_ITERATIONS)
            return meter.peak_mb()
        callback = _MeasureOurs(meter)
        run(compose(setting.overrides(args, MEMORY_ITERATIONS + 1, output_dir, option)), callbacks=[callback])
        return callback.peak


def memory_in_child(side: str, setting: Setting, option: str, argv: list[str]) -> float:
    selection = (["--no-grid", "--experiments", setting.experiment] if setting.experiment
                 else ["--archs", setting.arch, "--norms", setting.norm, "--experiments"])
    command = [sys.executable, __file__, *argv, "--memory-of", side, *selection, f"--options={option}"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_mb"]


# -- machine reference ---------------------------------------------------------------------------------
def matmul_flop_per_s(device: torch.device, size: int, repeats: int = 5) -> float:
    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    a @ b
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        synchronize(device)
        times.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(times)


def _row_key(row: dict) -> tuple:
    return row.get("experiment", ""), row["arch"], row["norm"], row.get("option", "")


def compare(results: dict, baseline_path: Path) -> None:
    baseline = {_row_key(row): row for row in json.loads(baseline_path.read_text())["results"]}
    print(f"\nagainst {baseline_path}:")
    for row in results["results"]:
        old = baseline.get(_row_key(row))
        if old:
            print(f"{row['setting']:>25s} {row['option'] or '(defaults)':>28s}  ours/plain "
                  f"{old['ratio']:.3f} -> {row['ratio']:.3f}; ours {old['ours_it_per_s']:.3f} -> "
                  f"{row['ours_it_per_s']:.3f} it/s")


def settings(args) -> list[Setting]:
    grid = [Setting(arch, norm) for arch in args.archs for norm in args.norms] if args.grid else []
    return grid + [Setting(experiment=experiment) for experiment in args.experiments]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=ARCHS)
    parser.add_argument("--norms", nargs="+", default=NORMS)
    parser.add_argument("--grid", action=argparse.BooleanOptionalAction, default=True,
                        help="time the 32 px grid of --archs x --norms (--no-grid: the experiments only)")
    parser.add_argument("--experiments", nargs="*", default=EXPERIMENTS, help="experiment presets timed as "
                        "configured, with metrics, samples, checkpoints and diagnostics off (none: give no name)")
    parser.add_argument("--batch", type=int, default=64, help="the 32 px grid's batch (experiments keep theirs)")
    parser.add_argument("--pairs", type=int, default=9)
    parser.add_argument("--iterations", type=int, default=2, help="generator iterations per side per pair (grid)")
    parser.add_argument("--experiment-iterations", type=int, default=None, help="generator iterations per side per "
                        "pair of an experiment (default: its train.log_every, one logging step per window of ours)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--matmul-size", type=int, default=None, help="side of the reference product (CPU 2048, "
                        "GPU 8192)")
    parser.add_argument("--output", default="benchmarks/train_{device}.json", help="the JSON of results ({device}: "
                        "cpu or cuda)")
    parser.add_argument("--baseline", type=Path, default=None, help="an earlier JSON to compare with")
    parser.add_argument("--options", nargs="*", default=[], help="also time our side with each of these (quoted, "
                        "space-separated overrides), e.g. 'trainer.precision=bf16-mixed' 'train.channels_last=true'")
    parser.add_argument("--memory-of", choices=["ours", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="config overrides for both "
                        "sides, e.g. trainer.precision=bf16-mixed")
    args = parser.parse_intermixed_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # the Trainer's start-up notices, once per run
    pl.seed_everything(0, verbose=False)
    if args.memory_of:
        option = args.options[0] if args.options else ""
        print(json.dumps({"peak_mb": measure_memory(args.memory_of, settings(args)[0], option, args)}))
        return

    device = torch.device(args.device)
    reference = matmul_flop_per_s(device, args.matmul_size or (8192 if device.type == "cuda" else 2048))
    child_argv = ["--batch", str(args.batch), "--device", args.device, *args.overrides]
    results = []
    print(f"one generator iteration, {device.type}, {torch.get_num_threads()} threads; ours/plain: median (quartiles, "
          f"min-max) of {args.pairs} alternating pairs, wall time, and its median in process CPU time; a "
          f"{reference / 1e9:.1f} GFLOP/s matrix product is the reference")
    print(f"{'setting':>25s} {'px':>3s} {'ours with':>28s} {'ours/plain':>10s} {'quartiles':>11s} {'min-max':>11s} "
          f"{'cpu':>5s} {'ours it/s':>9s} {'plain it/s':>10s} {'ours MB':>8s} {'plain MB':>8s} "
          f"{'plain GFLOP/s':>13s} {'of matmul':>9s}")
    for setting in settings(args):
        for option in ["", *args.options]:
            row = time_pairs(setting, option, args)
            row["peak_memory_mb"] = {side: memory_in_child(side, setting, option, child_argv)
                                     for side in ("ours", "plain")}
            row["plain_fraction_of_matmul"] = row["plain_flop_per_s"] / reference
            results.append(row)
            (low, high), (least, most) = row["ratio_quartiles"], row["ratio_range"]
            print(f"{row['setting']:>25s} {row['image_size']:3d} {option or '(defaults)':>28s} {row['ratio']:10.3f} "
                  f"{low:5.2f}-{high:5.2f} {least:5.2f}-{most:5.2f} {row['cpu_time']['ratio']:5.2f} "
                  f"{row['ours_it_per_s']:9.3f} {row['plain_it_per_s']:10.3f} {row['peak_memory_mb']['ours']:8.0f} "
                  f"{row['peak_memory_mb']['plain']:8.0f} {row['plain_flop_per_s'] / 1e9:13.1f} "
                  f"{row['plain_fraction_of_matmul']:9.2f}", flush=True)
    output = {"device": device.type, "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
              else platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "lightning": pl.__version__, "batch": args.batch, "pairs": args.pairs,
              "iterations_per_side": args.iterations, "overrides": args.overrides,
              "matmul_flop_per_s": reference, "results": results}
    if args.baseline:
        compare(output, args.baseline)
    path = Path(args.output.format(device=device.type))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(output, indent=1) + "\n")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
