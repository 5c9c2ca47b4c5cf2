"""What a value a user gives may be, stated once: the command lines' flags and the worker's
request fields check their numbers and sizes here.

The user's per-frame adjustments of a pose (scale and offsets, `ADJUST_LIMITS`) are checked
here too, by `adjustments_problem`: the command line's ``--adjustments`` file, the
worker's ``adjustments`` field, the normalizer and the add-on's keyframe sampler all apply this one rule.

A `Number` or a `Size` says what it allows (``allowed()``), checks a value (``check``: a
`ValueError` naming the value and what is allowed), and parses a flag's text the same way
(``add_argument(type=FRAME.parse)``; argparse adds the flag's name). Every number is
finite and bounded, so a nan, an inf or a value of 1e308 is refused where it enters, never
three stages later as a traceback or a MemoryError.

Standard library only: the worker's protocol checks (and through them Blender's Python)
import it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_FRAMES = 10**8  # frame indices and counts (a month at 30 fps)
MAX_SIDE = 16384  # pixels per side of an image the program makes


@dataclass(frozen=True)
class Number:
    """An int or a float within [low, high] (or (low, high] with ``above``), odd on request."""

    kind: type = float
    low: float = 0.0
    high: float = 1e6
    above: bool = False  # exclusive lower bound: > low
    odd: bool = False

    def allowed(self) -> str:
        what = ("an odd integer" if self.odd else "an integer") if self.kind is int else "a number"
        low = f"> {_plain(self.low)}" if self.above else f">= {_plain(self.low)}"
        return f"{what} {low} and <= {_plain(self.high)}"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        try:
            number = float(value)
        except OverflowError:  # an int beyond any float: beyond any range too
            return False
        if self.kind is int and not (isinstance(value, int) or number.is_integer()):
            return False
        if not math.isfinite(number) or value > self.high:
            return False
        if (value <= self.low) if self.above else (value < self.low):
            return False
        return not self.odd or int(value) % 2 == 1

    def check(self, value: Any, name: str) -> Any:
        """``value`` as ``kind``; `ValueError` "NAME must be ..., got VALUE" otherwise."""
        if not self.accepts(value):
            raise ValueError(f"{name} must be {self.allowed()}, got {value!r}")
        return self.kind(value)

    def parse(self, text: str) -> Any:
        """A flag's text as a checked value (`argparse.ArgumentTypeError` otherwise)."""
        try:
            value = int(text) if self.kind is int else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be {self.allowed()}, got {text!r}") from None
        if not self.accepts(value):
            raise argparse.ArgumentTypeError(f"must be {self.allowed()}, got {text!r}")
        return value


