"""The five papers' published numbers as data, so that reports can put this project's numbers beside them.

Each number carries its paper, table and the paper's own row label, dataset, architecture, method, metric, the
protocol *as the paper states it* ("not stated" where it does not) and ``run``: the overrides of
``python -m sngan_repro.train -m`` that train that row (a comma list is a sweep axis whose best point the paper
reports; null where this project cannot run it). Optional: ``std``, ``loss``, ``optim``, ``n_dis``, ``g_steps``
(run length in generator updates), ``iteration`` (the checkpoint the number is from), ``evaluate`` (the metrics
preset of its protocol), ``quoted_by``.
"""

from importlib import resources

import yaml

REQUIRED = ("paper", "table", "row", "dataset", "arch", "method", "metric", "value", "protocol", "run")


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
