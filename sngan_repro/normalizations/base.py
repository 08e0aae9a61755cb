"""The interface through which architectures normalize their discriminator.

An architecture builds each weight layer (conv / dense) and hands it to ``wrap_weight_layer``
with the spatial size of that layer's input; it asks ``feature_layer`` for what follows a
hidden layer (batch/layer norm baselines) and uses ``conv_padding_mode`` for its convolutions.
The training step adds ``penalty`` to the discriminator loss and calls
``after_discriminator_update``. Architectures never ask which
method they were given, so a new normalization is one subclass plus one YAML file in conf/norm.

A layer handed to ``wrap_weight_layer`` may already carry a parametrization of the architecture's
own (Xiang & Li's weight-normalized layers): a normalization then works on the weight the layer
presents (``layer.weight``) and stacks its own parametrization after the existing ones, writes
initial values with ``sngan_repro.nn.assign_weight_``, and, if it can only act on the stored
tensor (weight clipping, SAN's projection), refuses such a layer with one sentence.
"""

from torch import nn

from ..errors import ConfigError
from ..instantiate import instantiate_checked


class Normalization:
    """The identity for every hook: an unnormalized discriminator."""

    #: padding mode of the critic's convolutions ("circular" where the method needs it, e.g. SAN)
    conv_padding_mode: str = "zeros"

    def wrap_weight_layer(self, layer: nn.Module, input_size: tuple[int, int] | None = None) -> nn.Module:
        """Return ``layer`` with its weight normalized (in place, as a parametrization, or wrapped).

        ``input_size`` is the (height, width) of the layer's input feature map (None for dense layers).
        """
        return layer

    def feature_layer(self, num_channels: int) -> nn.Module:
        """The module that follows a hidden layer's linear map (before its activation)."""
        return nn.Identity()

    def penalty(self, discriminator: nn.Module, real, fake, noise):
        """A regularization term added to the discriminator loss, or None.

        ``noise`` (``module.RankShare``) makes any random draw the penalty needs: seeded per update by
        the module (so that resumed runs stay exact) and cut, under DDP, to this rank's samples.
        """
        return None

    def after_discriminator_update(self, discriminator: nn.Module, step: int, rng) -> None:
        """Called after every discriminator optimizer step (e.g. weight clipping).

        ``step`` counts discriminator updates from 0 (this one included); ``rng`` is a
        torch.Generator seeded by the step, the same on every rank.
        """


class NoNormalization(Normalization):
    """norm=none: the discriminator as built."""


def build_normalization(cfg, group: str = "norm") -> Normalization:
    """The normalization a composed config selects in ``group`` (``norm`` for the critic, ``gen_norm``)."""
    norm = instantiate_checked(cfg[group])
    if not isinstance(norm, Normalization):
        raise ConfigError(f"{group}._target_={cfg[group].get('_target_')!r} is not a sngan_repro Normalization.")
    return norm
