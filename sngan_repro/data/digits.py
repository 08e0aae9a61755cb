"""scikit-learn's bundled 8x8 handwritten digits: the embedded offline dataset (1,797 images)."""

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from ..errors import ConfigError
from .base import ImageDataModule
from .pixels import to_uint8_rounded


class DigitsDataModule(ImageDataModule):
    name = "digits"

    def __init__(self, image_size: int = 32, channels: int = 1, **kwargs):
        if image_size < 8:
            raise ConfigError(f"dataset.image_size={image_size} is below the digits' native 8x8.")
        super().__init__(image_size=image_size, channels=channels, **kwargs)

    def load_images(self) -> torch.Tensor:
        # pixel values are 0..16 (ink = 16); bilinear upsampling, then quantized like any image file
        digits = torch.from_numpy(load_digits().images).float().unsqueeze(1) / 16.0
        digits = F.interpolate(digits, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        images = to_uint8_rounded(digits)
        return images.expand(-1, self.channels, -1, -1).contiguous()
