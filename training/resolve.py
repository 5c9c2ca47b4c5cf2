"""What one prepared run makes of the training options: "auto" matte and window, the precision
of a run of an earlier version, and whether the training size fits the prepared frames."""

from __future__ import annotations

import sys
from dataclasses import replace

from backend.errors import InputError
from backend.runtime import resolve_device
from backend.target.prepared import PreparedRun

from .options import TrainOptions
from .run_folder import RunFolder, load_run_options


def resolve_matte(opts: TrainOptions, prepared: PreparedRun, say: bool = True) -> TrainOptions:
    """``opts`` with ``model.matte`` "on" or "off": "auto" is on where the run has a plate
    of a static camera. "on" without one is an error that says why."""
    background = prepared.manifest.background
    mode = opts.model.matte
    if mode == "off":
        return opts
    if background is None:
        if mode == "auto":
            if say:
                print(f"note: {prepared.folder} was prepared without the person's masks; "
                      f"training the paper's full-frame generator (`prepare` again adds them)",
                      file=sys.stderr)
            return replace(opts, model=replace(opts.model, matte="off"))
        raise InputError(prepared.folder, "was prepared without the person's masks and the "
                                          "background plate; run `prepare` again (it adds "
                                          "them), or train with --matte off")
    if not background.get("static"):
        if mode == "on":
            raise InputError(prepared.plate_path, f"{background.get('verdict')}: a plate "
                                                  f"cannot stand behind it; train with "
                                                  f"--matte off (the paper's full frame)")
        if say:
            print(f"note: {background.get('verdict')}; training the paper's full-frame "
                  f"generator", file=sys.stderr)
        return replace(opts, model=replace(opts.model, matte="off"))
    return replace(opts, model=replace(opts.model, matte="on"))


def resolve_window(opts: TrainOptions, prepared: PreparedRun, say: bool = True) -> TrainOptions:
    """``opts`` (its matte resolved) with ``model.window`` "on" or "off": "auto" is on
    wherever the matte is; "on" without a matte is an error that says why."""
    mode, matte = opts.model.window, opts.model.matte == "on"
    if mode == "off" or (mode == "on" and matte):
        return opts
    if mode == "on":
        raise InputError(prepared.folder, "a person window needs the matte, and this run "
                                          "trains the whole frame (see the note above); "
                                          "train with --window off")
    if not matte and say:
        print("note: no person window without the matte: G paints the whole frame",
              file=sys.stderr)
    return replace(opts, model=replace(opts.model, window="on" if matte else "off"))


def check_prepared(prepared: PreparedRun, opts: TrainOptions) -> None:
    cw, ch = prepared.canvas
    w, h = opts.size
    if w * ch != h * cw:
        raise InputError(prepared.folder, f"was prepared at {cw}x{ch}, which does not have the "
                                          f"aspect ratio of the training size {w}x{h}; prepare "
                                          f"again with --preset {opts.preset}")
    if w > cw:
        print(f"note: frames were prepared at {cw}x{ch}, smaller than the training size "
              f"{w}x{h}; they are enlarged on load", file=sys.stderr)


def precision_to_run(opts: TrainOptions, run: RunFolder) -> str:
    """The precision to set up: the options' own, except for "auto" in a run of an earlier
    version, whose train_options.json says "auto" (the precision used was not recorded then):
    on the CPU it meant fp32 and stays so, so that a resume is exact (`backend.runtime` now
    picks bf16 on CPUs that compute it natively)."""
    precision = opts.runtime.precision
    if precision != "auto" or not run.options.is_file():
        return precision
    saved = load_run_options(run.root)
    if saved is not None and saved.runtime.precision == "auto" and \
            resolve_device(opts.runtime.device).type == "cpu":
        return "fp32"
    return precision
