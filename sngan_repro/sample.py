"""Export samples of a checkpoint: ``python -m sngan_repro.sample ckpt=<path> n=<N> output=<folder or .npz>``.

The images are those the metrics score (``metrics.sample_quality.fixed_samples``): the same fixed codes, the
generator in eval mode, outputs clamped and truncated to uint8. A ``.npz`` holds them as one uint8 array
(N, H, W, C) under ``arr_0``, the layout the TensorFlow IS/FID scripts read; a folder holds ``000000.png``, ...
"""

import functools
import sys
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image
from tqdm import tqdm

from .config import CONFIG_DIR, check_given, settings_of
from .errors import ConfigError, SnganReproError
from .metrics.sample_quality import fixed_samples
from .module import chosen_device, load_gan
from .overrides import run_command
from .run_directory import check_folders_writable

DEFAULT_BATCH = 100


def metrics_batch_size(train_cfg: DictConfig) -> int:
    """The batch size of the checkpoint's run's first metric that has one (its samples' chunking)."""
    measures = (train_cfg.get("metrics") or {}).get("measures") or {}
    sizes = [node.get("batch_size") for node in measures.values() if node is not None and node.get("batch_size")]
    return int(sizes[0]) if sizes else DEFAULT_BATCH


def check_output(output: Path) -> None:
    if output.suffix == ".npz":
        if output.exists():
            raise ConfigError(f"output={output} exists; give a new .npz file, or remove it first.")
        folder = output.parent
    else:
        if output.is_file() or (output.is_dir() and any(output.iterdir())):
            raise ConfigError(f"output={output} is not an empty folder; give a new or empty folder, or a .npz file.")
        folder = output
    check_folders_writable({"output": str(folder)})


@torch.no_grad()
def sample(ckpt: str, n: int, output: str, batch_size: int | None = None, device: str = "auto") -> Path:
    """Write ``n`` samples of the checkpoint ``ckpt`` to ``output``; return its path."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"n={n!r} must be a positive number of images.")
    output_path = Path(output)
    check_output(output_path)
    gan = load_gan(ckpt, chosen_device(device))
    size = batch_size or metrics_batch_size(gan.cfg)
    images = []
    with tqdm(total=n, unit="img", desc="sampling", file=sys.stderr) as progress:
        for chunk in fixed_samples(gan, n, size):
            images.append(chunk.permute(0, 2, 3, 1).cpu().numpy())  # NCHW -> NHWC
            progress.update(len(chunk))
    array = np.concatenate(images)
    if output_path.suffix == ".npz":
        np.savez(output_path, arr_0=array)
    else:
        for index, image in enumerate(array):
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(output_path / f"{index:06d}.png")
    return output_path


@hydra.main(config_path=str(CONFIG_DIR), config_name="sample", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        check_given(cfg)
        path = sample(cfg.ckpt, cfg.n, cfg.output, cfg.batch_size, cfg.device)
    except SnganReproError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"written: {cfg.n} images to {path}")


if __name__ == "__main__":
    run_command(main, functools.partial(settings_of, config_name="sample"))
