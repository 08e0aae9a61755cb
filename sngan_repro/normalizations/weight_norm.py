"""Weight normalization (Salimans & Kingma) of every discriminator weight.

``gain: false`` (Miyato et al.'s Table 2 setting) divides each output unit's weight vector by
its norm, W / ||W||, with no learned multiplier; ``gain: true`` is PyTorch's weight_norm
(W = g V / ||V||, g learned and initialized to ||V||).
"""

from torch import nn
from torch.nn.utils import parametrizations

from ..nn import output_dim, unit_norm
from .base import Normalization


class WeightNormalization(Normalization):
    def __init__(self, gain: bool = False):
        self.gain = gain

    def wrap_weight_layer(self, layer: nn.Module, input_size=None) -> nn.Module:
        if self.gain:
            return parametrizations.weight_norm(layer, dim=output_dim(layer))
        return unit_norm(layer)
