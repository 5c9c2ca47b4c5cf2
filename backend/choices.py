"""The words for devices and precisions that the command lines, the worker's protocol and the
training options accept; ``backend.runtime`` says what each means.

No torch here: building a command-line parser (``python -m backend --help``, the worker's
``serve``) must stay fast.
"""

DEVICES = ("auto", "cpu", "cuda", "mps")  # "cuda:N" picks a GPU too
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LEGACY_PRECISIONS = {"off": "fp32"}  # training's --amp off, in run folders of earlier versions
