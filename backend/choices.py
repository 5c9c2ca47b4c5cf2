"""The words for devices and precisions that the command lines, the worker's protocol and the
training options accept; ``backend.runtime`` says what each means.

No torch here: building a command-line parser (``python -m backend --help``, the worker's
``serve``) must stay fast.
"""

DEVICES = ("auto", "cpu", "cuda", "mps")  # "cuda:N" picks a GPU too
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LEGACY_PRECISIONS = {"off": "fp32"}  # training's --amp off, in run folders of earlier versions


def parse_device(text: str) -> str:
    """A ``--device`` value: one of `DEVICES`, or ``cuda:N`` (for ``add_argument(type=)``)."""
    import argparse

    kind, colon, index = text.partition(":")
    if kind not in DEVICES or (colon and not (kind == "cuda" and index.isdigit())):
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(DEVICES)} or cuda:N (a GPU "
                                         f"by number), got {text!r}")
    return text
