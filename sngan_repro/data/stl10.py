"""STL-10 through torchvision: unlabeled + train (105,000 images), resized from 96 to 48 px as
in Miyato et al. and Kligvasser & Michaeli."""

from pathlib import Path

import torch
from torchvision.datasets import STL10

from ..errors import ConfigError
from .base import ImageDataModule, open_downloadable
from .pixels import resized_uint8


class STL10DataModule(ImageDataModule):
    name = "STL-10"

    def __init__(self, root: str, download: bool = True, split: str = "train+unlabeled",
                 image_size: int = 48, channels: int = 3, **kwargs):
        if channels != 3 or not 8 <= image_size <= 96:
            raise ConfigError(f"STL-10 serves RGB images of 8 to 96 px; got dataset.image_size={image_size}, "
                              f"dataset.channels={channels}.")
        if split not in STL10.splits:
            raise ConfigError(f"dataset.split={split!r} is not one of {', '.join(STL10.splits)}.")
        super().__init__(image_size=image_size, channels=channels, **kwargs)
        self.root, self.download, self.split = str(Path(root).expanduser()), download, split

    def _open(self) -> STL10:
        return open_downloadable(lambda: STL10(self.root, split=self.split, download=self.download), "STL-10",
                                 self.root, self.download,
                                 "put stl10_binary.tar.gz (or its extracted stl10_binary folder) from "
                                 "https://cs.stanford.edu/~acoates/stl10/ there, or point dataset.root at a copy.")

    def prepare_data(self) -> None:
        self._open()

    def load_images(self) -> torch.Tensor:
        return resized_uint8(torch.from_numpy(self._open().data), self.image_size)  # from (N, 3, 96, 96) uint8
