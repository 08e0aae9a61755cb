"""Hydra's own refusals of a command line (an unknown option or key, an override it cannot parse) worded as one
sentence that names the override and what is accepted, for ``compose`` and for the commands alike."""

import os
import sys
import traceback
from collections.abc import Callable, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException, OverrideParseException
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

from .errors import ConfigError, SnganReproError, raised_from

# Hydra's command-line flags that take a value (every other word starting with '-' stands alone)
_FLAGS_WITH_VALUE = {"-c", "--cfg", "-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir", "-i",
                     "--info", "--experimental-rerun", "-p", "--package"}


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0].rstrip(".") if lines else type(error).__name__


def check_syntax(overrides: Sequence[str], sweeps_allowed: bool = False) -> None:
    """Each override parses as Hydra's grammar has it (key=value, group=option, +key=value, ~key); without
    ``sweeps_allowed`` (one run), none lists several values."""
    parser = OverridesParser.create()
    for text in overrides:
        try:
            (override,) = parser.parse_overrides([text])
        except OverrideParseException as error:
            key, _, value = text.partition("=")
            if "=" in value:  # e.g. the path of a checkpoint named g_step=0000500.ckpt by an earlier version
                raise ConfigError(f"{text!r} is not an override Hydra can read: its value holds '='; quote the value "
                                  f"for Hydra inside the shell's quotes: {key}=\"'{value}'\".") from None
            raise ConfigError(f"{text!r} is not an override Hydra can read ({_first_line(error)}); write key=value, "
                              f"group=option, +key=value or ~key.") from None
        if not override.key_or_group:
            raise ConfigError(f"{text!r} names no key; write key=value, group=option, +key=value or ~key.")
        if override.is_sweep_override() and not sweeps_allowed:
            raise ConfigError(f"{text} lists several values: add -m (--multirun) to sweep them, or quote the value "
                              f"(key='a,b') to mean the text itself.")


def composition_error(error: Exception, overrides: Sequence[str], settings_of: Callable[[str, tuple[str, ...]], str]
                      ) -> ConfigError:
    """One sentence for a Hydra or OmegaConf error raised while composing ``overrides``; ``settings_of(node,
    other_overrides)`` lists the settings a misspelled key's node has (``config.settings_of``)."""
    if isinstance(error, OverrideParseException):
        return ConfigError(f"An override is not Hydra's syntax ({_first_line(error)}); write key=value, group=option, "
                           f"+key=value or ~key.")
    if isinstance(error, MissingConfigException) and error.missing_cfg_file and error.options:
        group, _, option = error.missing_cfg_file.rpartition("/")
        return ConfigError(f"{group}={option!r} is not an option of {group}; choose one of "
                           f"{', '.join(error.options)}.")
    full_key = getattr(error.__cause__, "full_key", None)
    if isinstance(error, ConfigCompositionException) and full_key:
        parent = full_key.rpartition(".")[0]
        known = settings_of(parent, tuple(text for text in overrides if full_key not in text))
        where = f"of {parent}" if parent else "at the top level"
        return ConfigError(f"{full_key} is not a setting {where}" + (f"; it has {known}." if known else "."))
    message = _first_line(error)
    if message.startswith("Could not append to config"):
        key = str(error).split("'")[1]
        return ConfigError(f"+{key} adds a setting that exists already; set it with {key}=<value>.")
    if message.startswith("Could not delete from config"):
        key = str(error).split("'")[1]
        return ConfigError(f"~{key} deletes a setting that does not exist.")
    if message.startswith("Multiple values for"):
        group = message.removeprefix("Multiple values for").strip(" .").split(".")[0]
        return ConfigError(f"+{group}=... adds a second {group}; choose it with {group}=<option> (no +).")
    if isinstance(error, InterpolationResolutionError):
        return ConfigError(f"The overrides {' '.join(overrides)} leave a value that cannot be resolved ({message}); "
                           f"a group or key it refers to was removed, replaced or misspelled.")
    return ConfigError(f"The overrides {' '.join(overrides)} do not compose: {message}.")


def overrides_of(argv: Sequence[str]) -> list[str]:
    """The overrides of a command line (its words that are not Hydra's flags or their values)."""
    overrides, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = word in _FLAGS_WITH_VALUE
        else:
            overrides.append(word)
    return overrides


def run_command(main: Callable[[], None], settings_of: Callable[[str, tuple[str, ...]], str]) -> None:
    """Run a ``hydra.main`` function; an error Hydra raises while composing the command line's configs (before
    any run starts) is printed as one sentence (``settings_of`` as in ``composition_error``), exit code 2, no
    traceback."""
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # Hydra raises its errors instead of printing them itself
    try:
        main()
    except SnganReproError as error:  # refused outside any run (a run's own are caught in it), e.g. by a study
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except (HydraException, OmegaConfBaseException, OSError) as error:
        run_code = main.__wrapped__.__code__
        if any(frame.f_code is run_code for frame, _ in traceback.walk_tb(error.__traceback__)):
            raise  # raised inside a run, not by the composition: a bug, shown whole
        # Hydra creating the run or sweep directory (or its files there), or the fresh_directory resolver doing so
        unwritable = raised_from(error, lambda cause: isinstance(cause, OSError) and cause.filename is not None) \
            if isinstance(error, OSError | InterpolationResolutionError) else None
        if unwritable is not None:
            print(f"error: {unwritable.filename} cannot be created or written ({unwritable.strerror}); set "
                  f"hydra.run.dir, or hydra.sweep.dir for a sweep (-m), to a folder this user can write.",
                  file=sys.stderr)
            sys.exit(2)
        overrides = overrides_of(sys.argv[1:])
        try:
            check_syntax(overrides, sweeps_allowed=bool({"-m", "--multirun"} & set(sys.argv[1:])))
            sentence = composition_error(error, overrides, settings_of)
        except ConfigError as syntax_error:
            sentence = syntax_error
        print(f"error: {sentence}", file=sys.stderr)
        sys.exit(2)
