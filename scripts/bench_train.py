"""Our training step against a hand-written PyTorch loop doing the same math, per generator iteration.

One generator iteration is n_dis critic updates and one generator update (Miyato et al.'s setting B: n_dis = 1,
Adam 1e-4, betas 0.5/0.999, non-saturating loss), at 32 px with batch 64, for the standard CNN and the ResNet
and norm=none, sn, san. "Ours" is ``sngan_repro.train.run`` as a user runs it (Lightning Trainer, the default
callbacks, TensorBoard logging; the progress bar and metrics off). "Plain" is the loop below: the same networks
built with norm=none, PyTorch's own ``spectral_norm`` for SN, SAN written out with ``torch.fft`` and nn.Conv2d's
circular padding, a shuffling DataLoader, ``torch.randn`` noise and the loss formulas written here.

``--options`` adds rows with an acceleration (or any override) on our side only, timed against the same plain
loop: the change of ours/plain from the defaults' row is the option's speed-up.

The two alternate in one process: inside our training run a callback runs the plain loop for k generator
iterations after every k of ours, so machine noise hits both alike; each ratio is the median over the pairs.
Peak memory is measured in a fresh process per side (the growth over two iterations: VmHWM on CPU,
max_memory_allocated on CUDA). FLOP/s of the plain loop (PyTorch's FlopCounterMode) are given relative to a
large matrix product on the same device. The results go to a JSON file, which ``--baseline`` compares against.

    .venv/bin/python scripts/bench_train.py [--archs sngan_cnn sngan_resnet] [--norms none sn san] [--pairs 9]
        [--iterations 2] [--options 'trainer.precision=bf16-mixed' ...] [--output benchmarks/train_{device}.json]
        [--baseline benchmarks/train_cpu.json] [override for both sides ...]
"""

import argparse
import itertools
import json
import logging
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
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
from sngan_repro.train import run

ARCHS = ["sngan_cnn", "sngan_resnet"]
NORMS = ["none", "sn", "san"]
WARMUP_ITERATIONS = 2  # per side, before the first timed pair (allocator, oneDNN/cuDNN kernel choice)
MEMORY_ITERATIONS = 2


def overrides(arch: str, norm: str, args, steps: int, output_dir: str, option: str = "") -> list[str]:
    """The run's overrides; ``option`` (space-separated overrides, e.g. an acceleration) for our side only."""
    return [f"arch={arch}", f"norm={norm}", "dataset=synthetic", "dataset.image_size=32", "optim=B", "loss=nonsat",
            f"train.batch_size={args.batch}", f"train.steps={steps}", "metrics=none", f"paths.output_dir={output_dir}",
            f"trainer.accelerator={args.device}", "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false", *args.overrides, *option.split()]


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


