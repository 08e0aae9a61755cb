"""``python -m sngan_repro.report <run or sweep dirs...> [--output DIR]``."""

import argparse
import sys
from pathlib import Path

from ..errors import ReportError, SnganReproError
from . import build_report
from .study import build_study_report, is_study


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sngan_repro.report", description=__package__ and
                                     sys.modules[__package__].__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path,
                        help="run directories, sweep directories, or folders of them; or one study folder")
    parser.add_argument("--output", type=Path, default=None,
                        help="where to write the report (default: <the one path given>/report)")
    args = parser.parse_args(argv)
    try:
        studies = [path for path in args.paths if is_study(path)]
        if studies and len(args.paths) > 1:
            raise ReportError(f"{studies[0]} is a study, whose report is made on its own; give it alone.")
        if studies:
            _, summary = build_study_report(studies[0], args.output or studies[0] / "report")
        else:
            summary = build_report(args.paths, args.output).summary()
    except SnganReproError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
