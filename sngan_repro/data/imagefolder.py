"""Any folder of images (searched recursively), resized and center-cropped to a square."""

from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from ..errors import DatasetUnavailableError
from .base import ImageDataModule, pil_to_uint8

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class ImageFiles(Dataset):
    def __init__(self, paths: list[Path], transform):
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        with Image.open(self.paths[index]) as image:
            return self.transform(image)


class ImageFolderDataModule(ImageDataModule):
    name = "image folder"

    def __init__(self, root: str, image_size: int = 64, crop: int | None = None, channels: int = 3, **kwargs):
        super().__init__(image_size=image_size, channels=channels, **kwargs)
        self.root, self.crop = Path(root).expanduser(), crop

    def _paths(self) -> list[Path]:
        paths = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in EXTENSIONS) if self.root.is_dir() else []
        if not paths:
            raise DatasetUnavailableError(f"No images were found in {self.root.resolve()} (no file ending in "
                                          f"{', '.join(EXTENSIONS)}); point dataset.root at a folder of images.")
        return paths

    def prepare_data(self) -> None:
        self._paths()

    def load_dataset(self):
        return ImageFiles(self._paths(), pil_to_uint8(self.image_size, self.channels, self.crop))
