"""The README's pictures from a quickstart run's own files: the fixed-z sample grids over training as one strip
(``quickstart_samples.png``, each grid labelled with its generator update) and the digits-classifier FID curve
(``quickstart_fid.png``, each point labelled with its value), plus ``quickstart_figures.json`` with the numbers.

    python scripts/readme_figures.py outputs/<date>/<time> --output docs/images
"""

import argparse
import json
import re
import sys
from pathlib import Path

from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from sngan_repro.report.runs import Run

FID_TAG = re.compile(r"^digits_fid/")
LABEL_HEIGHT = 14  # pixels above each grid for its label
ROWS_SHOWN = 4  # rows of each 8x8 sample grid in the strip (the same codes in every grid)


def sample_strip(samples: Path, rows: int = ROWS_SHOWN) -> tuple[Image.Image, list[int]]:
    """The grids ``samples/g_step_*.png`` side by side, cropped to their first ``rows`` rows of images."""
    files = sorted(samples.glob("g_step_*.png"))
    if not files:
        raise SystemExit(f"error: {samples} holds no g_step_*.png sample grids; give a run directory of "
                         f"sngan_repro.train.")
    steps = [int(path.stem.removeprefix("g_step_")) for path in files]
    grids = [Image.open(path).convert("RGB") for path in files]
    width, height = grids[0].size
    cropped = [grid.crop((0, 0, width, round(height * rows / 8))) for grid in grids]
    gap = 6
    strip = Image.new("RGB", (len(cropped) * (width + gap) - gap, cropped[0].height + LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(strip)
    for index, (grid, step) in enumerate(zip(cropped, steps)):
        left = index * (width + gap)
        strip.paste(grid, (left, LABEL_HEIGHT))
        draw.text((left + 2, 1), f"update {step}", fill="black")
    return strip, steps


def fid_curve(run: Run) -> tuple[Figure, str, list[tuple[int, float]]]:
    tags = [tag for tag in run.scalars() if FID_TAG.match(tag)]
    if not tags:
        raise SystemExit(f"error: {run.directory} logged no digits_fid/* scalar; run it with metrics=digits "
                         f"(experiment=quickstart does).")
    curve = run.scalars()[tags[0]]
    points = [(int(step), float(value)) for step, value in zip(curve.steps, curve.values)]
    figure = Figure(figsize=(6, 3.2), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(curve.steps, curve.values, marker="o")
    for step, value in points:
        axes.annotate(f"{value:.1f}", (step, value), textcoords="offset points", xytext=(0, 6), ha="center",
                      fontsize=8)
    axes.set_yscale("log")
    axes.set_xlabel("generator updates")
    axes.set_ylabel(f"FID ({tags[0]})")
    axes.set_title(f"{run.record.get('command', run.directory.name)}", fontsize=8)
    axes.grid(alpha=0.3)
    return figure, tags[0], points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run directory of sngan_repro.train (experiment=quickstart)")
    parser.add_argument("--output", type=Path, default=Path("docs/images"))
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    strip, steps = sample_strip(args.run / "samples")
    strip.save(args.output / "quickstart_samples.png")
    figure, tag, points = fid_curve(Run(args.run))
    figure.savefig(args.output / "quickstart_fid.png", dpi=110)
    numbers = {"run": str(args.run), "sample_steps": steps, "fid_tag": tag, "fid": points,
               "wall_seconds": Run(args.run).record.get("wall_seconds")}
    (args.output / "quickstart_figures.json").write_text(json.dumps(numbers, indent=2) + "\n")
    print(f"written: {args.output / 'quickstart_samples.png'}, {args.output / 'quickstart_fid.png'}, "
          f"{args.output / 'quickstart_figures.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
