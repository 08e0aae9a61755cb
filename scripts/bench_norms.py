"""Cost of one critic update per discriminator normalization, relative to norm=none.

The SAN paper's Appendix F (standard CNN, CIFAR-10, batch 64, on a GPU) reports SN 1.13x,
SAN 1.16x and WGAN-GP 1.40x the unnormalized critic update. This measures the same thing with
our code path (``GAN.discriminator_update``: fakes from G, D on real and fake, loss + penalty,
backward, Adam step, the normalization's post-update hook). Each round times every method right beside a
`norm=none` measurement, the pair in alternating order, so that machine noise hits both alike, and prints each
method's median (and quartiles) over the rounds of its time relative to its `none` neighbour.

    .venv/bin/python scripts/bench_norms.py [--batch 64] [--rounds 15] [--updates 3] [--device cpu]
        [--output benchmarks/critic_update_{device}.json]
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from sngan_repro import compose
from sngan_repro.module import GAN

METHODS = ["none", "sn", "san", "wn", "bn", "ln", "ortho", "clip", "gp"]


def critic_update_ratios(methods: list[str], batch: int, rounds: int, updates: int, device: torch.device,
                         overrides: tuple[str, ...] = ()) -> dict:
    """Each of ``methods``' critic update time relative to norm=none's (median, quartiles and every round's ratio),
    on the standard CNN at 32x32 unless ``overrides`` change it; printed as a table too."""
    methods = ["none", *[name for name in methods if name != "none"]]  # the reference of every ratio
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    size = compose(list(overrides)).dataset.image_size if overrides else 32
    real = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    setups = {}
    for name in methods:
        loss = "wgan" if name in ("clip", "gp") else "nonsat"  # as each method is used in Miyato's Table 2
        module = GAN(compose([f"norm={name}", f"loss={loss}", f"train.batch_size={batch}", *overrides])).to(device)
        optimizer = torch.optim.Adam(module.discriminator.parameters(), lr=1e-4, betas=(0.5, 0.9))
        for _ in range(2):  # warm-up (allocator, cuDNN autotuning)
            module.discriminator_update(real, optimizer)
        setups[name] = (module, optimizer)

    def seconds_per_update(name: str) -> float:
        module, optimizer = setups[name]
        synchronize()
        start = time.perf_counter()
        for _ in range(updates):
            module.discriminator_update(real, optimizer)
        synchronize()
        return (time.perf_counter() - start) / updates

    # each method is timed right beside a norm=none measurement, the two in alternating order from round to round,
    # so that the machine's slow drifts cancel in the ratio
    times = {name: [] for name in methods}
    ratios = {name: [] for name in methods}
    for round_index in range(rounds):
        for name in methods[1:]:
            pair = ("none", name) if round_index % 2 == 0 else (name, "none")
            measured = dict(zip(pair, (seconds_per_update(side) for side in pair)))
            times["none"].append(measured["none"])
            times[name].append(measured[name])
            ratios[name].append(measured[name] / measured["none"])
            ratios["none"].append(1.0)
    print(f"one critic update, standard CNN, batch {batch}, {size}x{size}, {device.type}, {torch.get_num_threads()} "
          f"threads; median (and quartiles) over {rounds} rounds x {updates} updates of the time relative "
          f"to norm=none timed beside it; none = {statistics.median(times['none']) * 1e3:.1f} ms")
    results = {}
    for name in methods:
        low, _, high = statistics.quantiles(ratios[name], n=4)
        results[name] = {"ms": 1e3 * statistics.median(times[name]), "ratio": statistics.median(ratios[name]),
                         "ratio_quartiles": [low, high], "ratios": ratios[name]}
        print(f"{name:>6s}  {results[name]['ratio']:5.3f}x  ({low:.3f}-{high:.3f})")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--updates", type=int, default=3, help="critic updates timed per method per round")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--output", default=None, help="also write the results as JSON ({device}: cpu or cuda)")
    args = parser.parse_args()
    device = torch.device(args.device)
    results = critic_update_ratios(args.methods, args.batch, args.rounds, args.updates, device)
    if args.output:
        path = Path(args.output.format(device=device.type))
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"device": device.type, "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "batch": args.batch, "rounds": args.rounds, "updates_per_round": args.updates, "methods": results}
        path.write_text(json.dumps(record, indent=1) + "\n")
        print(f"written to {path}")


if __name__ == "__main__":
    main()