def _plain(value: float) -> str:
    """A bound as people write it: 1000000 rather than 1e+06, 0.5 as 0.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def Int(low: int = 0, high: int = MAX_FRAMES, odd: bool = False) -> Number:
    return Number(int, low, high, odd=odd)


def Float(low: float = 0.0, high: float = 1e6, above: bool = False) -> Number:
    return Number(float, low, high, above=above)


# The ranges shared by several commands and the worker's requests.
FRAME = Int(0, MAX_FRAMES)  # a 0-based frame index
FRAME_STOP = Int(1, MAX_FRAMES)  # the frame after the last one
FPS = Float(0.0, 1000.0, above=True)
THREADS = Int(0, 1024)  # 0: chosen for the cores
WORKERS = Int(1, 1024)
MAX_GAP_S = Float(0.0, 3600.0)
SMOOTH_WINDOW = Int(1, 999, odd=True)
ALPHA = Float(0.0, 1.0)  # where the far ankle position lies (normalize.stats)
PANEL_HEIGHT = Int(16, MAX_SIDE)
DEMO_SECONDS = Float(0.0, 600.0, above=True)
ATOL = Float(0.0, 1.0, above=True)


# The allowed range of each adjustment, ends included (offsets in target frame heights); the
# add-on's sliders take their limits from here too, so no keyed value is refused.
ADJUST_LIMITS = {"scale": (0.05, 10.0), "offset_x": (-2.0, 2.0), "offset_y": (-2.0, 2.0)}



def adjust_problem(name: str, value: Any) -> str | None:
    """What is wrong with adjustment ``name``'s value (one number or one per frame), or None:
    each must be finite and within `ADJUST_LIMITS`."""
    low, high = ADJUST_LIMITS[name]
    values = value if isinstance(value, list) else [value]
    for i, v in enumerate(values):
        number = _as_float(v)
        if number is None or not (math.isfinite(number) and low <= number <= high):
            where = f" at frame {i}" if isinstance(value, list) else ""
            shown = f"{number:g}" if number is not None else _short_repr(v)
            return (f"adjustment {name} must be a finite number from {low:g} to {high:g}, got "
                    f"{shown}{where}")
    return None


def adjustments_problem(values: Mapping[str, Any], n_frames: int | None = None) -> str | None:
    """What is wrong with a set of adjustments (``{"scale": ..., "offset_x": ...}``, each a
    number or a list), or None: unknown names, each value (`adjust_problem`), per-frame lists
    of different lengths, or (with ``n_frames``, the job's frame count) lists of another
    length than the job has frames. The one statement of these rules."""
    unknown = sorted(set(values) - set(ADJUST_LIMITS))
    if unknown:
        return f"unknown adjustments {unknown}; expected {list(ADJUST_LIMITS)}"
    lengths = set()
    for name, value in values.items():
        if isinstance(value, (list, tuple)):
            value = list(value)
            lengths.add(len(value))
        problem = adjust_problem(name, value)
        if problem is not None:
            return problem
    if len(lengths) > 1:
        return f"per-frame adjustments have different lengths: {sorted(lengths)}"
    if lengths and n_frames is not None and lengths != {n_frames}:
        return (f"the adjustments have {lengths.pop()} values per field, but the job has "
                f"{n_frames} frames")
    return None


def _as_float(value: Any) -> float | None:
    """``value`` as a float; None for what is no number, or an int beyond any float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}..."


@dataclass(frozen=True)
class Size:
    """A ``WxH`` image size of at least ``low`` and at most ``high`` pixels a side; with
    ``multiple`` each side a multiple of it (what the networks accept)."""

    low: int = 1
    high: int = MAX_SIDE
    multiple: int = 1

    def allowed(self) -> str:
        sides = f"from {self.low} to {self.high} pixels"
        even = f", multiples of {self.multiple}" if self.multiple > 1 else ""
        return f"WxH with sides {sides}{even} (such as 1024x512)"

    def accepts(self, size: tuple[int, int]) -> bool:
        return len(size) == 2 and all(self.low <= side <= self.high and side % self.multiple == 0
                                      for side in size)

    def check(self, size: tuple[int, int], name: str) -> tuple[int, int]:
        if not self.accepts(size):
            raise ValueError(f"{name} must be {self.allowed()}, got {size[0]}x{size[1]}")
        return size

    def parse(self, text: str) -> tuple[int, int]:
        try:
            w, h = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {self.allowed()}, got {text!r}") from None
        try:
            return self.check((w, h), "size")
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {self.allowed()}, got {text!r}") from None


def parse_point(text: str) -> tuple[float, float]:
    """``"640,360"`` -> (640.0, 360.0), finite and on an image."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must look like 640,360, got {text!r}") from None
    if not all(math.isfinite(v) and 0 <= v <= MAX_SIDE for v in (x, y)):
        raise argparse.ArgumentTypeError(f"must be two pixel coordinates from 0 to {MAX_SIDE}, "
                                         f"got {text!r}")
    return x, y


class CheckedParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose refusals are one ``error: ...`` line and exit status 2,
    like every other refusal of the command lines (`command_line`)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")
