"""The shared shape of every ``jobs/*.py`` entrypoint: parse, load config, call one function.

Errors raised on purpose become one line on stderr and exit code 2, so a bad config
fails at the start of the job with a message instead of a stack trace.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence, TypeVar

from raymlops.config import CONFIG_MODELS, find_config, load_config
from raymlops.errors import RaymlopsError

T = TypeVar("T")


def parse_args(description: str, kind: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``--config FILE`` and repeatable ``--set KEY.PATH=VALUE``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default=None, help=f"YAML config (default configs/{kind}.yaml when it is in "
                        "the working directory, else the one installed with raymlops)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a config value (repeatable)")
    return parser.parse_args(argv)


def run_job(description: str, kind: str, run: Callable[[object], T],
            describe: Callable[[T], str], argv: Sequence[str] | None = None) -> int:
    """Load the ``kind`` config, check inputs, connect to Ray, run, and print the outcome; returns the exit code."""
    args = parse_args(description, kind, argv)
    try:
        cfg: object = load_config(find_config(args.config, kind), CONFIG_MODELS[kind], args.overrides)
        outcome = run(cfg)
    except RaymlopsError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    print(describe(outcome), flush=True)
    return 0
