"""Spectral diagnostics of the critic (Kligvasser & Michaeli, Fig. 3): per conv layer, SN's
estimate (sigma of the reshaped kernel), the true operator norm of the circular convolution at
the layer's input size, their ratio, and the SAN constant; dense layers get their sigma."""

import torch
from pytorch_lightning.utilities import rank_zero_only
from torch import nn

from ..nn.spectra import conv_operator_norm, san_constant, sn_estimate
from .schedule import GeneratorStepCallback


def conv_input_sizes(discriminator: nn.Module, channels: int, image_size: int) -> dict[str, tuple[int, int]]:
    """The (H, W) each Conv2d of the critic sees, from one eval-mode forward pass (eval mode: no
    power-iteration step and no BN statistics update, so training is not disturbed)."""
    sizes, hooks = {}, []

    def record(name):
        def hook(module, inputs):  # returns None: the input passes unchanged
            sizes.setdefault(name, tuple(inputs[0].shape[-2:]))
        return hook

    for name, module in discriminator.named_modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_pre_hook(record(name)))
    was_training = discriminator.training
    discriminator.eval()
    try:
        with torch.no_grad():
            parameter = next(discriminator.parameters())
            discriminator(torch.zeros(2, channels, image_size, image_size, device=parameter.device,
                                      dtype=parameter.dtype))
    finally:
        discriminator.train(was_training)
        for hook in hooks:
            hook.remove()
    return sizes


def spectral_report(discriminator: nn.Module, input_sizes: dict) -> dict[str, float]:
    """{'spectral/<layer>/<quantity>': value} for every conv (with a known input size) and dense layer."""
    was_training = discriminator.training
    discriminator.eval()  # reading a parametrized weight in training mode would step SN's power iteration
    report = {}
    try:
        for name, module in discriminator.named_modules():
            if isinstance(module, nn.Conv2d) and name in input_sizes and module.stride == (1, 1):
                weight = module.weight.detach()
                estimate, true_norm = sn_estimate(weight).item(), conv_operator_norm(weight, input_sizes[name]).item()
                report.update({f"spectral/{name}/sn_estimate": estimate, f"spectral/{name}/operator_norm": true_norm,
                               f"spectral/{name}/operator_norm_over_sn": true_norm / estimate,
                               f"spectral/{name}/san_constant": san_constant(weight, input_sizes[name]).item()})
            elif isinstance(module, nn.Conv2d) and name in input_sizes:  # strided: the circulant bound only
                weight = module.weight.detach()
                report.update({f"spectral/{name}/sn_estimate": sn_estimate(weight).item(),
                               f"spectral/{name}/san_constant": san_constant(weight, input_sizes[name]).item()})
            elif isinstance(module, nn.Linear):
                report[f"spectral/{name}/sn_estimate"] = sn_estimate(module.weight.detach()).item()
    finally:
        discriminator.train(was_training)
    return report


class SpectralDiagnostics(GeneratorStepCallback):
    """Writes ``spectral/<layer>/<quantity>`` on the schedule of ``GeneratorStepCallback`` (0: off), for a critic of
    images of ``channels`` x ``image_size`` x ``image_size``."""

    def __init__(self, every_n_g_steps: int, steps: int, channels: int, image_size: int):
        super().__init__(steps, every_n_g_steps)
        self.channels, self.image_size = channels, image_size
        self.input_sizes: dict = {}

    def on_fit_start(self, trainer, pl_module) -> None:
        self.input_sizes = conv_input_sizes(pl_module.discriminator, self.channels, self.image_size)

    @rank_zero_only
    def act(self, trainer, pl_module) -> None:
        self.log_scalars(trainer, pl_module, spectral_report(pl_module.discriminator, self.input_sizes),
                         monitorable=False)
