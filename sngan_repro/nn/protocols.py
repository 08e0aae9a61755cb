"""What the training loop asks of layers, so that it never names a paper's layer.

A layer opts in by defining the method; the loop finds such layers by these protocols:

- ``project_after_step_()``: called after every optimizer step of the network holding the layer, to keep its
  parameters in their set (Xiang & Li's PReLU slopes in [0, 1]).
- ``initialize_from_data(mean, std)`` with ``wants_data_statistics`` true: called once at the start of a
  fresh run with the training set's per-channel mean and std in output-range units (Mullery & Whelan's
  BN+clip head). A resumed run gets the values back from its checkpoint instead.
"""

from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class ProjectedAfterStep(Protocol):
    def project_after_step_(self) -> None: ...


@runtime_checkable
class InitializedFromData(Protocol):
    wants_data_statistics: bool

    def initialize_from_data(self, mean: torch.Tensor, std: torch.Tensor) -> None: ...


def projected_layers(network: nn.Module) -> list[ProjectedAfterStep]:
    """The layers of ``network`` to project after each of its optimizer steps (collect once, call often)."""
    return [layer for layer in network.modules() if isinstance(layer, ProjectedAfterStep)]


def initialize_from_data_(network: nn.Module, datamodule) -> None:
    """Give every layer of ``network`` that wants them the data's channel statistics (computed only if one does)."""
    layers = [layer for layer in network.modules()
              if isinstance(layer, InitializedFromData) and layer.wants_data_statistics]
    if layers:
        mean, std = datamodule.channel_statistics()
        for layer in layers:
            layer.initialize_from_data(mean, std)
