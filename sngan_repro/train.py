"""Train a GAN: ``python -m sngan_repro.train [group=option ...] [key=value ...]``.

Thin: validate the composed config, then datamodule + models + module + callbacks + loggers
-> Trainer.fit. Errors in the user's input are reported as one sentence, before heavy work.
"""

import sys
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from .callbacks import FixedLatentSamples, GeneratorStepCheckpoint, GeneratorStepProgressBar
from .callbacks.build import sample_quality_callbacks
from .callbacks.diagnostics import SpectralDiagnostics
from .callbacks.hparams import HParamsSummary
from .callbacks.reconstruction import ReconstructionMetric
from .config import CONFIG_DIR, CONFIG_NAME, instantiate_checked, resolve, validate
from .data import build_datamodule
from .errors import ConfigError, SnganReproError
from .module import GAN


def metric_callbacks(cfg: DictConfig, output_dir: Path) -> list:
    """The metric callbacks of ``cfg.metrics`` and, with ``metrics.monitor``, a best checkpoint by it."""
    metrics = cfg.metrics
    callbacks = sample_quality_callbacks(cfg)
    reconstruction = metrics.reconstruction
    if reconstruction and reconstruction.every:
        callbacks.append(ReconstructionMetric(every_n_g_steps=reconstruction.every, num_images=reconstruction.images,
                                              steps=reconstruction.steps))
    if metrics.monitor:
        logged = {name: callback.every_n_g_steps for callback in callbacks for name in callback.names().values()}
        if metrics.monitor not in logged:
            raise ConfigError(f"metrics.monitor={metrics.monitor!r} is not logged by this run; "
                              f"accepted: {', '.join(sorted(logged)) or 'none (no metric is on)'}.")
        callbacks.append(GeneratorStepCheckpoint(
            every_n_g_steps=logged[metrics.monitor], dirpath=output_dir / "checkpoints", monitor=metrics.monitor,
            mode=metrics.monitor_mode, save_top_k=1, save_last=False, filename="best-g_step={g_step:07d}"))
    return callbacks


def build_trainer(cfg: DictConfig, output_dir: Path) -> pl.Trainer:
    logger = instantiate_checked(cfg.logger) if cfg.logger else False
    metrics = metric_callbacks(cfg, output_dir)
    logged = [name for callback in metrics if hasattr(callback, "names") for name in callback.names().values()]
    callbacks = [
        GeneratorStepCheckpoint(every_n_g_steps=cfg.train.checkpoint_every, dirpath=output_dir / "checkpoints",
                                save_top_k=-1),
        FixedLatentSamples(every_n_g_steps=cfg.train.sample_every, directory=output_dir / "samples"),
        HParamsSummary(["loss/d", "loss/g", *logged]),
        *metrics,
    ]
    if cfg.train.diagnostics_every:
        callbacks.append(SpectralDiagnostics(cfg.train.diagnostics_every))
    if cfg.trainer.enable_progress_bar:
        callbacks.append(GeneratorStepProgressBar())
    return instantiate_checked(cfg.trainer, logger=logger, callbacks=callbacks, default_root_dir=str(output_dir))


def run(cfg: DictConfig) -> GAN:
    """Train as ``cfg`` says and return the trained module; the run directory is ``cfg.paths.output_dir``."""
    validate(resolve(cfg))
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = GAN(cfg)  # cheap, and refuses sizes or options the architecture cannot serve
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()  # a missing dataset stops the run here, before any training
    trainer = build_trainer(cfg, output_dir)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    return module


@hydra.main(config_path=str(CONFIG_DIR), config_name=CONFIG_NAME, version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except SnganReproError as error:
        print(f"error: {error}", file=sys.stderr)
        output_dir = Path(cfg.paths.output_dir)
        if output_dir.is_dir():
            (output_dir / "error.txt").write_text(f"{type(error).__name__}: {error}\n")
        # in a sweep one failed run (e.g. a diverging setting) must not stop the others
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            sys.exit(2)


if __name__ == "__main__":
    main()
