"""Random images of any size: for tests and benchmarks that need data of a paper's shape."""

import torch

from .base import ImageDataModule


class SyntheticDataModule(ImageDataModule):
    name = "synthetic images"

    def __init__(self, image_size: int = 32, channels: int = 3, size: int = 512, **kwargs):
        super().__init__(image_size=image_size, channels=channels, **kwargs)
        self.size = size

    def load_images(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.heldout_seed)
        shape = (self.size, self.channels, self.image_size, self.image_size)
        return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
