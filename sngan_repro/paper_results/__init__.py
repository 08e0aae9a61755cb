"""The five papers' published numbers as data, each with its paper, table, dataset, method,
setting and protocol, so that reports can put this project's numbers beside them."""

from importlib import resources

import yaml

REQUIRED = ("paper", "table", "dataset", "arch", "method", "metric", "value", "protocol")


def load_paper_results() -> list[dict]:
    """Every published number, one dict per number (the keys of ``REQUIRED`` and more)."""
    records = []
    for entry in sorted(resources.files(__package__).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        document = yaml.safe_load(entry.read_text())
        for result in document["results"]:
            record = {"paper": document["paper"], "source_file": entry.name, **result}
            missing = [key for key in REQUIRED if key not in record]
            if missing:
                raise ValueError(f"{entry.name}: {result} lacks {', '.join(missing)}")
            records.append(record)
    return records
