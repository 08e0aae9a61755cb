"""Evaluate a checkpoint, or images from anywhere:

    python -m sngan_repro.evaluate ckpt=<path> [metrics=<preset>] [reference=<folder or .npz>]
    python -m sngan_repro.evaluate images=<folder or .npz> metrics=<preset> (dataset=<name> | reference=<...>)

Writes a JSON with every number, its protocol (which says where both sides came from), the checkpoint or the
images, the training and evaluation configs and the library versions. The metrics preset decides what is computed:
every metric object of ``metrics.measures`` (their ``every`` is ignored), as during training; for a checkpoint
without ``metrics=``, those its run measured during training. Images are scored by the same metric objects, in
place of the generator's samples; the real side is the checkpoint's dataset, ``dataset=``'s training images, or the
images of ``reference=``.
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
from .data.image_set import ImageSet
from .errors import ConfigError, SnganReproError
from .instantiate import instantiate_checked
from .metrics import MetricSetup, instantiate_metrics
from .metrics.base import check_heldout, metric_cache_folders
from .module import chosen_device, load_gan
from .overrides import run_command
from .run_directory import RunDirectory, check_folders_writable, versions


def _image_metrics_only(metrics: dict, given: str) -> None:
    """Refuse a metric that needs the generator itself (e.g. the reconstruction loss) when ``given`` replaces it."""
    for key, metric in metrics.items():
        if metric.generated_images_needed() is None:
            raise ConfigError(f"metrics.measures.{key} needs a checkpoint's generator and its run's data, which "
                              f"{given} does not give; evaluate it on the checkpoint alone, or switch it off with "
                              f"metrics.measures.{key}=null.")


def _dataset_images(dataset: DictConfig):
    """The datamodule of ``dataset=`` alone, for its training images: the metrics read them as uint8, so the
    batching, scaling and seed a run would give it do not enter (``iter_images`` subsets by ``heldout_seed``)."""
    return instantiate_checked(dataset, batch_size=1, value_range=[-1.0, 1.0], seed=0)


def evaluate(cfg: DictConfig) -> dict:
    """Compute the preset's metrics for ``cfg.ckpt`` or ``cfg.images``; return (and write) the JSON document."""
    check_given(resolve(cfg))
    if bool(cfg.ckpt) == bool(cfg.images):
        raise ConfigError("Give exactly one of ckpt=<checkpoint> and images=<folder or .npz> to evaluate; got "
                          + ("both." if cfg.ckpt else "neither."))
    device = chosen_device(cfg.device)
    dataset = cfg.get("dataset")
    reference = ImageSet(cfg.reference, "reference") if cfg.reference else None
    module = images = None
    if cfg.ckpt:
        if dataset is not None:
            raise ConfigError(f"dataset={cfg.choices.get('dataset')} is for images=; a checkpoint is compared with its "
                              f"run's dataset, or with reference=<folder or .npz>.")
        module = load_gan(cfg.ckpt, device)
        # the checkpoint's dataset and metric caches, looked up under this command's paths
        train_cfg = with_local_paths(module.cfg, cfg.paths)
        if cfg.get("metrics") is None:  # no metrics=: the preset the run measured during training
            with open_dict(cfg):
                cfg.metrics, cfg.choices.metrics = train_cfg.metrics, train_cfg.choices.get("metrics")
        dataset = train_cfg.dataset
        folder, stem = RunDirectory.of_checkpoint(cfg.ckpt).evaluation, Path(cfg.ckpt).stem
    else:
        images = ImageSet(cfg.images, "images")
        if cfg.get("metrics") is None:
            raise ConfigError("images= has no run whose metrics to take; give metrics=<preset>, e.g. metrics=full or "
                              "metrics=digits.")
        if (dataset is None) == (reference is None):
            raise ConfigError("images= is compared with dataset=<name> (its training images) or with "
                              "reference=<folder or .npz>; give exactly one of them.")
        folder, stem = images.path.parent, images.path.stem
    preset = cfg.choices.get("metrics")
    output = Path(cfg.output) if cfg.output else folder / f"{stem}_{preset}.json"
    check_folders_writable({"output": str(output.parent), **metric_cache_folders(cfg)})  # before the metrics' work
    metrics = instantiate_metrics(cfg.metrics)
    if not metrics:
        raise ConfigError(f"metrics={preset} computes nothing; use e.g. metrics=paper_miyato, full, digits or "
                          f"xiang_final.")
    for given, value in (("images=", images), ("reference=", reference)):
        if value is not None:
            _image_metrics_only(metrics, given)
    if images is not None:
        for key, metric in metrics.items():
            if metric.generated_images_needed() > images.count:
                raise ConfigError(f"images={cfg.images} holds {images.count} images but metrics.measures.{key} scores "
                                  f"{metric.generated_images_needed()}; give at least that many, or fewer samples "
                                  f"in its settings.")
    if module is not None:
        check_heldout(metrics, module.cfg.dataset.get("heldout", 0),
                      "this checkpoint's run held out fewer, and training images would leak into the measurement")
    if reference is None:
        real = build_datamodule(train_cfg) if module is not None else _dataset_images(dataset)
        real.prepare_data()
        setup = MetricSetup(real, device, OmegaConf.to_container(dataset, resolve=True))
    else:
        setup = MetricSetup(reference, device, {})
    results, protocols = {}, {}
    for metric in metrics.values():
        metric.prepare(setup)
        results.update(metric.compute(module if module is not None else images))
        protocols.update(metric.protocols())

    def image_set(value: ImageSet | None) -> dict | None:
        return None if value is None else {"path": value.name, "count": value.count, "export": value.export}

    document = {
        "checkpoint": str(Path(cfg.ckpt).resolve()) if module is not None else None,
        "g_step": module.g_step if module is not None else None,
        "images": image_set(images),
        "reference": image_set(reference),
        "dataset": OmegaConf.to_container(dataset, resolve=True) if reference is None else None,
        "metrics_preset": preset,
        "results": {name: {"value": value, "protocol": protocols.get(name, "")} for name, value in results.items()},
        "train_config": OmegaConf.to_container(module.cfg) if module is not None else None,
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
