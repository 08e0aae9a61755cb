"""The five papers' published numbers as data, so that reports can put this project's numbers beside them.

Each number carries its paper, table and the paper's own row label, dataset, architecture, method, metric, the
protocol *as the paper states it* ("not stated" where it does not) and ``run``: the overrides of
``python -m sngan_repro.train -m`` that train that row (a comma list is a sweep axis whose best point the paper
reports; null where this project cannot run it). Optional: ``std``, ``loss``, ``optim``, ``n_dis``, ``g_steps``
(run length in generator updates), ``iteration`` (the checkpoint the number is from), ``evaluate`` (the metrics
preset of its protocol), ``quoted_by``.
"""

import functools
from importlib import resources

import yaml

from ..config import CONFIG_DIR
from ..nn.heads import HEADS

REQUIRED = ("paper", "table", "row", "dataset", "arch", "method", "metric", "value", "protocol", "run")
# the tags that say which run a number is of; the others (run length, n_dis) are said beside it when they differ
IDENTITY_TAGS = ("dataset", "arch", "method", "loss", "optim")


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


def _studied(tags: dict, method: str) -> str:
    """The value, in a run's tags, of the option a paper's ``method`` names: Xiang & Li's model variant
    (``arch.variant``), a loss with its own critic (``loss``: BEGAN, EBGAN), Mullery & Whelan's generator head
    (``arch.head``), else the critic normalization."""
    if tags["variant"] is not None:
        return tags["variant"]
    if _is_option("loss", method):  # a method that is its own loss and critic (BEGAN, EBGAN)
        return tags["loss"]
    return tags["head"] if method in HEADS else tags["norm"]


def _run_tags(cfg) -> dict:
    """What a run's config says for every tag a published number may carry (read once per run)."""
    return {"dataset": cfg.choices.dataset, "arch": cfg.choices.arch, "norm": cfg.choices.norm,
            "variant": cfg.arch.get("variant"), "head": cfg.arch.get("head"), "loss": cfg.choices.loss,
            "optim": cfg.choices.optim, "n_dis": cfg.optim.n_dis, "g_steps": cfg.train.steps}


@functools.cache
def _is_option(group: str, name) -> bool:
    return isinstance(name, str) and (CONFIG_DIR / group / f"{name}.yaml").is_file()


def tag_mismatches(record: dict, cfg) -> dict[str, str]:
    """{tag: 'paper …, run …'} for each of the record's tags a run's composed config differs in. An ``optim``
    that is not one setting (e.g. "best of A-F") matches every setting; ``g_steps`` is compared with
    ``train.steps``, ``iteration`` (the checkpoint a number is from) must be within it."""
    return _mismatches(record, _run_tags(cfg))


def _mismatches(record: dict, tags: dict) -> dict[str, str]:
    run = {**{tag: tags[tag] for tag in ("dataset", "arch", "loss", "optim", "n_dis", "g_steps")},
           "method": _studied(tags, record["method"])}
    differing = {}
    for tag, value in run.items():
        published = record.get(tag)
        if published is None or (tag == "optim" and not _is_option("optim", published)):
            continue
        if tag == "n_dis" and not isinstance(published, int):  # "best of A-F"
            continue
        if published != value:
            differing[tag] = f"paper {published}, run {value}"
    if record.get("iteration") and tags["g_steps"] < record["iteration"]:
        differing["iteration"] = f"paper's checkpoint {record['iteration']}, run ends at {tags['g_steps']}"
    return differing


def published_for(cfg, records: list[dict] | None = None) -> list[dict]:
    """The published numbers of runs configured as ``cfg`` in the identity tags (dataset, architecture, method,
    loss, optimizer setting); the run length and n_dis may differ and are for the caller to say."""
    records = load_paper_results() if records is None else records
    tags = _run_tags(cfg)
    return [record for record in records if record["run"] is not None
            and not set(_mismatches(record, tags)) & set(IDENTITY_TAGS)]