class PlainLoop:
    """What a researcher writes by hand for the same run."""

    def __init__(self, cfg, norm: str, device: torch.device):
        """``cfg``: the run's config with norm=none; ``norm``: none, sn or san."""
        self.generator, self.discriminator = build_models(cfg)
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
        self.batch_size, self.n_dis = cfg.train.batch_size, cfg.optim.n_dis

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

    def iteration(self) -> None:
        for _ in range(self.n_dis):
            real = self.real_batch()
            with torch.no_grad():
                fake = self.generator(torch.randn(self.batch_size, self.latent_dim, device=self.device))
            loss_d = F.softplus(-self.discriminator(real)).mean() + F.softplus(self.discriminator(fake)).mean()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            self.project_san()
        for p in self.discriminator.parameters():
            p.requires_grad_(False)
        fake = self.generator(torch.randn(self.batch_size, self.latent_dim, device=self.device))
        loss_g = F.softplus(-self.discriminator(fake)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        for p in self.discriminator.parameters():
            p.requires_grad_(True)


# -- alternation inside our run ----------------------------------------------------------------------
class Alternation(pl.Callback):
    """After every ``iterations`` generator iterations of ours, run as many of the plain loop; stop after ``pairs``."""

    def __init__(self, plain: PlainLoop, iterations: int, pairs: int, device: torch.device):
        self.plain, self.iterations, self.pairs, self.device = plain, iterations, pairs, device
        self.times = {"ours": [], "plain": []}
        self.done, self.started = 0, 0.0

    def clock(self) -> float:
        synchronize(self.device)
        return time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if not module.generator_stepped:
            return
        self.done += 1
        if self.done == WARMUP_ITERATIONS:  # ours warmed up: warm the plain loop up, then start the first pair
            for _ in range(WARMUP_ITERATIONS):
                self.plain.iteration()
        elif self.done > WARMUP_ITERATIONS and (self.done - WARMUP_ITERATIONS) % self.iterations == 0:
            self.times["ours"].append((self.clock() - self.started) / self.iterations)
            started = self.clock()
            for _ in range(self.iterations):
                self.plain.iteration()
            self.times["plain"].append((self.clock() - started) / self.iterations)
            trainer.should_stop = len(self.times["ours"]) == self.pairs
        else:
            return
        self.started = self.clock()


def plain_loop(arch: str, norm: str, args, device: torch.device) -> PlainLoop:
    torch.manual_seed(0)
    return PlainLoop(compose(overrides(arch, "none", args, 1, tempfile.gettempdir())), norm, device)


def time_pairs(arch: str, norm: str, option: str, args) -> dict:
    device = torch.device(args.device)
    steps = WARMUP_ITERATIONS + args.pairs * args.iterations + 1
    plain = plain_loop(arch, norm, args, device)
    with tempfile.TemporaryDirectory() as output_dir:
        # composed after the plain loop's config, as run() records the current one
        cfg = compose(overrides(arch, norm, args, steps, output_dir, option))
        alternation = Alternation(plain, args.iterations, args.pairs, device)
        run(cfg, callbacks=[alternation])
        with FlopCounterMode(display=False) as flops:
            plain.iteration()
    ours, plain_times = (statistics.median(alternation.times[side]) for side in ("ours", "plain"))
    ratios = [o / p for o, p in zip(alternation.times["ours"], alternation.times["plain"])]
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return {"arch": arch, "norm": norm, "option": option, "ours_ms": 1e3 * ours, "plain_ms": 1e3 * plain_times,
            "ratio": statistics.median(ratios), "ratio_quartiles": [quartiles[0], quartiles[2]], "ratios": ratios,
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


def measure_memory(side: str, arch: str, norm: str, option: str, args) -> float:
    device = torch.device(args.device)
    meter = PeakMemory(device)
    if side == "plain":
        plain = plain_loop(arch, norm, args, device)
        meter.start()
        for _ in range(MEMORY_ITERATIONS):
            plain.iteration()
        return meter.peak_mb()
    with tempfile.TemporaryDirectory() as output_dir:
        cfg = compose(overrides(arch, norm, args, MEMORY_ITERATIONS + 1, output_dir, option))
        callback = _MeasureOurs(meter)
        run(cfg, callbacks=[callback])
        return callback.peak


def memory_in_child(side: str, arch: str, norm: str, option: str, argv: list[str]) -> float:
    command = [sys.executable, __file__, *argv, "--memory-of", side, "--archs", arch, "--norms", norm,
               f"--options={option}"]
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


def compare(results: dict, baseline_path: Path) -> None:
    baseline = {(row["arch"], row["norm"], row.get("option", "")): row
                for row in json.loads(baseline_path.read_text())["results"]}
    print(f"\nagainst {baseline_path}:")
    for row in results["results"]:
        old = baseline.get((row["arch"], row["norm"], row["option"]))
        if old:
            print(f"{row['arch']:>13s} {row['norm']:>5s} {row['option'] or '(defaults)':>28s}  ours/plain "
                  f"{old['ratio']:.3f} -> {row['ratio']:.3f}; ours {old['ours_it_per_s']:.3f} -> "
                  f"{row['ours_it_per_s']:.3f} it/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=ARCHS)
    parser.add_argument("--norms", nargs="+", default=NORMS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=9)
    parser.add_argument("--iterations", type=int, default=2, help="generator iterations per side per pair")
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
        print(json.dumps({"peak_mb": measure_memory(args.memory_of, args.archs[0], args.norms[0], option, args)}))
        return

    device = torch.device(args.device)
    reference = matmul_flop_per_s(device, args.matmul_size or (8192 if device.type == "cuda" else 2048))
    child_argv = ["--batch", str(args.batch), "--device", args.device, *args.overrides]
    results = []
    print(f"one generator iteration, batch {args.batch}, 32x32, {device.type}, {torch.get_num_threads()} threads; "
          f"median (and quartiles) of {args.pairs} alternating pairs x {args.iterations} iterations; "
          f"a {reference / 1e9:.1f} GFLOP/s matrix product is the reference")
    print(f"{'arch':>13s} {'norm':>5s} {'ours with':>28s} {'ours/plain':>10s} {'quartiles':>11s} {'ours it/s':>9s} "
          f"{'plain it/s':>10s} "
          f"{'ours MB':>8s} {'plain MB':>8s} {'plain GFLOP/s':>13s} {'of matmul':>9s}")
    for arch, norm, option in itertools.product(args.archs, args.norms, ["", *args.options]):
        row = time_pairs(arch, norm, option, args)
        row["peak_memory_mb"] = {side: memory_in_child(side, arch, norm, option, child_argv)
                                 for side in ("ours", "plain")}
        row["plain_fraction_of_matmul"] = row["plain_flop_per_s"] / reference
        results.append(row)
        low, high = row["ratio_quartiles"]
        print(f"{arch:>13s} {norm:>5s} {option or '(defaults)':>28s} {row['ratio']:10.3f} {low:5.2f}-{high:5.2f} "
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
