"""``python -m backend``: every stage on its own, and the whole pipeline.

Each sub-command lives in its own module under ``backend/commands`` and provides
``add_parser(subparsers)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib

from . import __version__
from .checks import CheckedParser
from .command_line import run_command

# Sub-command name -> module in backend.commands. Order is the order of --help.
COMMANDS = {
    "poses": "poses",
    "labels": "labels",
    "stats": "stats",
    "normalize": "normalize",
    "preview": "side_by_side",
    "preview-poses": "preview_poses",
    "demo": "demo",
    "retarget": "retarget",
    "serve": "serve",
    "export-onnx": "export_onnx",
}


def build_parser() -> argparse.ArgumentParser:
    parser = CheckedParser(
        prog="python -m backend",
        description="Everybody Dance Now motion transfer: poses, labels, normalization, transfer.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS.values():
        module = importlib.import_module(f"{__package__}.commands.{module_name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))
