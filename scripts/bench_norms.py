"""Cost of one critic update per discriminator normalization, relative to norm=none.

The SAN paper's Appendix F (standard CNN, CIFAR-10, batch 64, on a GPU) reports SN 1.13x,
SAN 1.16x and WGAN-GP 1.40x the unnormalized critic update. This measures the same thing with
our code path (``GAN.discriminator_update``: fakes from G, D on real and fake, loss + penalty,
backward, Adam step, the normalization's post-update hook), interleaving the methods round by round so that machine
noise hits them alike, and prints each method's median time relative to `none` in one run.

    .venv/bin/python scripts/bench_norms.py [--batch 64] [--rounds 7] [--updates 3] [--device cpu]
"""

import argparse
import statistics
import time

import torch

from sngan_repro import compose
from sngan_repro.module import GAN

METHODS = ["none", "sn", "san", "wn", "bn", "ln", "ortho", "clip", "gp"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--updates", type=int, default=3, help="critic updates timed per method per round")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--methods", nargs="+", default=METHODS)
    args = parser.parse_args()

    device = torch.device(args.device)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    real = torch.rand(args.batch, 3, 32, 32, device=device) * 2 - 1
    setups = {}
    for name in args.methods:
        loss = "wgan" if name in ("clip", "gp") else "nonsat"  # as each method is used in Miyato's Table 2
        module = GAN(compose([f"norm={name}", f"loss={loss}", f"train.batch_size={args.batch}"])).to(device)
        optimizer = torch.optim.Adam(module.discriminator.parameters(), lr=1e-4, betas=(0.5, 0.9))
        for _ in range(2):  # warm-up (allocator, cuDNN autotuning)
            module.discriminator_update(real, optimizer)
        setups[name] = (module, optimizer)

    times = {name: [] for name in args.methods}
    for _ in range(args.rounds):
        for name, (module, optimizer) in setups.items():
            synchronize()
            start = time.perf_counter()
            for _ in range(args.updates):
                module.discriminator_update(real, optimizer)
            synchronize()
            times[name].append((time.perf_counter() - start) / args.updates)

    baseline = statistics.median(times["none"])
    print(f"one critic update, standard CNN, batch {args.batch}, 32x32, {device.type}, "
          f"median of {args.rounds} rounds x {args.updates} updates; none = {baseline * 1e3:.1f} ms")
    for name in args.methods:
        print(f"{name:>6s}  {statistics.median(times[name]) / baseline:5.2f}x")


if __name__ == "__main__":
    main()
