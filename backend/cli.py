"""``python -m backend``: every stage on its own, and the whole pipeline.

Each sub-command lives in its own module under ``backend/commands`` and provides
``add_parser(subparsers)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import BackendError
from .oserrors import as_backend_error
from .user_warnings import plain_warnings

# Sub-command name -> module in backend.commands. Order is the order of --help.
COMMANDS = {
    "poses": "poses",
    "labels": "labels",
    "stats": "stats",
    "normalize": "normalize",
    "preview": "preview",
    "preview-poses": "preview_poses",
    "demo": "demo",
    "retarget": "retarget",
    "serve": "serve",
    "export-onnx": "export_onnx",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    args = build_parser().parse_args(argv)
    try:
        with plain_warnings():
            return int(args.run(args) or 0)
    except (BackendError, OSError) as exc:
        error = as_backend_error(exc)  # a full disk, a read-only folder: the user's to fix
        if error is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
