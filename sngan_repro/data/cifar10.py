"""CIFAR-10 through torchvision: the training split, optionally pooled with the test split
(Xiang & Li's protocol) and optionally restricted to some classes (Mullery & Whelan's frogs); 32 px, or resized
smaller (Feng, Xu & Li's code trains at 28)."""

from pathlib import Path

import torch
from torchvision.datasets import CIFAR10

from ..errors import ConfigError
from .base import ImageDataModule, open_downloadable
from .pixels import resized_uint8

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLITS = ("train", "train+test")


class CIFAR10DataModule(ImageDataModule):
    name = "CIFAR-10"

    def __init__(self, root: str, download: bool = True, split: str = "train", classes=None,
                 image_size: int = 32, channels: int = 3, **kwargs):
        if not 8 <= image_size <= 32 or channels != 3:
            raise ConfigError(f"CIFAR-10 serves RGB images of 8 to 32 px (32 native; smaller resized bilinearly, e.g. "
                              f"the 28 of Feng, Xu & Li's code); got dataset.image_size={image_size}, "
                              f"dataset.channels={channels}.")
        if split not in SPLITS:
            raise ConfigError(f"dataset.split={split!r} is not one of {', '.join(SPLITS)}.")
        self.classes = None if classes is None else [self._class_index(c) for c in classes]
        super().__init__(image_size=image_size, channels=channels, **kwargs)
        self.root, self.download, self.split = str(Path(root).expanduser()), download, split

    @staticmethod
    def _class_index(name_or_index) -> int:
        if name_or_index in CLASSES:
            return CLASSES.index(name_or_index)
        if isinstance(name_or_index, int) and 0 <= name_or_index < len(CLASSES):
            return name_or_index
        raise ConfigError(f"dataset.classes has {name_or_index!r}; accepted: 0-9 or {', '.join(CLASSES)}.")

    def _open(self, train: bool) -> CIFAR10:
        return open_downloadable(lambda: CIFAR10(self.root, train=train, download=self.download), "CIFAR-10",
                                 self.root, self.download,
                                 "put cifar-10-python.tar.gz (or its extracted cifar-10-batches-py folder) from "
                                 "https://www.cs.toronto.edu/~kriz/cifar.html there, or point dataset.root at a copy.")

    def prepare_data(self) -> None:
        self._open(train=True)

    def load_images(self) -> torch.Tensor:
        parts = [self._open(train=True)] + ([self._open(train=False)] if self.split == "train+test" else [])
        images = torch.cat([torch.from_numpy(p.data) for p in parts]).permute(0, 3, 1, 2).contiguous()
        if self.classes is not None:
            labels = torch.cat([torch.as_tensor(p.targets) for p in parts])
            images = images[torch.isin(labels, torch.as_tensor(self.classes))]
        return resized_uint8(images, self.image_size)
