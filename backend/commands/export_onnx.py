"""``python -m backend export-onnx BUNDLE [-o OUT_DIR] [--opset N]``: the bundle's generators
as ONNX files, checked against PyTorch, for ONNX Runtime inference on the CPU."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..checks import ATOL, Int
from ..folders import MODEL_BUNDLE, refuse_other_kind
from ..onnx.export import DEFAULT_ATOL, DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, describe


DESCRIPTION = """Write generator.onnx (and face_generator.onnx when the bundle has a face
generator) into the bundle folder or OUT_DIR. Each file is run by ONNX Runtime and compared with
PyTorch before it replaces an older one. Transfer on the CPU uses these files when they match
the bundle's weights."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-onnx", help="export a model bundle's generators to ONNX",
                       description=DESCRIPTION)
    p.add_argument("bundle", type=Path, help="model bundle folder")
    p.add_argument("-o", "--output", type=Path, default=None, metavar="OUT_DIR",
                   help="folder to write into (default: the bundle folder)")
    p.add_argument("--opset", type=Int(MIN_OPSET, MAX_OPSET).parse, default=DEFAULT_OPSET,
                   help=f"ONNX opset ({MIN_OPSET}-{MAX_OPSET}, default {DEFAULT_OPSET})")
    p.add_argument("--static", action="store_true",
                   help="fix batch 1 and the training resolution in the graph (default: any "
                        "batch and size)")
    p.add_argument("--atol", type=ATOL.parse, default=DEFAULT_ATOL,
                   help=f"largest allowed |ONNX Runtime - PyTorch| (default {DEFAULT_ATOL:g})")
    p.add_argument("--no-check", action="store_true", help="skip the comparison with PyTorch")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..onnx.export import export_bundle_onnx

    if args.output is not None:
        refuse_other_kind(args.output, MODEL_BUNDLE)
    result = export_bundle_onnx(args.bundle, args.output, opset=args.opset,
                                dynamic=not args.static, check=not args.no_check,
                                atol=args.atol)
    for network in result.networks:
        print(describe(network), file=sys.stderr)
    return 0
