"""Evaluate a checkpoint: ``python -m sngan_repro.evaluate ckpt=<path> [metrics=<preset>]``.

Writes a JSON with every number, its protocol, the checkpoint, the training and evaluation
configs and the library versions. The metrics preset decides what is computed: every metric object
of ``metrics.measures`` (their ``every`` is ignored), as during training; without ``metrics=``, those the
checkpoint's run measured during training.
"""

import functools
import json
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from .config import CONFIG_DIR, check_given, resolve, settings_of, with_local_paths
from .data import build_datamodule
from .errors import ConfigError, SnganReproError
from .metrics import MetricSetup, instantiate_metrics
from .metrics.base import check_heldout, metric_cache_folders
from .module import chosen_device, load_gan
from .overrides import run_command
from .run_directory import RunDirectory, check_folders_writable, versions


def evaluate(cfg: DictConfig) -> dict:
    """Compute the preset's metrics for ``cfg.ckpt``; return (and write) the JSON document."""
    check_given(resolve(cfg))
    device = chosen_device(cfg.device)
    module = load_gan(cfg.ckpt, device)
    # the checkpoint's dataset and metric caches, looked up under this command's paths
    train_cfg = with_local_paths(module.cfg, cfg.paths)
    if cfg.get("metrics") is None:  # no metrics=: the preset the run measured during training
        with open_dict(cfg):
            cfg.metrics, cfg.choices.metrics = train_cfg.metrics, train_cfg.choices.get("metrics")
    default_name = f"{Path(cfg.ckpt).stem}_{cfg.choices.get('metrics')}.json"
    output = Path(cfg.output) if cfg.output else RunDirectory.of_checkpoint(cfg.ckpt).evaluation / default_name
    check_folders_writable({"output": str(output.parent), **metric_cache_folders(cfg)})  # before the metrics' work
    metrics = instantiate_metrics(cfg.metrics)
    if not metrics:
        raise ConfigError(f"metrics={cfg.choices.get('metrics')} computes nothing; use e.g. metrics=paper_miyato, "
                          f"full, digits or xiang_final.")
    check_heldout(metrics, module.cfg.dataset.get("heldout", 0),
                  "this checkpoint's run held out fewer, and training images would leak into the measurement")
    datamodule = build_datamodule(train_cfg)
    datamodule.prepare_data()
    setup = MetricSetup(datamodule, device, OmegaConf.to_container(train_cfg.dataset))
    results, protocols = {}, {}
    for metric in metrics.values():
        metric.prepare(setup)
        results.update(metric.compute(module))
        protocols.update(metric.protocols())

    document = {
        "checkpoint": str(Path(cfg.ckpt).resolve()),
        "g_step": module.g_step,
        "metrics_preset": cfg.choices.get("metrics"),
        "results": {name: {"value": value, "protocol": protocols.get(name, "")} for name, value in results.items()},
        "train_config": OmegaConf.to_container(module.cfg),
        "evaluation_config": OmegaConf.to_container(cfg.metrics),
        "versions": versions(),
        "device": str(device),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    output.write_text(json.dumps(document, indent=2))
    document["output"] = str(output)
    return document


@hydra.main(config_path=str(CONFIG_DIR), config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        document = evaluate(cfg)
    except SnganReproError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    for name, entry in document["results"].items():
        print(f"{name:40s} {entry['value']:.6g}")
    print(f"written: {document['output']}")


if __name__ == "__main__":
    run_command(main, functools.partial(settings_of, config_name="evaluate"))
