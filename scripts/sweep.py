"""The papers' tables and figures as Hydra multirun sweeps.

    .venv/bin/python scripts/sweep.py --list                      # the sweeps and what they reproduce
    .venv/bin/python scripts/sweep.py miyato_table2 --print       # the commands, without running them
    .venv/bin/python scripts/sweep.py miyato_table2 [overrides]   # run them (extra overrides are appended,
                                                                  # e.g. hydra/launcher=... trainer=gpu)
    .venv/bin/python scripts/sweep.py digits_settings --jobs 2 --report   # two commands at a time, then the report

Each sweep is one or more `python -m sngan_repro.train -m ...` commands; a comma list is a
Hydra sweep axis. Methods that need another loss (WGAN-GP, weight clipping) get their own command.
The commands of one sweep write into one folder, multirun/<sweep>/<day>_<time>/<command>/<job>, so
that `python -m sngan_repro.report multirun/<sweep>/<day>_<time>` makes the sweep's one table.
"""

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

SETTINGS_MIYATO = "optim=A,B,C,D,E,F"
SETTINGS_SAN = "optim=san_A,san_B,san_C,san_D,san_E,san_F"
STEPS_100K = "train.steps=100000"  # Miyato et al.: "100K for all experiments, unless otherwise noted"
SAN_ABLATION = "train.steps=80000"  # App. E: "the number of updates for the generator is set to 80K"
SAN_FIG6 = "train.steps=78125"  # Fig. 6: 100 epochs of CIFAR-10 at batch 64, one critic update per generator update
# digits_settings: Miyato et al. 2018, Sec. 4.1 / Table 1 (settings A-F) in miniature, for <= 20 min on 2 CPU cores
# (`make digits-settings`: the two commands side by side, one core each, then the report)
DIGITS = [
    "experiment=quickstart",
    "loss=nonsat",  # the standard loss for every critic, so that only the normalization differs (gp: GAN-GP)
    "norm=none,sn,wn,gp",  # unnormalized; spectral norm; the two regularizers Miyato et al. analyse most (Sec. 3)
    "dataset.image_size=24",  # the quickstart's 24 px: at 16 px even SN collapsed to one blob in 300 updates
    "arch.width=0.25",  # the quickstart's slim networks: at 0.125 SN learned about half as fast per update
    "train.batch_size=16",  # 2.5x cheaper than 64 on a CPU; SN at setting C: about the same FID per update
    "train.steps=240",  # generator updates for all 24 runs: what the budget affords (16 of them do n_dis=5)
    "metrics.measures.digits.every=40",  # digits IS/FID (2,000 samples) at 0, 40, ..., 240
    "train.sample_every=40",  # sample grids and pixel histograms at the metric points
    "train.diagnostics_every=40",  # critic spectral norms at the metric points
    "train.log_every=10",  # losses and critic-update times 24 times per run
    "train.checkpoint_every=0",  # the final checkpoint only (the report's singular values)
]

