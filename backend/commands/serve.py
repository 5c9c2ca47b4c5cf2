"""``python -m backend serve``: the worker process that the Blender add-on talks to.

JSON lines on stdin/stdout (see docs/protocol.md); logs on stderr. Not meant to be typed by
hand, though it can be: paste a ``run`` line and watch the replies.
"""

from __future__ import annotations

import argparse

from ..checks import THREADS
from ..choices import PRECISIONS, parse_device


DESCRIPTION = """Read protocol messages (run, cancel, shutdown) as JSON lines on stdin and
answer on stdout (hello, progress, done, error, cancelled); logs go to stderr. Exits on shutdown
or when stdin closes. See docs/protocol.md."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", description=DESCRIPTION,
                       help="the worker the Blender add-on talks to (JSON lines on stdin/stdout)")
    p.add_argument("--device", type=parse_device, default="auto",
                   help="where the networks run: auto (default: cuda, else mps, else cpu), "
                        "cpu, cuda, cuda:N (a GPU by number) or mps")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="numeric precision of the networks for every job (default auto: "
                        "bf16/fp16 on a GPU, fp32 on the CPU)")
    p.add_argument("--threads", type=THREADS.parse, default=0, metavar="N",
                   help="threads per network operation on the CPU (default 0: chosen per job "
                        "for the cores and the model's frame size)")
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="hand each transfer job to a Ray cluster, several at once: 'local' "
                        "(the one started on this machine, else one of the worker's own, on "
                        "loopback only) or a head node's HOST:PORT ([ADDRESS]:PORT for IPv6; "
                        "needs pip install -e '.[cluster]')")
    p.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="stderr log detail")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.cluster is not None:
        from ..cluster import require_ray

        require_ray()
    from ..worker.execute import WorkerSettings
    from ..worker.serve import serve  # claims stdout: import only when serving

    return serve(WorkerSettings(device=args.device, precision=args.precision, threads=args.threads,
                                cluster=args.cluster, log_level=args.log_level))
