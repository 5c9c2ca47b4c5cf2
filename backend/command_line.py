"""How every command line (``python -m backend``, ``python -m training``) ends: exit codes.

0 done; 2 a problem with the user's input or machine, said in one line naming the file
(``error: PATH: problem``); 130 stopped by the user (Ctrl-C, a cancel, training's STOP),
resumable. Anything else is a bug and keeps its traceback. Warnings print in one format
(`user_warnings`).
"""

from __future__ import annotations

import argparse
import sys

from .errors import BackendError, JobCancelled
from .oserrors import as_backend_error
from .user_warnings import plain_warnings


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command ``args.run(args)``; its exit status (see the module)."""
    try:
        with plain_warnings():
            return int(args.run(args) or 0)
    except JobCancelled as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return 130
    except (BackendError, OSError) as exc:
        error = as_backend_error(exc)  # a full disk, a read-only folder: the user's to fix
        if error is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