SWEEPS: dict[str, tuple[str, list[list[str]]]] = {
    "miyato_table2": (
        "Miyato et al. Table 2 (CIFAR-10): standard-loss rows of every critic regularizer (weight clipping and GAN-GP "
        "included) and WGAN-GP over settings A-F (the table reports each method's best), the hinge-loss SN row, the "
        "ResNet rows",
        [
            ["experiment=sngan_cifar10_cnn", "loss=nonsat", "norm=clip,gp,bn,ln,wn,ortho,sn", SETTINGS_MIYATO],
            ["experiment=sngan_cifar10_cnn", "loss=wgan", "norm=gp", SETTINGS_MIYATO],  # WGAN-GP
            ["experiment=sngan_cifar10_cnn"],  # SN-GANs, Eq.(17): hinge, setting B
            ["experiment=sngan_cifar10_resnet", "norm=ortho,sn"],  # ResNet rows, Eq.(17)
        ],
    ),
    "miyato_table2_stl10": (
        "Miyato et al. Table 2 (STL-10, 48 px): standard-loss rows over A-F at 100k updates, the 2x-update rows "
        "(200k) of orthonormal (setting C) and SN (setting B, standard and hinge loss), the ResNet rows",
        [
            ["experiment=sngan_stl10_cnn", "loss=nonsat", "norm=clip,ln,wn,ortho,sn", SETTINGS_MIYATO, STEPS_100K],
            ["experiment=sngan_stl10_cnn", "loss=wgan", "norm=gp", SETTINGS_MIYATO, STEPS_100K],
            ["experiment=sngan_stl10_cnn", "loss=nonsat", "norm=ortho", "optim=C"],  # Orthonormal (2x updates)
            ["experiment=sngan_stl10_cnn", "loss=nonsat,hinge"],  # SN-GANs (2x updates), and Eq.(17) (2x updates)
            ["experiment=sngan_stl10_resnet", "norm=ortho,sn"],
        ],
    ),
    "san_table1": (
        "Kligvasser & Michaeli Table 1: SAN standard CNN and ResNet on CIFAR-10 and STL-10",
        [["experiment=san_cifar10_cnn,san_stl10_cnn,san_cifar10_resnet,san_stl10_resnet"]],
    ),
    "san_fig14_convergence": (
        "Kligvasser & Michaeli Fig. 14: IS during training of SAN, SN and Vanilla, standard CNN, CIFAR-10, 80k updates",
        [["experiment=san_cifar10_cnn", "norm=san,sn,none", SAN_ABLATION]],
    ),
    "san_fig15_looseness": (
        "Kligvasser & Michaeli Fig. 15: SAN's bound loosened by the factor g between 0.5 and 1.5 (the grid is ours), "
        "80k updates",
        [["experiment=san_cifar10_cnn", "norm.compensation=0.5,0.75,1.0,1.1,1.25,1.5", SAN_ABLATION]],
    ),
    "san_fig16": (
        "Kligvasser & Michaeli Fig. 16: SAN, SN and Vanilla over their settings A-F, standard CNN, CIFAR-10, "
        "80k updates",
        [["experiment=san_cifar10_cnn", "norm=san,sn,none", SETTINGS_SAN, SAN_ABLATION]],
    ),
    "san_fig17_seeds": (
        "Kligvasser & Michaeli Fig. 17: SAN, SN and Vanilla over the paper's five seeds, setting B, 80k updates",
        [["experiment=san_cifar10_cnn", "norm=san,sn,none", "seed=5354,9017,11224,5577,61", SAN_ABLATION]],
    ),
    "san_fig6_update_every": (
        "Kligvasser & Michaeli Fig. 6: Vanilla, SN, and SAN normalized every 1, 10, 100 or 1000 critic updates, "
        "100 epochs",
        [
            ["experiment=san_cifar10_cnn", "norm=none,sn", SAN_FIG6],
            ["experiment=san_cifar10_cnn", "norm.update_every=1,10,100,1000", SAN_FIG6],
        ],
    ),
    "san_fig12_compensation_analogue": (
        "A CIFAR-10 analogue of Kligvasser & Michaeli Fig. 12 (subset ratio r x compensation g): the paper's numbers "
        "are Cityscapes label-to-image FIDs with SPADE, which this project does not build, so they are not comparable",
        [["experiment=san_cifar10_cnn", "norm.subset_ratio=1.0,0.5,0.25", "norm.compensation=1.0,1.1,1.2,1.3",
          SAN_ABLATION]],
    ),
    "xiang_table2": (
        "Xiang & Li Table 2: vanilla / BN / WN DCGAN on CelebA (reconstruction loss)",
        [["experiment=xiang_celeba", "arch.variant=vanilla,bn,wn"]],
    ),
    "xiang_tables3_4_instances": (
        "Xiang & Li Tables 3 and 4: three training instances each of the vanilla and BN models (seeds are ours)",
        [["experiment=xiang_celeba", "arch.variant=vanilla,bn", "seed=0,1,2"]],
    ),
    "xiang_tables5_6": (
        "Xiang & Li Tables 5 and 6 (App. D.2): the full-affine WN model and WN + mean-only BN, beside WN",
        [["experiment=xiang_celeba", "arch.variant=wn_affine,wn_mean_bn,wn"]],
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
        "Mullery & Whelan: generator output heads tanh / BN+tanh / BN+clip (and BN+clip frozen), iWGAN on CIFAR-10 "
        "frogs",
        [["experiment=mullery_frogs", "arch.head=tanh,bn_tanh,bn_clip"],
         ["experiment=mullery_frogs", "arch.head=bn_clip", "arch.head_frozen=true"]],
    ),
    "digits_settings": (
        "Miyato et al. Fig. 1 (robustness to Adam settings A-F) in miniature, offline, on scikit-learn's embedded "
        "8x8 digits at 24 px, NOT CIFAR-10: digits-classifier IS/FID of unnormalized, SN, WN and GAN-GP critics "
        "(standard loss), 240 generator updates instead of 100k (early training only); two commands of three "
        "settings each, balanced for --jobs 2",
        [[*DIGITS, "optim=A,B,D"], [*DIGITS, "optim=C,E,F"]],
    ),
    "report_table1": (
        "Feng, Xu & Li Table 1: SNGAN vs BEGAN / EBGAN / WGAN-GP / BN / LN critics over their TTUR settings A-C",
        [
            ["experiment=repro_report", "norm=sn", "optim=report_A,report_B,report_C"],
            # the report gives spectral normalization to SNGAN's generator only (Sec. 3); the BN, LN and WGAN-GP
            # rows' generators are unnormalized, as in the report's code for them
            ["experiment=repro_report", "norm=bn,ln", "gen_norm=none", "optim=report_A,report_B,report_C"],
            ["experiment=repro_report", "loss=wgan", "norm=gp", "gen_norm=none", "optim=report_A,report_B,report_C"],
            # the autoencoder critics, each with its own loss and its paper's (unnormalized) generator
            ["experiment=repro_report_began", "optim=report_A,report_B,report_C"],
            ["experiment=repro_report_ebgan", "optim=report_A,report_B,report_C"],
        ],
    ),
    "report_table1_code": (
        "Feng, Xu & Li Table 1 as the report's code ran it (experiment=repro_report_code_*): BEGAN / EBGAN / WGAN-GP "
        "with its infoGAN-style networks at 28 px, BN / LN with chainer-gan-lib's DCGAN and one Adam rate for both "
        "networks, over settings A-C; SNGAN's row as the text sets it (its notebook trains another network at 64 px: "
        "docs/fidelity.md); every row measured as the repository's README states (metrics=feng_readme)",
        [
            ["experiment=repro_report", "norm=sn", "optim=report_A,report_B,report_C"],
            ["experiment=repro_report_code_bn,repro_report_code_ln", "optim=report_A,report_B,report_C"],
            ["experiment=repro_report_code_wgan_gp", "optim=report_A,report_B,report_C"],
            # BEGAN.py fixes both rates at 2e-4 and reads only the settings' betas: C is B's run
            ["experiment=repro_report_code_began", "optim=report_A,report_B"],
            ["experiment=repro_report_code_ebgan", "optim=report_A,report_B,report_C"],
        ],
    ),
}


