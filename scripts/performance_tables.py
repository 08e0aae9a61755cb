"""The tables of docs/performance.md, rendered from the committed benchmark results (benchmarks/*_cpu.json).

    .venv/bin/python scripts/performance_tables.py           # rewrite the tables in docs/performance.md
    .venv/bin/python scripts/performance_tables.py --check   # exit 1 if a table differs from its JSON

Each table sits between ``<!-- table: <name> -->`` and ``<!-- end table -->`` in the document, where <name> is the
JSON file's stem (``train_cpu`` for benchmarks/train_cpu.json); everything between the two markers is replaced,
everything else is left as written. `make bench` writes the JSON files; run this script after it, so that the
numbers in the documentation are the measured ones (tests/test_docs.py checks that they are).
"""

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
BENCHMARKS = ROOT / "benchmarks"
BLOCK = re.compile(r"(<!-- table: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- end table -->)", re.DOTALL)

ARCHITECTURES = {"sngan_cnn": "standard CNN", "sngan_resnet": "ResNet"}
# Kligvasser & Michaeli, App. F: one critic update relative to the unnormalized critic, "on our system" (unnamed)
SAN_PAPER_APP_F = {"none": "1.00×", "sn": "1.13×", "san": "1.16×", "gp": "1.40× (WGAN-GP)"}


def _quartiles(entry: dict) -> str:
    low, high = entry["ratio_quartiles"]
    return f"({low:.2f}–{high:.2f})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _machine(data: dict) -> str:
    return f"torch {data['torch']}, {data['threads']} threads, device {data['device']}"


def train(data: dict) -> list[str]:
    """Ours against the hand-written loop, per architecture and normalization (scripts/bench_train.py)."""
    rows = [[ARCHITECTURES.get(r["arch"], r["arch"]), r["norm"], f"**{r['ratio']:.3f}** {_quartiles(r)}",
             f"{r['ours_it_per_s']:.3f}", f"{r['plain_it_per_s']:.3f}",
             f"{r['peak_memory_mb']['ours']:.0f} / {r['peak_memory_mb']['plain']:.0f}",
             f"{r['plain_fraction_of_matmul']:.2f}"] for r in data["results"]]
    note = f" {data['note']}" if data.get("note") else ""
    lines = [f"Measured with {_machine(data)}, batch {data['batch']}; ratios are medians (quartiles) over "
             f"{data['pairs']} pairs of {data['iterations_per_side']} iterations per side; the reference 2048² matrix "
             f"product ran at {data['matmul_flop_per_s'] / 1e9:.0f} GFLOP/s.{note}", ""]
    return lines + _table(["architecture", "norm", "ours / plain loop", "ours it/s", "plain it/s",
                           "peak MB ours / plain", "plain loop FLOP/s / matmul's"], rows)


def train_quickstart(data: dict) -> list[str]:
    """The quickstart preset as configured, per generator update (scripts/bench_train.py --no-grid)."""
    rows = []
    for r in data["results"]:
        cpu = r["cpu_time"]
        rows.append([f"`{r['setting']}`", f"{r['image_size']} px, width {r['width']}, batch {r['batch']}",
                     f"**{r['ratio']:.3f}** {_quartiles(r)}", f"{cpu['ratio']:.3f} {_quartiles(cpu)}",
                     f"{r['ours_ms']:.1f} / {r['plain_ms']:.1f}",
                     f"{r['ours_it_per_s']:.1f} / {r['plain_it_per_s']:.1f}",
                     f"{r['peak_memory_mb']['ours']:.0f} / {r['peak_memory_mb']['plain']:.0f}"])
    lines = [f"Measured with {_machine(data)}; medians (quartiles) over {data['pairs']} pairs, each side's window "
             f"{data['results'][0]['iterations_per_side']} generator updates.", ""]
    return lines + _table(["setting", "size", "ours / plain loop (wall time)", "ours / plain loop (process CPU time)",
                           "ms per update ours / plain", "it/s ours / plain", "peak MB ours / plain"], rows)


def critic_update(data: dict) -> list[str]:
    """One critic update per normalization against norm=none (scripts/bench_norms.py)."""
    methods = data["methods"]
    lines = [f"One critic update of the standard CNN (batch {data['batch']}, 32 px; `none` = "
             f"{methods['none']['ms']:.0f} ms here; {_machine(data)}), median (quartiles) over {data['rounds']} "
             f"rounds of {data['updates_per_round']} updates of its time relative to `norm=none` in the same round:",
             ""]
    rows = [[name, f"**{m['ratio']:.3f}×** {_quartiles(m)}", SAN_PAPER_APP_F.get(name, "")]
            for name, m in methods.items()]
    return lines + _table(["norm", "ours (CPU)", "SAN paper App. F (\"on our system\")"], rows)


def accelerations(data: dict) -> list[str]:
    """Each acceleration against the same plain loop; speed-up = the defaults' ratio over the option's."""
    results = data["results"]
    defaults = next(r for r in results if not r["option"])
    rows = [[f"`{r['option'] or '(defaults)'}`", f"{r['ratio']:.3f} {_quartiles(r)}", f"{r['ours_it_per_s']:.3f}",
             f"{defaults['ratio'] / r['ratio']:.2f}×", f"{r['peak_memory_mb']['ours']:.0f}"] for r in results]
    archs = sorted({f"{ARCHITECTURES.get(r['arch'], r['arch'])}, `norm={r['norm']}`" for r in results})
    lines = [f"{'; '.join(archs)}; measured with {_machine(data)}, batch {data['batch']}, {data['pairs']} pairs of "
             f"{data['iterations_per_side']} iterations per side:", ""]
    return lines + _table(["option", "ours / plain loop", "ours it/s", "speed-up on this CPU", "peak MB"], rows)


RENDERERS: dict[str, Callable[[dict], list[str]]] = {
    "train_cpu": train,
    "train_quickstart_cpu": train_quickstart,
    "critic_update_cpu": critic_update,
    "accelerations_cpu": accelerations,
}


def render(name: str, benchmarks: Path = BENCHMARKS) -> str:
    """The text between the markers of table ``name``: rendered from ``benchmarks/<name>.json``."""
    data = json.loads((benchmarks / f"{name}.json").read_text())
    return "\n".join(RENDERERS[name](data)) + "\n"


def rendered(text: str, benchmarks: Path = BENCHMARKS) -> str:
    """``text`` with every marked table replaced by its rendering."""
    names = [match["name"] for match in BLOCK.finditer(text)]
    unknown = sorted(set(names) - set(RENDERERS))
    if unknown:
        raise SystemExit(f"{', '.join(unknown)}: no renderer for these tables (known: {', '.join(RENDERERS)}).")
    return BLOCK.sub(lambda m: m.group(1) + render(m["name"], benchmarks) + m.group(4), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="verify the tables without writing; exit 1 if one differs")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--benchmarks", type=Path, default=BENCHMARKS)
    args = parser.parse_args()
    text = args.doc.read_text()
    new = rendered(text, args.benchmarks)
    found = {match["name"] for match in BLOCK.finditer(text)}
    missing = sorted(set(RENDERERS) - found)
    if args.check:
        if new != text or missing:
            why = f"tables without markers: {', '.join(missing)}" if missing else "a table differs from its JSON"
            sys.exit(f"{args.doc}: {why}; run .venv/bin/python scripts/performance_tables.py")
        print(f"{args.doc}: the {len(found)} tables match benchmarks/*.json")
        return
    args.doc.write_text(new)
    print(f"{args.doc}: {len(found)} tables written" + (f"; no markers for {', '.join(missing)}" if missing else ""))


if __name__ == "__main__":
    main()
