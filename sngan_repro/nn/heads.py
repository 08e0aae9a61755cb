"""Generator output heads (Mullery & Whelan, "Batch normalization in the final layer of
generative networks"): what follows the generator's last convolution.

- ``tanh``: tanh (the DCGAN convention), images in (-1, 1);
- ``sigmoid``: sigmoid (Xiang & Li's generators), images in (0, 1);
- ``bn_tanh``: BatchNorm then tanh (gamma 1, beta 0);
- ``bn_clip``: BatchNorm then clipping to the output range, no tanh; gamma and beta start at the
  training set's per-channel std and mean (in output-range units), optionally frozen.

``freeze`` (``arch.head_frozen``) turns BN's gamma and beta into buffers when the head is built, so
they are never trained, whether the run starts fresh or resumes; the data statistics (bn_clip)
are written into them at the start of a fresh run and come back from the checkpoint on resume.
"""

import torch
from torch import nn

from ..errors import ConfigError

HEADS = ("tanh", "sigmoid", "bn_tanh", "bn_clip")
_SQUASH_RANGE = {"tanh": (-1.0, 1.0), "bn_tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}


class OutputHead(nn.Module):
    def __init__(self, kind: str, channels: int, output_range=(-1.0, 1.0), freeze: bool = False):
        super().__init__()
        if kind not in HEADS:
            raise ConfigError(f"arch.head={kind!r} is not one of {', '.join(HEADS)}.")
        squash_range = _SQUASH_RANGE.get(kind)
        if squash_range is not None and tuple(float(v) for v in output_range) != squash_range:
            raise ConfigError(f"arch.head={kind!r} produces {squash_range} but arch.output_range={list(output_range)}; "
                              f"use bn_clip or the matching range.")
        self.kind, self.freeze = kind, freeze
        self.low, self.high = (float(v) for v in output_range)
        self.norm = nn.BatchNorm2d(channels) if kind.startswith("bn_") else None
        if freeze:
            if self.norm is None:
                raise ConfigError(f"arch.head_frozen=true freezes the head's BatchNorm, but arch.head={kind!r} has "
                                  f"none; use bn_clip or bn_tanh, or arch.head_frozen=false.")
            for name in ("weight", "bias"):  # buffers: no optimizer or requires_grad_(True) can move them
                value = getattr(self.norm, name).detach()
                delattr(self.norm, name)
                self.norm.register_buffer(name, value)

    @property
    def wants_data_statistics(self) -> bool:
        return self.kind == "bn_clip"

    @torch.no_grad()
    def initialize_from_data(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Start BN's beta and gamma at the data's per-channel mean and std (bn_clip only)."""
        if not self.wants_data_statistics:
            return
        self.norm.bias.copy_(mean)
        self.norm.weight.copy_(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm is not None:
            x = self.norm(x)
        if self.kind == "bn_clip":
            return x.clamp(self.low, self.high)
        return torch.sigmoid(x) if self.kind == "sigmoid" else torch.tanh(x)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, freeze={self.freeze}"
