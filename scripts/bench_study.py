"""The cost of a study's driver: a study of k draws against a plain sweep of the same k runs (the same settings, the
drawn learning rates given as a sweep) through the same launcher, alternating, in pairs (docs/studies.md).

    .venv/bin/python scripts/bench_study.py --draws 6 --pairs 3

Prints each pair's wall times, the median ratio study/sweep and the median overhead per draw in seconds.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parent.parent
# one method, one parameter whose value does not change a run's cost, short runs: the driver's cost shows
RUNS = ["study=digits", "train.steps=100", "~study.methods.none", "~study.methods.wn", "~study.methods.gp",
        "~study.space", "+study.methods.sn.space={optim.lr_g: {distribution: log_uniform, low: 1e-4, high: 1e-3}}",
        "study.seeds=[]"]


def timed(command: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    train = [sys.executable, "-m", "sngan_repro.train", "-m", *RUNS, f"study.n_draws={args.draws}"]
    with tempfile.TemporaryDirectory() as folder:
        first = Path(folder) / "draws"
        subprocess.run([*train, f"hydra.sweep.dir={first}"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        storage = optuna.storages.RDBStorage(f"sqlite:///{first / 'study.db'}")
        rates = [trial.params["optim.lr_g"] for trial in optuna.load_study(study_name="digits/sn",
                                                                           storage=storage).get_trials()]
        sweep = [*train, "hydra/sweeper=basic", "norm=sn", f"optim.lr_g={','.join(map(repr, rates))}"]
        ratios, overheads = [], []
        for pair in range(args.pairs):
            study_seconds = timed([*train, f"hydra.sweep.dir={folder}/study{pair}"])
            sweep_seconds = timed([*sweep, f"hydra.sweep.dir={folder}/sweep{pair}"])
            ratios.append(study_seconds / sweep_seconds)
            overheads.append((study_seconds - sweep_seconds) / args.draws)
            print(f"pair {pair}: study {study_seconds:.1f} s, sweep {sweep_seconds:.1f} s, "
                  f"ratio {ratios[-1]:.3f}, overhead per draw {overheads[-1]:+.2f} s", flush=True)
    print(f"{args.draws} draws, {args.pairs} pairs: study/sweep median {statistics.median(ratios):.3f}, "
          f"overhead per draw median {statistics.median(overheads):+.2f} s")


if __name__ == "__main__":
    main()
