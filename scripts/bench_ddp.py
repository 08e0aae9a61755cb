"""DDP's cost on this machine: the same run (same global batch) in one process and in N processes, alternated.

    python scripts/bench_ddp.py [--processes 2] [--pairs 3] [--steps 200] [-- extra overrides]

Each run is the quickstart at ``--steps`` generator updates through the real command line; its training time is
``wall_seconds`` of its run.json (fit start to end: no interpreter start-up, data or metric preparation). The pairs
alternate, and the ratio is taken pair by pair so that the machine's drift cancels; the median is printed.
On CPU the N processes share the same cores, so the ratio is the cost of DDP's communication and of splitting the
batch, not a speed-up; on N GPUs the same command measures the scaling.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def timed_run(directory: Path, steps: int, extra: list[str], processes: int) -> float:
    overrides = ["experiment=quickstart", f"train.steps={steps}", "metrics=none", "logger=none",
                 "train.diagnostics_every=0", "train.checkpoint_every=0", "train.sample_every=1000000",
                 "trainer.enable_progress_bar=false", f"hydra.run.dir={directory}", *extra]
    if processes > 1:
        overrides += ["trainer=ddp", "trainer.accelerator=cpu", f"trainer.devices={processes}"]
    subprocess.run([sys.executable, "-m", "sngan_repro.train", *overrides], check=True, capture_output=True)
    return json.loads((directory / "run.json").read_text())["wall_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        for pair in range(args.pairs):
            single = timed_run(Path(folder) / f"single{pair}", args.steps, args.overrides, 1)
            parallel = timed_run(Path(folder) / f"ddp{pair}", args.steps, args.overrides, args.processes)
            ratios.append(parallel / single)
            print(f"pair {pair}: 1 process {args.steps / single:.2f} it/s, {args.processes} processes "
                  f"{args.steps / parallel:.2f} it/s, time ratio {parallel / single:.3f}", flush=True)
    print(f"median time ratio, {args.processes} processes / 1 (same global batch): {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