def commands(name: str, extra: list[str], folder: str) -> list[list[str]]:
    """The sweep's commands, each writing into ``folder/<its index>``."""
    return [[sys.executable, "-m", "sngan_repro.train", "-m", *overrides, *extra, f"hydra.sweep.dir={folder}/{index}"]
            for index, overrides in enumerate(SWEEPS[name][1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", nargs="?", choices=sorted(SWEEPS))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides appended to every command")
    parser.add_argument("--list", action="store_true", help="list the sweeps")
    parser.add_argument("--print", action="store_true", help="print the commands instead of running them")
    parser.add_argument("--report", action="store_true", help="then write the report of the sweep's folder")
    parser.add_argument("--jobs", type=int, default=1,
                        help="run this many of the sweep's commands side by side, each with 1/jobs of the CPU "
                             "threads (OMP_NUM_THREADS) and its output in <folder>/<command>.log; on a CPU, small "
                             "networks train faster side by side than one at a time on every core")
    args = parser.parse_intermixed_args()
    if args.list or args.sweep is None:
        for name, (description, _) in sorted(SWEEPS.items()):
            print(f"{name:24s} {description}")
        return
    # hydra.sweep.dir=<folder> among the overrides names the sweep's folder
    folders = [o.split("=", 1)[1] for o in args.overrides if o.startswith("hydra.sweep.dir=")]
    folder = folders[-1] if folders else f"multirun/{args.sweep}/{time.strftime('%Y-%m-%d_%H-%M-%S')}"
    extra = [o for o in args.overrides if not o.startswith("hydra.sweep.dir=")]
    report = ["-m", "sngan_repro.report", folder]
    sweep = commands(args.sweep, extra, folder)
    for command in [*sweep, *([[sys.executable, *report]] if args.report else [])]:
        print(shlex.join(command), flush=True)
    if args.print:
        return
    if args.jobs < 1:
        parser.error(f"--jobs={args.jobs} must be a positive number of commands at a time")
    failed = run_side_by_side(sweep, args.jobs, Path(folder)) if args.jobs > 1 else \
        [command for command in sweep if subprocess.run(command).returncode != 0]
    # a command fails when one of its runs could not do what it was asked (a diverging run is a result); the report
    # is made all the same: it lists the failed runs with their sentences
    if args.report:
        subprocess.run([sys.executable, *report], check=True)
    else:
        print(f"# the sweep's report: {shlex.join(['python', *report])}")
    if failed:
        sys.exit(f"{len(failed)} of the sweep's commands failed or had failed runs (see their output above or in "
                 f"{folder}/*.log).")


def run_side_by_side(sweep: list[list[str]], jobs: int, folder: Path) -> list[list[str]]:
    """Run the commands ``jobs`` at a time, each on its share of the CPU threads; return those that failed."""
    folder.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // jobs))}
    waiting, running, failed = list(enumerate(sweep)), [], []
    while waiting or running:
        while waiting and len(running) < jobs:
            index, command = waiting.pop(0)
            log = open(folder / f"{index}.log", "w")  # noqa: SIM115 (closed when its command ends)
            running.append((command, log, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                                           env=environment)))
            print(f"command {index} started; its output: {log.name}", flush=True)
        time.sleep(1)
        for entry in [entry for entry in running if entry[2].poll() is not None]:
            running.remove(entry)
            entry[1].close()
            if entry[2].returncode != 0:
                failed.append(entry[0])
    return failed

if __name__ == "__main__":
    main()
