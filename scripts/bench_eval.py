"""Overhead of the evaluation metrics over the raw network passes they cannot avoid, one section each.

Reconstruction (Xiang & Li, Sec. 4): a running evaluation (default 200 random images, 50 RMSProp
steps on the codes, the quickstart's slim generator) against a bare loop of the same
number of forward+backward passes of G w.r.t. z with torch's RMSprop on the same batch. The two
are timed in interleaved rounds so that machine noise hits both alike; the median of the per-round
ratios is printed (target <= 1.2x).

Inception: the throughput of our feature path (quantization of the generator's float output, the
extractor wrapper, collection on the CPU) relative to torch-fidelity's bare extractor on ready
uint8 batches (target >= 0.9x). Without --inception-weights it uses random weights of the real
shapes, so it runs offline.

Shared pass: IS, FID and KID of the SNGAN standard CNN's samples as three metric objects, each running
Inception over its own samples (how each score alone would be measured), against one SampleQuality
computing all three from one pass (target >= 2.5x: the extractor dominates); the three numbers agree.

Export: ``sngan_repro.sample`` to a .npz and to PNG files (load the checkpoint, generate the metrics'
samples, write) relative to a bare forward of the same generator over as many codes in the same batches
(target >= 0.8x).

    .venv/bin/python scripts/bench_eval.py [--images 200] [--steps 50] [--rounds 5] [--threads N] [--device cpu]
        [--override arch.width=0.5 dataset.image_size=32 ...] [--sections shared export ...]
"""

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from sngan_repro import build_models, compose
from sngan_repro.metrics.reconstruction import reconstruction_loss


