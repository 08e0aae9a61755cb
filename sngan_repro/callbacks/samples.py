"""Sample grids from the fixed latent codes, every k generator updates, into every tracker and PNG, with
histograms of the generated pixel values beside the data's (Mullery & Whelan's figures)."""

from pathlib import Path

from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image

from .. import trackers
from ..run_directory import SAMPLE_GRID_TEMPLATE
from .schedule import GeneratorStepCallback


class FixedLatentSamples(GeneratorStepCallback):
    """Logs ``samples/fixed_z`` (the same codes all run long) and ``pixels/generated`` on the schedule of
    ``GeneratorStepCallback``, and ``pixels/data`` once at the start."""

    def __init__(self, every_n_g_steps: int, steps: int, directory: str | None = None, nrow: int = 8):
        super().__init__(steps, every_n_g_steps)
        self.nrow = nrow
        self.directory = Path(directory) if directory else None

    def on_train_start(self, trainer, pl_module) -> None:
        self.write_data_histogram(trainer, pl_module)
        super().on_train_start(trainer, pl_module)

    @rank_zero_only
    def write_data_histogram(self, trainer, pl_module) -> None:
        """The training images' pixel values, beside which the generated ones are plotted (Mullery & Whelan)."""
        datamodule = trainer.datamodule
        real = datamodule.to_value_range(datamodule.images("train", len(pl_module.fixed_z)))
        trackers.log_histogram(trainer.loggers, "pixels/data", real, pl_module.g_step)

    @rank_zero_only
    def act(self, trainer, pl_module) -> None:
        images = pl_module.generate(pl_module.fixed_z).float().cpu()
        grid = make_grid(images, nrow=self.nrow, normalize=True, value_range=pl_module.output_range)
        trackers.log_image(trainer.loggers, "samples/fixed_z", grid, pl_module.g_step)
        trackers.log_histogram(trainer.loggers, "pixels/generated", images, pl_module.g_step)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            save_image(grid, self.directory / SAMPLE_GRID_TEMPLATE.format(g_step=pl_module.g_step))
