"""CelebA (aligned and cropped faces, 202,599 images) through torchvision, center-cropped.

Xiang & Li use central 160x160 patches at 160 px; many works use a 108 px center crop resized
to 64 (``dataset=celeba64``).
"""

from pathlib import Path

from torchvision.datasets import CelebA

from .base import TorchvisionPILDataModule, open_downloadable


class CelebADataModule(TorchvisionPILDataModule):
    name = "CelebA"

    def __init__(self, root: str, download: bool = False, crop: int = 160, image_size: int = 160,
                 channels: int = 3, **kwargs):
        super().__init__(image_size=image_size, channels=channels, **kwargs)
        self.root, self.download, self.crop = str(Path(root).expanduser()), download, crop

    def open_dataset(self, transform=None) -> CelebA:
        return open_downloadable(
            lambda: CelebA(self.root, split="all", target_type=[], transform=transform, download=self.download),
            "CelebA", Path(self.root) / "celeba", self.download,
            "put img_align_celeba/ and the annotation files (list_eval_partition.txt, identity_CelebA.txt, "
            "list_attr_celeba.txt, list_bbox_celeba.txt, list_landmarks_align_celeba.txt) in <dataset.root>/celeba.")
