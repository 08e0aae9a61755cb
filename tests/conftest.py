from pathlib import Path

import pytest

from sngan_repro import compose
from sngan_repro.config import CONFIG_DIR

GROUPS = ("dataset", "arch", "norm", "gen_norm", "loss", "optim", "trainer", "callbacks", "logger", "metrics", "paths",
          "experiment")


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def tiny_run_overrides(output_dir: Path, steps: int = 20, *extra: str) -> list[str]:
    """A seconds-long CPU run on the embedded digits with a very slim standard CNN."""
    return [
        "experiment=quickstart",
        "arch.width=0.125",
        "dataset.image_size=16",
        f"train.steps={steps}",
        "train.batch_size=16",
        "train.log_every=5",
        "train.sample_every=10",
        "train.checkpoint_every=10",
        "train.num_samples=16",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "metrics=none",
        f"paths.output_dir={output_dir}",
        *extra,
    ]


@pytest.fixture
def tiny_cfg(tmp_path):
    def make(*extra: str, steps: int = 20, output_dir: Path | None = None):
        return compose(tiny_run_overrides(output_dir or tmp_path, steps, *extra))

    return make


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory):
    """Torch-fidelity's Inception with the real shapes and random (He-scaled) values: the real
    loading and feature code, offline; its numbers mean nothing."""
    from helpers.inception import write_random_weights

    return write_random_weights(tmp_path_factory.mktemp("inception") / "weights-inception-random.pth")


def digits_pixel_statistics(image_size: int):
    """The mean and std of the embedded digits' pixels in [-1, 1] at ``image_size``, computed here from
    scikit-learn's copy (bilinear upsampling, quantized to 8 bits as the datamodule stores them)."""
    import torch
    from sklearn.datasets import load_digits

    digits = torch.from_numpy(load_digits().images).float().unsqueeze(1) / 16
    digits = torch.nn.functional.interpolate(digits, size=(image_size, image_size), mode="bilinear",
                                             align_corners=False)
    pixels = ((digits.clamp(0, 1) * 255).round() / 255) * 2 - 1
    return pixels.mean(), pixels.std()