def interleaved_times(candidates: dict[str, Callable[[], None]], rounds: int, device: torch.device) -> dict:
    """Wall times of each callable over ``rounds`` rounds, after one warm-up call each. Every round runs all
    candidates back to back, in reversed order every other round, so that slow drifts of a shared machine's
    load hit them alike; compare them round by round (``paired_ratio``)."""
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for function in candidates.values():
        function()
    times = {name: [] for name in candidates}
    for round_index in range(rounds):
        order = list(candidates.items())
        for name, function in order if round_index % 2 == 0 else reversed(order):
            synchronize()
            start = time.perf_counter()
            function()
            synchronize()
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of the per-round ratio: robust to rounds that the machine slowed down as a whole."""
    return statistics.median(a / b for a, b in zip(numerator, denominator))


def reconstruction_section(args: argparse.Namespace, device: torch.device) -> float:
    """Running reconstruction evaluation / bare RMSprop loop of G fwd+bwd w.r.t. z: the median per-round time ratio."""
    cfg = compose(["experiment=quickstart", *args.override])
    generator = build_models(cfg)[0].to(device)
    channels, size, latent_dim = cfg.dataset.channels, cfg.dataset.image_size, cfg.arch.latent_dim
    low, high = cfg.arch.output_range
    images = torch.randint(0, 256, (args.images, channels, size, size), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0)).to(device)

    frozen = copy.deepcopy(generator).eval().requires_grad_(False)
    target = images.float() / 255 * (high - low) + low  # compared in G's own units: no per-step mapping

    def raw_loop() -> None:
        z = torch.zeros(args.images, latent_dim, device=device, requires_grad=True)
        optimizer = torch.optim.RMSprop([z], lr=0.01, alpha=0.9, eps=1e-6)
        for _ in range(args.steps):
            optimizer.zero_grad(set_to_none=True)
            (frozen(z) - target).square().sum().backward()
            optimizer.step()

    def evaluation() -> None:
        reconstruction_loss(generator, images, latent_dim, args.steps, cfg.arch.output_range)

    times = interleaved_times({"evaluation": evaluation, "raw": raw_loop}, args.rounds, device)
    evaluation_ms, raw_ms = (statistics.median(times[name]) * 1e3 for name in ("evaluation", "raw"))
    print(f"reconstruction: {args.images} images, {args.steps} steps, G {cfg.choices.arch} width {cfg.arch.width}, "
          f"{size}x{size}x{channels}, {device.type}, {torch.get_num_threads()} threads; median of {args.rounds} "
          f"rounds: eval {evaluation_ms:.0f} ms, raw {raw_ms:.0f} ms")
    return paired_ratio(times["evaluation"], times["raw"])


def random_inception_weights(path: str) -> str:
    """The tests' random Inception weights (tests/helpers/inception.py): test support patches torch-fidelity's
    internals, so it is kept out of the installed package; this script runs from a checkout, as the tests do."""
    tests = str(Path(__file__).resolve().parent.parent / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from helpers.inception import write_random_weights

    return write_random_weights(path)


def inception_section(args: argparse.Namespace, device: torch.device) -> float:
    """Throughput of our Inception feature path (quantize the generator's float output, extract
    pool features and logits, collect them on the CPU) relative to torch-fidelity's bare extractor
    on ready uint8 batches: bare time / our time, median of per-round ratios."""
    import tempfile

    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from sngan_repro.data.pixels import to_uint8_truncated
    from sngan_repro.metrics.inception import load_inception
    from sngan_repro.metrics.scores import extract

    with tempfile.TemporaryDirectory() as folder:
        weights = args.inception_weights or random_inception_weights(f"{folder}/weights.pth")
        ours = load_inception(weights, device)
        bare = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                           feature_extractor_weights_path=weights).to(device)
    generated = torch.rand(args.inception_images, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    generated = generated.to(device)
    ready = [to_uint8_truncated(batch, (-1, 1)) for batch in generated.split(args.inception_batch)]

    def our_path() -> None:
        extract(ours, (to_uint8_truncated(batch, (-1, 1)) for batch in generated.split(args.inception_batch)), device)

    def bare_extractor() -> None:
        with torch.no_grad():
            for batch in ready:
                bare(batch)

    times = interleaved_times({"ours": our_path, "bare": bare_extractor}, args.inception_rounds, device)
    print(f"inception: {args.inception_images} images of 32x32 in batches of {args.inception_batch}, {device.type}; "
          f"median of {args.inception_rounds} rounds: ours {statistics.median(times['ours']):.2f} s, "
          f"bare {statistics.median(times['bare']):.2f} s")
    return paired_ratio(times["bare"], times["ours"])


# the SNGAN standard CNN at CIFAR-10's shape, fed from the embedded digits as RGB (CIFAR-10 is not here offline)
CIFAR_SHAPED = ["experiment=sngan_cifar10_cnn", "dataset=digits", "dataset.channels=3"]


def shared_pass_section(args: argparse.Namespace, device: torch.device) -> float:
    """IS+FID+KID as three metric objects (one pass each) / as one object (one shared pass): the median per-round
    time ratio, the real features prepared (cached) beforehand as in any evaluation after the first."""
    import tempfile

    from sngan_repro.data import build_datamodule
    from sngan_repro.metrics import MetricSetup, SampleQuality
    from sngan_repro.metrics.inception import load_inception
    from sngan_repro.module import GAN

    cfg = compose(CIFAR_SHAPED)
    gan = GAN(cfg).to(device).eval()
    count = args.shared_images
    scores = {"inception_score": {"samples": count, "splits": 1}, "fid": {"samples": count, "real": count},
              "kid": {"samples": count, "real": count, "subsets": 10, "subset_size": count // 2}}
    with tempfile.TemporaryDirectory() as folder:
        extractor = load_inception(args.inception_weights or random_inception_weights(f"{folder}/weights.pth"), device)
        settings = {"extractor": lambda device: extractor, "cache_dir": folder, "batch_size": args.inception_batch}
        separate = [SampleQuality(**settings, **{score: value}) for score, value in scores.items()]
        shared = SampleQuality(**settings, **scores)
        setup = MetricSetup(build_datamodule(cfg), device, dict(cfg.dataset))
        for metric in [*separate, shared]:
            metric.prepare(setup)
        alone = {name: value for metric in separate for name, value in metric.compute(gan).items()}
        together = shared.compute(gan)
        assert all(abs(together[name] - value) <= 1e-6 * abs(value) for name, value in alone.items()), (alone, together)
        times = interleaved_times({"separate": lambda: [metric.compute(gan) for metric in separate],
                                   "shared": lambda: shared.compute(gan)}, args.inception_rounds, device)
    print(f"shared pass: IS+FID+KID of {count} samples of {cfg.choices.arch} 32x32x3 in batches of "
          f"{args.inception_batch}, {device.type}; median of {args.inception_rounds} rounds: three objects "
          f"{statistics.median(times['separate']):.2f} s, one {statistics.median(times['shared']):.2f} s; "
          f"the same numbers ({', '.join(f'{name} {value:.4g}' for name, value in together.items())})")
    return paired_ratio(times["separate"], times["shared"])


def export_section(args: argparse.Namespace, device: torch.device) -> float:
    """Bare generator forward / ``sample`` to a .npz (and, printed, to PNG files): the median per-round ratio of
    times, i.e. the export's throughput relative to the bare forward's."""
    import itertools
    import shutil
    import tempfile

    from sngan_repro.module import load_gan
    from sngan_repro.sample import sample
    from sngan_repro.train import run

    with tempfile.TemporaryDirectory() as folder:
        run(compose([*CIFAR_SHAPED, "train.steps=1", "logger=none", "metrics=none", "train.checkpoint_every=1",
                     "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
                     f"paths.output_dir={folder}/run"]))
        checkpoint = f"{folder}/run/checkpoints/last.ckpt"
        generator, latent_dim = (lambda gan: (gan.generator, gan.cfg.arch.latent_dim))(load_gan(checkpoint, device))
        count, batch, exports = args.export_images, args.inception_batch, itertools.count()

        def bare() -> None:
            with torch.no_grad():
                for start in range(0, count, batch):
                    generator(torch.randn(min(batch, count - start), latent_dim, device=device))

        def export(suffix: str) -> Callable[[], None]:
            def write() -> None:
                output = Path(folder) / f"export_{next(exports)}{suffix}"
                sample(checkpoint, count, str(output), batch_size=batch, device=str(device))
                shutil.rmtree(output) if output.is_dir() else output.unlink()
            return write

        times = interleaved_times({"bare": bare, "npz": export(".npz"), "png": export("")}, args.rounds, device)
    print(f"export: {count} images of 32x32x3 in batches of {batch}, {device.type}; median of {args.rounds} rounds: "
          f"bare forward {statistics.median(times['bare']):.2f} s, sample to .npz {statistics.median(times['npz']):.2f}"
          f" s, to PNG files {statistics.median(times['png']):.2f} s (PNG throughput / bare: "
          f"{paired_ratio(times['bare'], times['png']):.2f}x)")
    return paired_ratio(times["bare"], times["npz"])


# label -> (section, comparison, target): each section times one metric against its unavoidable raw cost
SECTIONS = {
    "reconstruction eval / raw G fwd+bwd": (reconstruction_section, "<=", 1.2),
    "inception feature throughput, ours / bare extractor": (inception_section, ">=", 0.9),
    "IS+FID+KID evaluation time, one pass per score / one shared pass": (shared_pass_section, ">=", 2.5),
    "export throughput, sample to .npz / bare generator forward": (export_section, ">=", 0.8),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200, help="reconstruction: held-out images per evaluation")
    parser.add_argument("--steps", type=int, default=50, help="reconstruction: RMSProp steps on the codes")
    parser.add_argument("--rounds", type=int, default=5, help="timed repetitions of each candidate, interleaved")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--override", nargs="*", default=[], help="config overrides on top of experiment=quickstart")
    parser.add_argument("--inception-weights", help="inception: a weights file (default: random weights, offline)")
    parser.add_argument("--inception-images", type=int, default=64)
    parser.add_argument("--inception-batch", type=int, default=32)
    parser.add_argument("--inception-rounds", type=int, default=3)
    parser.add_argument("--shared-images", type=int, default=200, help="shared pass: samples per score")
    parser.add_argument("--export-images", type=int, default=2000, help="export: images per export")
    parser.add_argument("--sections", nargs="+", choices=["reconstruction", "inception", "shared_pass", "export"],
                        default=["reconstruction", "inception", "shared_pass", "export"])
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    for label, (section, comparison, target) in SECTIONS.items():
        if section.__name__.removesuffix("_section") in args.sections:
            print(f"{label}: {section(args, device):.2f}x (target {comparison} {target}x)", flush=True)


if __name__ == "__main__":
    main()
