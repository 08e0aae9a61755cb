"""``python -m sngan_repro.report <run or sweep dirs...> [--output DIR]``."""

import argparse
import sys
from pathlib import Path

from ..errors import SnganReproError
from . import build_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sngan_repro.report", description=__package__ and
                                     sys.modules[__package__].__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="run directories, sweep directories, or folders of them")
    parser.add_argument("--output", type=Path, default=None,
                        help="where to write the report (default: <the one path given>/report)")
    args = parser.parse_args(argv)
    try:
        report = build_report(args.paths, args.output)
    except SnganReproError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
