"""Building objects from config nodes (``_target_``) with the project's one-sentence errors."""

from hydra.errors import InstantiationException
from hydra.utils import instantiate

from .errors import ConfigError, SnganReproError


def instantiate_checked(node, **kwargs):
    """``hydra.utils.instantiate`` that lets the project's one-sentence errors through unwrapped."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, SnganReproError):
            raise cause from None
        reason = " ".join(str(cause or error).split())  # Hydra's messages span lines
        raise ConfigError(f"Could not build {node.get('_target_')!r} from the config: {reason}") from error
