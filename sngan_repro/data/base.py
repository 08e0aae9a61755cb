"""The shared machinery of every dataset: uint8 images in memory, a resumable seeded sampler,
and conversion to the generator's pixel range on the device.

Each concrete datamodule only says how to obtain its images (``load_images``) and how to make
them available on disk (``prepare_data``). The training stream is infinite: run length is
counted in generator updates, not epochs.
"""

from collections.abc import Iterator, Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class InMemoryImages(Dataset):
    """A uint8 tensor (N, C, H, W); batches are gathered by one indexing op (``__getitems__``)."""

    def __init__(self, images: torch.Tensor):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"expected a uint8 (N, C, H, W) tensor, got {images.dtype} {tuple(images.shape)}")
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        return self.images[torch.as_tensor(indices)]


def _keep_batch(batch: torch.Tensor) -> torch.Tensor:
    """Collate for ``InMemoryImages``: ``__getitems__`` already returns the stacked batch."""
    return batch


class ResumableSampler(Sampler[int]):
    """An endless stream of dataset indices: pass p is a permutation seeded by (seed, p).

    Rank r of w takes every w-th index of each pass, so ranks see disjoint samples. The stream
    starts at ``start`` indices into this rank's share, which is how a resumed run continues
    exactly where the checkpoint left it.
    """

    def __init__(self, size: int, seed: int, start: int = 0, rank: int = 0, world_size: int = 1):
        self.size, self.seed, self.start = size, seed, start
        self.rank, self.world_size = rank, world_size
        self.per_pass = size // world_size

    def __iter__(self) -> Iterator[int]:
        pass_index, offset = divmod(self.start, self.per_pass)
        while True:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + pass_index))
            yield from order[self.rank :: self.world_size][offset : self.per_pass].tolist()
            pass_index, offset = pass_index + 1, 0


class ImageDataModule(pl.LightningDataModule):
    """Base of all datamodules: an endless, seeded, resumable stream of image batches.

    Images are held as uint8 and mapped to ``value_range`` (the generator's output range) after
    the transfer to the device. The number of batches handed to training is part of the
    checkpoint, so a resumed run draws the same batches as an uninterrupted one.
    """

    #: human-readable name used in messages
    name = "dataset"

    def __init__(self, image_size: int, channels: int, batch_size: int = 64,
                 value_range: Sequence[float] = (-1.0, 1.0), seed: int = 0, num_workers: int = 0):
        super().__init__()
        self.image_size, self.channels = image_size, channels
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.value_range = tuple(float(v) for v in value_range)
        self.batches_consumed = 0
        self.train_set: Dataset | None = None

    # -- what subclasses provide ---------------------------------------------------------
    def load_images(self) -> torch.Tensor:
        """All training images as a uint8 tensor (N, C, H, W)."""
        raise NotImplementedError

    # -- Lightning hooks -------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = InMemoryImages(self.load_images())

    def train_dataloader(self) -> DataLoader:
        self.setup()
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        sampler = ResumableSampler(len(self.train_set), self.seed, start=self.batches_consumed * self.batch_size,
                                   rank=rank, world_size=world_size)
        return DataLoader(self.train_set, batch_size=self.batch_size, sampler=sampler, drop_last=True,
                          num_workers=self.num_workers, collate_fn=_keep_batch,
                          persistent_workers=self.num_workers > 0, pin_memory=torch.cuda.is_available())

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        if self.trainer is not None and self.trainer.training:
            self.batches_consumed += 1
        return batch

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        return self.to_value_range(batch)

    def state_dict(self) -> dict:
        return {"batches_consumed": self.batches_consumed}

    def load_state_dict(self, state_dict: dict) -> None:
        self.batches_consumed = int(state_dict["batches_consumed"])

    # -- helpers ---------------------------------------------------------------------------
    def channel_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training images in ``value_range`` units."""
        self.setup()
        images = self.train_set.images
        low, high = self.value_range
        pixels = images.transpose(0, 1).flatten(1).double() * ((high - low) / 255.0) + low
        return pixels.mean(1).float(), pixels.std(1).float()

    def to_value_range(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [0, 255] -> float in ``value_range``."""
        low, high = self.value_range
        return images.float().mul_((high - low) / 255.0).add_(low)
