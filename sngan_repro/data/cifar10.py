"""CIFAR-10 training split (50,000 images) through torchvision."""

from pathlib import Path

import torch
from torchvision.datasets import CIFAR10

from ..errors import ConfigError, DatasetUnavailableError
from .base import ImageDataModule


class CIFAR10DataModule(ImageDataModule):
    name = "CIFAR-10"

    def __init__(self, root: str, download: bool = True, image_size: int = 32, channels: int = 3, **kwargs):
        if image_size != 32 or channels != 3:
            raise ConfigError(
                f"CIFAR-10 images are 32x32 RGB; got dataset.image_size={image_size}, dataset.channels={channels}."
            )
        super().__init__(image_size=image_size, channels=channels, **kwargs)
        self.root, self.download = str(Path(root).expanduser()), download

    def _open(self) -> CIFAR10:
        try:
            return CIFAR10(self.root, train=True, download=self.download)
        except (RuntimeError, OSError) as error:  # absent or corrupt: RuntimeError; offline: URLError
            why = f"the download failed ({error})" if self.download else "dataset.download is false"
            raise DatasetUnavailableError(
                f"CIFAR-10 was not found (or is corrupt) in {Path(self.root).resolve()} and {why}; "
                f"put cifar-10-python.tar.gz (or its extracted cifar-10-batches-py folder) from "
                f"https://www.cs.toronto.edu/~kriz/cifar.html there, or point dataset.root at a copy."
            ) from error

    def prepare_data(self) -> None:
        self._open()

    def load_images(self) -> torch.Tensor:
        return torch.from_numpy(self._open().data).permute(0, 3, 1, 2).contiguous()
