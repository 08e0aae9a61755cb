"""LSUN scenes (e.g. bedroom_train, about 3 million images) through torchvision's LMDB reader."""

from pathlib import Path

from torchvision.datasets import LSUN

from ..errors import DatasetUnavailableError
from .base import TorchvisionPILDataModule, unavailable


class LSUNDataModule(TorchvisionPILDataModule):
    name = "LSUN"

    def __init__(self, root: str, category: str = "bedroom_train", crop: int | None = None,
                 image_size: int = 256, channels: int = 3, **kwargs):
        super().__init__(image_size=image_size, channels=channels, **kwargs)
        self.root, self.category, self.crop = str(Path(root).expanduser()), category, crop

    def open_dataset(self, transform=None) -> LSUN:
        try:
            import lmdb  # noqa: F401  (torchvision imports it lazily; say so clearly if missing)
        except ImportError as error:
            raise DatasetUnavailableError("LSUN is read from LMDB databases, which needs the lmdb package; "
                                          "install it with pip install lmdb.") from error
        try:
            return LSUN(self.root, classes=[self.category], transform=transform)
        except Exception as error:  # lmdb.Error (missing / corrupt database) has no common base with OSError
            raise unavailable(f"LSUN {self.category}", Path(self.root) / f"{self.category}_lmdb",
                              f"could not be opened ({type(error).__name__})",
                              "download it with the LSUN project's download.py and unzip it there, "
                              "or point dataset.root at the folder that holds it.") from error
