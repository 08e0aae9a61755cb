"""Weight normalization (Salimans & Kingma) of every discriminator weight.

``gain: false`` (Miyato et al.'s Table 2 setting) divides each output unit's weight vector by
its norm, W / ||W||, with no learned multiplier; ``gain: true`` learns the multiplier
(W = g V / ||V||, g initialized to ||V||).
"""

from torch import nn

from ..nn import unit_norm
from .base import Normalization


class WeightNormalization(Normalization):
    def __init__(self, gain: bool = False):
        self.gain = gain

    def wrap_weight_layer(self, layer: nn.Module, input_size=None) -> nn.Module:
        return unit_norm(layer, learn_gain=self.gain)
