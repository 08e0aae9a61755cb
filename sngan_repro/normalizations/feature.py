"""Batch and layer normalization of the discriminator's hidden layers (Miyato et al.'s Table 2
baselines). With ``gain: false`` (the comparison's setting) the multiplier is fixed at 1 so the
methods do not trivially violate the Lipschitz bound; the additive bias stays learnable."""

from torch import nn

from .base import Normalization


class _FeatureNormalization(Normalization):
    def __init__(self, gain: bool = False):
        self.gain = gain

    def make(self, num_channels: int) -> nn.Module:
        raise NotImplementedError

    def feature_layer(self, num_channels: int) -> nn.Module:
        layer = self.make(num_channels)
        layer.weight.requires_grad_(self.gain)  # initialized to 1; frozen when the gain is disabled
        return layer


class BatchNormalization(_FeatureNormalization):
    """BN over (batch, H, W) per channel; the critic sees real and fake batches separately."""

    def make(self, num_channels: int) -> nn.Module:
        return nn.BatchNorm2d(num_channels)


class LayerNormalization(_FeatureNormalization):
    """LN over (C, H, W) per sample, with per-channel affine parameters."""

    def make(self, num_channels: int) -> nn.Module:
        return nn.GroupNorm(1, num_channels)
