"""`gonghui-training`: operator commands that run against the training service's database.

Each command is a subcommand with its own function and parser below;
`gonghui-training --help` lists them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from gonghui_shared import pii_rotation
from training.config import TrainingSettings
from training.models import Base

EXIT_USAGE = pii_rotation.EXIT_USAGE


class CommandFailed(Exception):
    """An expected failure: printed as one message, exit code 2."""


def _settings() -> TrainingSettings:
    try:
        return TrainingSettings()
    except ValidationError as exc:
        raise CommandFailed(f"invalid settings: {exc}") from None


# ---------------------------------------------------------------- rotate-pii-keys


async def _rotate_pii_keys(args: argparse.Namespace) -> int:
    return await pii_rotation.run_command(_settings(), Base.metadata, args)


def _add_rotate_pii_keys(commands: Any) -> None:
    parser = commands.add_parser(
        "rotate-pii-keys",
        help="re-encrypt the ID numbers and phones of non-member enrolees and entrants",
        description=pii_rotation.DESCRIPTION
        + " Training keeps no lookup hash of its own to recompute: a non-member's person key "
        "(p:…) is the identity the dashboards count by, and stays as it is (see the README). "
        "Needs TRAINING_DATABASE_URL (or GONGHUI_DATA_DIR) as the service uses it; no NATS.",
    )
    pii_rotation.add_arguments(parser)
    parser.set_defaults(run=_rotate_pii_keys)


# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gonghui-training", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    _add_rotate_pii_keys(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 the command found a problem, 2 usage)."""
    args = build_parser().parse_args(argv)
    try:
        return int(asyncio.run(args.run(args)))
    except CommandFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
