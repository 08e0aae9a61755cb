"""float16 mixed precision with one loss scale per network (``trainer.precision=16-mixed``).

float16 gradients need loss scaling (Micikevicius et al. 2018): the loss is multiplied by a scale before the
backward pass, the gradients divided by it before the step, and a step whose gradients overflowed is skipped
and the scale halved. Lightning's ``16-mixed`` keeps one scale for every optimizer; in a GAN an overflow in the
critic's backward would then also shrink the generator's scale (and the reverse), although their losses and
gradients differ by orders of magnitude. Here each network has its own ``GradScaler``, chosen by the module
before each backward (``select``); both are in the checkpoint. bf16-mixed needs no scaling and is Lightning's.

The skip check reads the overflow flag on the host at every step (``GradScaler.step``) unless the optimizer
handles scaling itself, as ``optim.optimizer.fused=true`` Adam does on GPUs.
"""

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.precision import MixedPrecision, Precision
from pytorch_lightning.strategies import SingleDeviceStrategy
from pytorch_lightning.utilities.model_helpers import is_overridden

from .errors import ConfigError
from .models import NETWORKS

FLOAT16_PRECISIONS = ("16-mixed", "16")


class PerNetworkLossScaling(MixedPrecision):
    def __init__(self, device: str):
        if device not in ("cpu", "cuda"):
            raise ConfigError(f"trainer.precision=16-mixed runs on cpu or cuda devices; got {device!r}.")
        self.scalers = {network: torch.amp.GradScaler(device) for network in NETWORKS}
        super().__init__("16-mixed", device, scaler=self.scalers["discriminator"])

    def select(self, network: str) -> None:
        """Use ``network``'s scale for the next backward pass and optimizer step."""
        self.scaler = self.scalers[network]

    def state_dict(self) -> dict:
        return {network: scaler.state_dict() for network, scaler in self.scalers.items()}

    def load_state_dict(self, state_dict: dict) -> None:
        for network, scaler in self.scalers.items():
            scaler.load_state_dict(state_dict[network])


def lightning_backward_is_plain(trainer: pl.Trainer) -> bool:
    """Whether Lightning's backward (``manual_backward``) would do nothing but ``loss.backward()``: 32-bit precision
    with Lightning's plain plugin, one device, and no callback or module hook around the backward. Its hook dispatch
    is a few percent of a small model's update (``scripts/bench_train.py``'s quickstart row)."""
    hooks = ("on_before_backward", "on_after_backward")
    return (type(trainer.precision_plugin) is Precision and type(trainer.strategy) is SingleDeviceStrategy
            and not any(is_overridden(hook, trainer.lightning_module) for hook in (*hooks, "backward"))
            and not any(is_overridden(hook, callback) for callback in trainer.callbacks for hook in hooks))


def precision_arguments(trainer_cfg) -> dict:
    """The Trainer arguments that replace ``trainer.precision=16-mixed`` by ``PerNetworkLossScaling`` on the device
    the accelerator setting resolves to (a ``plugins`` list the trainer's builder adds to its own); none for other
    precisions."""
    if str(trainer_cfg.get("precision")) not in FLOAT16_PRECISIONS:
        return {}
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() else "cpu"
    device = "cuda" if accelerator == "gpu" else accelerator
    return {"precision": None, "plugins": [PerNetworkLossScaling(device)]}
