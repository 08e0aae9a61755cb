"""The papers' tables and figures as Hydra multirun sweeps.

    .venv/bin/python scripts/sweep.py --list                      # the sweeps and what they reproduce
    .venv/bin/python scripts/sweep.py miyato_table2 --print       # the commands, without running them
    .venv/bin/python scripts/sweep.py miyato_table2 [overrides]   # run them (extra overrides are appended,
                                                                  # e.g. hydra/launcher=... trainer=gpu)

Each sweep is one or more `python -m sngan_repro.train -m ...` commands; a comma list is a
Hydra sweep axis. Methods that need another loss (WGAN-GP, weight clipping) get their own command.
"""

import argparse
import shlex
import subprocess
import sys

SETTINGS_MIYATO = "optim=A,B,C,D,E,F"
SETTINGS_SAN = "optim=san_A,san_B,san_C,san_D,san_E,san_F"

SWEEPS: dict[str, tuple[str, list[list[str]]]] = {
    "miyato_table2": (
        "Miyato et al. Table 2 / Fig. 1: every critic regularizer x settings A-F, standard CNN, CIFAR-10",
        [
            ["experiment=sngan_cifar10_cnn", "loss=nonsat", "norm=bn,ln,wn,ortho,sn", SETTINGS_MIYATO],
            ["experiment=sngan_cifar10_cnn", "loss=nonsat", "norm=gp", SETTINGS_MIYATO],  # GAN-GP
            ["experiment=sngan_cifar10_cnn", "loss=wgan", "norm=gp,clip", SETTINGS_MIYATO],  # WGAN-GP, clipping
        ],
    ),
    "miyato_table2_stl10": (
        "Miyato et al. Table 2 / Fig. 2 on STL-10 (48 px)",
        [
            ["experiment=sngan_stl10_cnn", "loss=nonsat", "norm=ln,wn,ortho,sn", SETTINGS_MIYATO],
            ["experiment=sngan_stl10_cnn", "loss=wgan", "norm=gp,clip", SETTINGS_MIYATO],
        ],
    ),
    "san_table1": (
        "Kligvasser & Michaeli Table 1: SAN standard CNN and ResNet on CIFAR-10 and STL-10",
        [["experiment=san_cifar10_cnn,san_stl10_cnn,san_cifar10_resnet,san_stl10_resnet"]],
    ),
    "san_fig16": (
        "Kligvasser & Michaeli Fig. 16: SAN vs SN over their settings A-F, standard CNN, CIFAR-10",
        [["experiment=san_cifar10_cnn", "norm=san,sn", SETTINGS_SAN]],
    ),
    "san_fig17_seeds": (
        "Kligvasser & Michaeli Fig. 17: robustness over the paper's five seeds",
        [["experiment=san_cifar10_cnn", "norm=san,sn", "seed=5354,9017,11224,5577,61"]],
    ),
    "san_fig6_update_every": (
        "Kligvasser & Michaeli Fig. 6: SAN's constant recomputed every 1, 10, 100 or 1000 critic updates",
        [["experiment=san_cifar10_cnn", "norm.update_every=1,10,100,1000"]],
    ),
    "san_fig12_compensation": (
        "Kligvasser & Michaeli Figs. 12 and 15: subset ratio r and compensation factor g",
        [["experiment=san_cifar10_cnn", "norm.subset_ratio=1.0,0.5,0.25", "norm.compensation=null,1.0,1.1"]],
    ),
    "xiang_table2": (
        "Xiang & Li Table 2: vanilla / BN / WN / affine-WN DCGAN on CelebA (reconstruction loss)",
        [["experiment=xiang_celeba", "arch.variant=vanilla,bn,wn,wn_affine"]],
    ),
    "xiang_table7": (
        "Xiang & Li Table 7: vanilla / BN / WN DCGAN on CIFAR-10 (train+test pooled, 2,000 held out)",
        [["experiment=xiang_cifar10", "arch.variant=vanilla,bn,wn"]],
    ),
    "xiang_table8": (
        "Xiang & Li Table 8: BN / WN DCGAN on LSUN bedroom 256 px",
        [["experiment=xiang_lsun", "arch.variant=bn,wn"]],
    ),
    "mullery_heads": (
        "Mullery & Whelan: generator output heads tanh / BN+tanh / BN+clip, iWGAN on CIFAR-10 frogs",
        [["experiment=mullery_frogs", "arch.head=tanh,bn_tanh,bn_clip"]],
    ),
    "report_table1": (
        "Feng, Xu & Li Table 1: SNGAN vs WGAN-GP / BN / LN critics over their TTUR settings A-C",
        [
            ["experiment=repro_report", "loss=nonsat", "norm=sn,bn,ln", "optim=report_A,report_B,report_C"],
            ["experiment=repro_report", "loss=wgan", "norm=gp", "optim=report_A,report_B,report_C"],
        ],
    ),
}


def commands(name: str, extra: list[str]) -> list[list[str]]:
    return [[sys.executable, "-m", "sngan_repro.train", "-m", *overrides, *extra] for overrides in SWEEPS[name][1]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", nargs="?", choices=sorted(SWEEPS))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides appended to every command")
    parser.add_argument("--list", action="store_true", help="list the sweeps")
    parser.add_argument("--print", action="store_true", help="print the commands instead of running them")
    args = parser.parse_args()
    if args.list or args.sweep is None:
        for name, (description, _) in sorted(SWEEPS.items()):
            print(f"{name:24s} {description}")
        return
    for command in commands(args.sweep, args.overrides):
        print(shlex.join(command), flush=True)
        if not args.print:
            subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
