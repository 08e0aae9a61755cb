"""Evaluate a checkpoint: ``python -m sngan_repro.evaluate ckpt=<path> metrics=paper_miyato``.

Writes a JSON with every number, its protocol, the checkpoint, the training and evaluation
configs and the library versions. The metrics preset decides what is computed: IS/FID with the
preset's sample counts (``metrics.every`` is ignored) and, when it has ``reconstruction``,
Xiang & Li's reconstruction loss on the held-out images.
"""

import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from .callbacks.build import dataset_description, sample_quality_callbacks
from .config import CONFIG_DIR, check_checkpoint, resolve, with_data_dir
from .data import build_datamodule
from .errors import CheckpointError, ConfigError, SnganReproError
from .metrics.reconstruction import reconstruction_loss
from .metrics.scores import real_statistics
from .module import GAN

PACKAGES = ("torch", "torchvision", "pytorch-lightning", "torch-fidelity", "hydra-core", "numpy",
            "scipy", "sngan-repro")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def load_module(path, device) -> GAN:
    check_checkpoint(path)
    try:
        module = GAN.load_from_checkpoint(path, map_location=device)
    except SnganReproError:
        raise
    except Exception as error:  # unpickling / key errors of a foreign or damaged file
        raise CheckpointError(f"ckpt={path} could not be loaded as a sngan_repro checkpoint "
                              f"({type(error).__name__}: {error}).") from error
    return module.to(device).eval()


def evaluate(cfg: DictConfig) -> dict:
    """Compute the preset's metrics for ``cfg.ckpt``; return (and write) the JSON document."""
    resolve(cfg)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
    module = load_module(cfg.ckpt, device)
    # the checkpoint's dataset, looked up under this command's paths.data_dir
    train_cfg = OmegaConf.merge(with_data_dir(module.cfg, cfg.paths.data_dir),
                                {"metrics": cfg.metrics, "paths": {"cache_dir": cfg.paths.cache_dir}})
    metrics = cfg.metrics
    if not (metrics.inception_score or metrics.fid or metrics.reconstruction):
        raise ConfigError(f"metrics={cfg.choices.get('metrics')} computes nothing; use e.g. metrics=paper_miyato, "
                          f"full, digits or xiang_final.")
    datamodule = build_datamodule(train_cfg)
    datamodule.prepare_data()
    results, protocols = {}, {}

    quality = sample_quality_callbacks(OmegaConf.merge(train_cfg, {"metrics": {"every": 1, "required": True}}))
    for callback in quality:
        callback.extractor.to(device)
        if callback.fid_samples:
            callback.real = real_statistics(datamodule, callback.fid_real, callback.extractor, cfg.paths.cache_dir,
                                            callback.batch_size, device, dataset_description(train_cfg))
        results.update(callback.compute(module))
        protocols.update(callback.protocols())

    if metrics.reconstruction:
        images, steps = metrics.reconstruction.images, metrics.reconstruction.steps
        if not datamodule.heldout:
            raise ConfigError("This checkpoint's run had no held-out images (dataset.heldout=0), so the "
                              "reconstruction loss cannot be measured without training-set leakage.")
        heldout = datamodule.images("heldout", images).to(device)
        losses, _ = reconstruction_loss(module.generator, heldout, module.cfg.arch.latent_dim, steps,
                                        module.output_range)
        name = f"reconstruction/final_{len(heldout)}img_{steps}steps"
        results[name] = losses.mean().item()
        protocols[name] = (f"Xiang & Li's reconstruction loss: mean over {len(heldout)} held-out images of "
                           f"min_z ||G(z) - x||^2 / (C H W) in [0, 1] units, z from 0, {steps} RMSProp steps "
                           f"(lr 0.01, alpha 0.9, eps 1e-6), generator in eval mode")

    document = {
        "checkpoint": str(Path(cfg.ckpt).resolve()),
        "g_step": module.g_step,
        "metrics_preset": cfg.choices.get("metrics"),
        "results": {name: {"value": value, "protocol": protocols.get(name, "")} for name, value in results.items()},
        "train_config": OmegaConf.to_container(module.cfg),
        "evaluation_config": OmegaConf.to_container(cfg.metrics),
        "versions": library_versions(),
        "device": str(device),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    default_name = f"{Path(cfg.ckpt).stem}_{cfg.choices.get('metrics')}.json"
    output = Path(cfg.output) if cfg.output else Path(cfg.ckpt).resolve().parent.parent / "evaluation" / default_name
    output.parent.mkdir(parents=True, exist_ok=True)
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
    main()
