"""User-facing errors: each carries one sentence naming the offending value and what is accepted."""

from collections.abc import Callable


class SnganReproError(Exception):
    """Base class of the errors the command line reports as one sentence, without a traceback."""


class ConfigError(SnganReproError):
    """The composed configuration is invalid (a bad value or an impossible combination)."""


class DatasetUnavailableError(SnganReproError):
    """A dataset is missing on disk and could not be downloaded."""


class CheckpointError(SnganReproError):
    """A checkpoint path is missing or the file is not a readable checkpoint."""


class DiskFullError(SnganReproError):
    """The disk filled up while writing a run's file; what was written before stays."""


class TrainingDivergedError(SnganReproError):
    """A loss or a weight became NaN or infinite; the last good checkpoint stays on disk."""


class MetricsUnavailableError(SnganReproError):
    """A metric's feature extractor cannot be loaded (e.g. no Inception weights offline)."""


class ReportError(SnganReproError):
    """A path given to the report holds no run, or a run's files cannot be read."""


def raised_from(error: BaseException | None, wanted: Callable[[BaseException], bool]) -> BaseException | None:
    """``error``, or the first error in the chain it was raised from or during (causes, then contexts), for which
    ``wanted`` holds; None if there is none (libraries wrap errors: Lightning's loggers, OmegaConf's resolvers)."""
    while error is not None:
        if wanted(error):
            return error
        error = error.__cause__ or error.__context__
    return None
