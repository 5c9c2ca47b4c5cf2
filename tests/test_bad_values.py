"""Every bad value is an error where it enters (issue 19), as a table of the rules: each numeric
flag of every command of ``python -m backend`` and ``python -m training``, and each numeric
field of the worker's requests, with a value it refuses and the message that says so, written
out here (not asked of the code under test). A refusal is one ``error:`` line naming the flag,
the value and what is allowed, exit status 2, before anything is loaded or written; what a
flag allows is stated once (backend/checks.py), and a request field shares its flag's range.

A flag or a field without a row fails `test_every_numeric_flag_has_a_row` or
`test_every_numeric_request_field_has_a_row`: add its row (a value just outside its range, and
what the range is) when adding it.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
from dataclasses import fields
from pathlib import Path

import pytest

from backend.checks import Size
from backend.demo.run import DEMO_BUNDLE
from backend.worker.protocol import (PROTOCOL_VERSION, Adjustments, Preview, ProtocolError, Run,
                                     parse_line, validate)

# What each range allows, as its messages say it.
FRAME = "an integer >= 0 and <= 100000000"
FRAME_STOP = "an integer >= 1 and <= 100000000"
FPS = "a number > 0 and <= 1000"
MAX_GAP = "a number >= 0 and <= 3600"
SMOOTH_WINDOW = "an odd integer >= 1 and <= 999"
WORKERS = "an integer >= 1 and <= 1024"
THREADS = "an integer >= 0 and <= 1024"
FRACTION = "a number >= 0 and <= 1"
ABOVE_0_TO_1 = "a number > 0 and <= 1"
PANEL_HEIGHT = "an integer >= 16 and <= 16384"
DEMO_SECONDS = "a number > 0 and <= 600"
HOLDOUT = "a number >= 0 and <= 0.9"
STEPS = "an integer >= 1 and <= 1000000000"
EPOCHS = "a number > 0 and <= 100000"
FIX_EPOCHS = "a number >= 0 and <= 100000"
LAYERS = "an integer >= 1 and <= 8"
BLOCKS = "an integer >= 0 and <= 64"
LOSS_WEIGHT = "a number >= 0 and <= 10000"
BETA = "a number >= 0 and <= 0.9999"
CHAIN = "an integer >= 2 and <= 64"
NOISE = "a number >= 0 and <= 10"
BATCH = "an integer >= 1 and <= 4096"
LOADERS = "an integer >= 0 and <= 256"
SEED = "an integer >= 0 and <= 4294967295"
KEEP = "an integer >= 1 and <= 1000000"
EVAL_FRAMES = "an integer >= 0 and <= 100000"
EVALUATE_FRAMES = "an integer >= 2 and <= 100000000"
STRIPS = "an integer >= 0 and <= 1000"
OPSET = "an integer >= 11 and <= 20"  # ONNX opsets the exporter writes

# (program, command, flag, a value just outside the range's low end (or even, where it must be
# odd), what the flag allows). One row per numeric flag.
FLAGS = [
    ("backend", "poses", "--start", "-1", FRAME),
    ("backend", "poses", "--stop", "0", FRAME_STOP),
    ("backend", "poses", "--fps", "0", FPS),
    ("backend", "poses", "--max-gap", "-0.5", MAX_GAP),
    ("backend", "poses", "--smooth-window", "4", SMOOTH_WINDOW),
    ("backend", "poses", "--workers", "0", WORKERS),
    ("backend", "stats", "--alpha", "-0.1", FRACTION),
    ("backend", "normalize", "--alpha", "-1", FRACTION),
    ("backend", "preview", "--target-frame", "-1", FRAME),
    ("backend", "preview", "--start", "-5", FRAME),
    ("backend", "preview", "--stop", "0", FRAME_STOP),
    ("backend", "preview", "--fps", "-1", FPS),
    ("backend", "preview", "--max-gap", "-1", MAX_GAP),
    ("backend", "preview", "--smooth-window", "0", SMOOTH_WINDOW),
    ("backend", "preview", "--workers", "0", WORKERS),
    ("backend", "preview", "--height", "15", PANEL_HEIGHT),
    ("backend", "preview-poses", "--start", "-1", FRAME),
    ("backend", "preview-poses", "--stop", "0", FRAME_STOP),
    ("backend", "preview-poses", "--fps", "0", FPS),
    ("backend", "preview-poses", "--max-gap", "-0.5", MAX_GAP),
    ("backend", "preview-poses", "--smooth-window", "2", SMOOTH_WINDOW),
    ("backend", "preview-poses", "--workers", "-1", WORKERS),
    ("backend", "retarget", "--start", "-1", FRAME),
    ("backend", "retarget", "--stop", "0", FRAME_STOP),
    ("backend", "retarget", "--fps", "0", FPS),
    ("backend", "retarget", "--max-gap", "-0.5", MAX_GAP),
    ("backend", "retarget", "--smooth-window", "4", SMOOTH_WINDOW),
    ("backend", "retarget", "--workers", "0", WORKERS),
    ("backend", "retarget", "--threads", "-1", THREADS),
    ("backend", "serve", "--threads", "-1", THREADS),
    ("backend", "demo", "--seconds", "0", DEMO_SECONDS),
    ("backend", "export-onnx", "--atol", "0", ABOVE_0_TO_1),
    ("backend", "export-onnx", "--opset", "10", OPSET),
    ("training", "prepare", "--start", "-1", FRAME),
    ("training", "prepare", "--stop", "0", FRAME_STOP),
    ("training", "prepare", "--workers", "0", WORKERS),
    ("training", "prepare", "--holdout", "-0.1", HOLDOUT),
    ("training", "train", "--steps", "0", STEPS),
    ("training", "train", "--ngf", "0", WORKERS),
    ("training", "train", "--ndf", "0", WORKERS),
    ("training", "train", "--face-ngf", "0", WORKERS),
    ("training", "train", "--face-ndf", "0", WORKERS),
    ("training", "train", "--n-downsample-global", "0", LAYERS),
    ("training", "train", "--n-layers-D", "0", LAYERS),
    ("training", "train", "--num-D-global", "0", LAYERS),
    ("training", "train", "--num-D-local", "0", LAYERS),
    ("training", "train", "--face-n-downsampling", "0", LAYERS),
    ("training", "train", "--face-n-layers-D", "0", LAYERS),
    ("training", "train", "--n-blocks-global", "-1", BLOCKS),
    ("training", "train", "--n-blocks-local", "-1", BLOCKS),
    ("training", "train", "--face-n-blocks", "-1", BLOCKS),
    ("training", "train", "--lambda-feat", "-1", LOSS_WEIGHT),
    ("training", "train", "--lambda-vgg", "-1", LOSS_WEIGHT),
    ("training", "train", "--face-vgg-weight", "-1", LOSS_WEIGHT),
    ("training", "train", "--lambda-l1", "-0.5", LOSS_WEIGHT),
    ("training", "train", "--lambda-matte", "-1", LOSS_WEIGHT),
    ("training", "train", "--lambda-flicker", "-1", LOSS_WEIGHT),
    ("training", "train", "--vgg-scale", "0", ABOVE_0_TO_1),
    ("training", "train", "--lr", "0", ABOVE_0_TO_1),
    ("training", "train", "--beta1", "-0.5", BETA),
    ("training", "train", "--beta2", "-0.1", BETA),
    ("training", "train", "--constant-fraction", "-0.5", FRACTION),
    ("training", "train", "--chain-length", "1", CHAIN),
    ("training", "train", "--noise-std", "-1", NOISE),
    ("training", "train", "--epochs", "0", EPOCHS),
    ("training", "train", "--epochs-global", "0", EPOCHS),
    ("training", "train", "--epochs-local", "-1", EPOCHS),
    ("training", "train", "--epochs-face", "0", EPOCHS),
    ("training", "train", "--fix-global-epochs", "-1", FIX_EPOCHS),
    ("training", "train", "--batch-size", "0", BATCH),
    ("training", "train", "--workers", "-1", LOADERS),
    ("training", "train", "--seed", "-1", SEED),
    ("training", "train", "--checkpoint-every", "0", STEPS),
    ("training", "train", "--keep-checkpoints", "0", KEEP),
    ("training", "train", "--log-every", "0", STEPS),
    ("training", "train", "--image-every", "-5", STEPS),
    ("training", "train", "--eval-frames", "-1", EVAL_FRAMES),
    ("training", "train", "--threads", "-1", THREADS),
    ("training", "train", "--window-margin", "-0.1", FRACTION),
    ("training", "evaluate", "--frames", "1", EVALUATE_FRAMES),
    ("training", "evaluate", "--strips", "-1", STRIPS),
]

# Each range's high end: the highest value allowed and the next one refused, through one of
# its flags.
HIGH_ENDS = [
    ("backend", "retarget", "--start", "100000000", "100000001", FRAME),
    ("backend", "poses", "--stop", "100000000", "100000001", FRAME_STOP),
    ("backend", "preview", "--fps", "1000", "1000.5", FPS),
    ("backend", "retarget", "--max-gap", "3600", "3601", MAX_GAP),
    ("backend", "poses", "--smooth-window", "999", "1001", SMOOTH_WINDOW),
    ("backend", "preview-poses", "--workers", "1024", "1025", WORKERS),
    ("backend", "serve", "--threads", "1024", "1025", THREADS),
    ("backend", "stats", "--alpha", "1", "1.5", FRACTION),
    ("training", "train", "--lr", "1", "1.01", ABOVE_0_TO_1),
    ("backend", "preview", "--height", "16384", "16385", PANEL_HEIGHT),
    ("backend", "demo", "--seconds", "600", "601", DEMO_SECONDS),
    ("training", "prepare", "--holdout", "0.9", "0.95", HOLDOUT),
    ("training", "train", "--steps", "1000000000", "1000000001", STEPS),
    ("training", "train", "--epochs-face", "100000", "100001", EPOCHS),
    ("training", "train", "--fix-global-epochs", "100000", "100000.5", FIX_EPOCHS),
    ("training", "train", "--num-D-local", "8", "9", LAYERS),
    ("training", "train", "--n-blocks-local", "64", "65", BLOCKS),
    ("training", "train", "--lambda-matte", "10000", "10001", LOSS_WEIGHT),
    ("training", "train", "--beta2", "0.9999", "1", BETA),
    ("training", "train", "--chain-length", "64", "65", CHAIN),
    ("training", "train", "--noise-std", "10", "11", NOISE),
    ("training", "train", "--batch-size", "4096", "4097", BATCH),
    ("training", "train", "--workers", "256", "257", LOADERS),
    ("training", "train", "--seed", "4294967295", "4294967296", SEED),
    ("training", "train", "--keep-checkpoints", "1000000", "1000001", KEEP),
    ("training", "train", "--eval-frames", "100000", "100001", EVAL_FRAMES),
    ("training", "evaluate", "--frames", "100000000", "100000001", EVALUATE_FRAMES),
    ("training", "evaluate", "--strips", "1000", "1001", STRIPS),
    ("backend", "export-onnx", "--opset", "20", "21", OPSET),
]

# What no range allows: no finite number, too large for any, not an integer, not a number.
NOT_ALLOWED_ANYWHERE = [
    ("backend", "retarget", "--fps", "nan", FPS),
    ("backend", "preview", "--max-gap", "inf", MAX_GAP),
    ("training", "train", "--lr", "-inf", ABOVE_0_TO_1),
    ("training", "train", "--lambda-vgg", "1e308", LOSS_WEIGHT),
    ("training", "train", "--seed", "1000000000000000000000000000000", SEED),
    ("backend", "poses", "--start", "0.5", FRAME),
    ("training", "train", "--batch-size", "1e3", BATCH),
    ("backend", "serve", "--threads", "two", THREADS),
]


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def minimal_args(parser: argparse.ArgumentParser) -> list[str]:
    """Values for the command's required arguments (parsing only: nothing runs)."""
    args: list[str] = []
    for action in parser._actions:
        if not action.option_strings and action.dest != "help":
            args.append("x")
        elif action.required:
            args += [action.option_strings[0], "x"]
    return args


def numeric_flags(parser: argparse.ArgumentParser) -> list[str]:
    """The flags of a command that take a number: those whose conversion turns some number's
    text into an int or a float (however the conversion is made)."""
    out = []
    for action in parser._actions:
        assert action.type not in (int, float), \
            f"{parser.prog} {action.option_strings}: a number without a range (backend/checks.py)"
        if action.option_strings and action.type is not None and _takes_numbers(action.type):
            out.append(action.option_strings[-1])
    return out


def _takes_numbers(convert) -> bool:
    for text in ("1", "2", "16", "0.5"):
        try:
            value = convert(text)
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
    return False


@functools.cache
def backend_parser() -> argparse.ArgumentParser:
    from backend.cli import build_parser

    return build_parser()


@functools.cache
def training_parser() -> argparse.ArgumentParser:
    from training.cli import build_parser

    return build_parser()


PARSERS = {"backend": backend_parser, "training": training_parser}


def parse(program: str, command: str, flag: str, value: str) -> argparse.Namespace:
    parser = PARSERS[program]()
    sub = commands(parser)[command]
    return parser.parse_args([command, *minimal_args(sub), f"{flag}={value}"])


def expect_refusal(program: str, command: str, flag: str, value: str, allowed: str,
                   capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(program, command, flag, value)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: argument {flag}: must be {allowed}, got '{value}' (see "), err


def flag_id(row: tuple) -> str:
    return f"{row[1]}{row[2]}={row[3]}"


def test_every_numeric_flag_has_a_row():
    """A numeric flag added without its row in FLAGS fails here (and a row whose flag is gone)."""
    found = {(program, name, flag) for program, make in PARSERS.items()
             for name, command in commands(make()).items() for flag in numeric_flags(command)}
    rows = [(program, command, flag) for program, command, flag, _, _ in FLAGS]
    assert len(rows) == len(set(rows)), "a flag with two rows"
    assert found - set(rows) == set(), "numeric flags without a row in FLAGS"
    assert set(rows) - found == set(), "rows in FLAGS for flags that are gone"
    assert {row[-1] for row in FLAGS} == {row[-1] for row in HIGH_ENDS}, \
        "a range without its high end in HIGH_ENDS"


@pytest.mark.parametrize("row", FLAGS, ids=flag_id)
def test_every_numeric_flag_refuses_a_value_below_its_range(row, capsys):
    expect_refusal(*row, capsys)


@pytest.mark.parametrize("row", HIGH_ENDS, ids=lambda row: f"{row[1]}{row[2]}={row[4]}")
def test_each_range_allows_its_high_end_and_refuses_beyond(row, capsys):
    program, command, flag, highest, beyond, allowed = row
    assert parse(program, command, flag, highest) is not None
    expect_refusal(program, command, flag, beyond, allowed, capsys)


@pytest.mark.parametrize("row", NOT_ALLOWED_ANYWHERE, ids=flag_id)
def test_what_no_range_allows_is_refused(row, capsys):
    expect_refusal(*row, capsys)


@pytest.mark.parametrize("text", ["0x0", "-4x4", "100000x100000", "64", "nanxinf", "1e3x5"])
def test_sizes_are_refused_where_they_are_parsed(text, capsys):
    for argv in (["labels", "x", "-o", "x.mp4", f"--size={text}"],
                 ["poses", "x", "-o", "x.npz", f"--size={text}"]):
        with pytest.raises(SystemExit):
            backend_parser().parse_args(argv)
        err = capsys.readouterr().err
        assert err.startswith("error: argument --size: must be WxH") and repr(text) in err
    with pytest.raises(SystemExit):
        training_parser().parse_args(["train", "run", f"--size={text}"])
    assert Size().allowed() in capsys.readouterr().err


def test_a_smoothing_window_must_be_odd_and_a_subject_on_the_image(capsys):
    with pytest.raises(SystemExit):
        backend_parser().parse_args(["retarget", "--source", "s", "-o", "o",
                                     "--smooth-window", "4"])
    assert "must be an odd integer >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        backend_parser().parse_args(["poses", "s", "-o", "o.npz", "--subject", "nan,5"])
    assert "argument --subject" in capsys.readouterr().err


# -- refusals that need the request as a whole, still before anything is written --------------


def test_retarget_refuses_run_with_the_generator_and_a_missing_reuse(tmp_path, capsys):
    from backend.cli import main

    out = tmp_path / "job"
    common = ["retarget", "--model", str(DEMO_BUNDLE), "--source", str(tmp_path / "s.mp4"),
              "-o", str(out), "-q"]
    assert main(common + ["--run", str(tmp_path)]) == 2
    assert "run.nearest_run is for method 'nearest'" in capsys.readouterr().err
    assert main(common + ["--reuse", "/nonexistent"]) == 2
    assert ("error: /nonexistent: --reuse (run.reuse) needs an earlier job folder"
            in capsys.readouterr().err)
    (tmp_path / "empty").mkdir()
    for folder in ("/etc", str(tmp_path / "empty")):  # were ignored without a word
        assert main(common + ["--reuse", folder]) == 2
        assert capsys.readouterr().err == (
            f"error: {folder}: --reuse (run.reuse) needs an earlier job folder, and this one "
            f"holds no transfer job (no job.json); give the output folder of an earlier "
            f"retarget of this source, or leave it out\n")
    assert not out.exists()


# -- the worker's requests ---------------------------------------------------------------------

TOO_BIG = 10**400  # no float holds it

# (request type, fields, the message of the refusal or its start). One row or more per
# numeric field of each request; a field shares its flag's range (`SAME_RANGE`).
REQUESTS = [
    ("run", {"frame_start": -1}, f"run.frame_start must be {FRAME}, got -1"),
    ("run", {"frame_start": 100000001}, f"run.frame_start must be {FRAME}, got 100000001"),
    ("run", {"frame_start": TOO_BIG}, f"run.frame_start must be {FRAME}, got 1000000000"),
    ("run", {"frame_start": 0.5}, "run.frame_start: 0.5 is not int"),
    ("run", {"frame_stop": 0}, f"run.frame_stop must be {FRAME_STOP}, got 0"),
    ("run", {"frame_stop": math.inf}, "run.frame_stop: inf is not int | None"),
    ("run", {"frame_start": 5, "frame_stop": 5},
     "run.frame_stop (5) must be greater than run.frame_start (5)"),
    ("run", {"fps": 0}, f"run.fps must be {FPS}, got 0"),
    ("run", {"fps": 1000.5}, f"run.fps must be {FPS}, got 1000.5"),
    ("run", {"fps": math.nan}, f"run.fps must be {FPS}, got nan"),
    ("run", {"fps": -math.inf}, f"run.fps must be {FPS}, got -inf"),
    ("run", {"fps": 1e308}, f"run.fps must be {FPS}, got 1e+308"),
    ("run", {"pose_workers": 0}, f"run.pose_workers must be {WORKERS}, got 0"),
    ("run", {"pose_workers": 10**30},
     f"run.pose_workers must be {WORKERS}, got 1000000000000000000000000000000"),
    ("run", {"pose_workers": True}, "run.pose_workers: True is not int | None"),
    ("preview", {"frame_start": -1}, f"preview.frame_start must be {FRAME}, got -1"),
    ("preview", {"frame_stop": 100000001},
     f"preview.frame_stop must be {FRAME_STOP}, got 100000001"),
    ("preview", {"fps": math.inf}, f"preview.fps must be {FPS}, got inf"),
    ("run", {"adjustments": {"scale": 0.04}},
     "run.adjustments: adjustment scale must be a finite number from 0.05 to 10, got 0.04"),
    ("run", {"adjustments": {"scale": math.nan}},
     "run.adjustments: adjustment scale must be a finite number from 0.05 to 10, got nan"),
    ("preview", {"adjustments": {"scale": 10.5}},
     "preview.adjustments: adjustment scale must be a finite number from 0.05 to 10, got 10.5"),
    ("run", {"adjustments": {"offset_x": -2.5}},
     "run.adjustments: adjustment offset_x must be a finite number from -2 to 2, got -2.5"),
    ("preview", {"adjustments": {"offset_x": 1e308}},
     "preview.adjustments: adjustment offset_x must be a finite number from -2 to 2, got 1e+308"),
    ("run", {"adjustments": {"offset_y": 2.5}},
     "run.adjustments: adjustment offset_y must be a finite number from -2 to 2, got 2.5"),
    ("preview", {"adjustments": {"offset_y": -math.inf}},
     "preview.adjustments: adjustment offset_y must be a finite number from -2 to 2, got -inf"),
    ("run", {"adjustments": {"offset_y": TOO_BIG}},
     "run.adjustments: adjustment offset_y must be a finite number from -2 to 2, got 1000000000"),
    ("run", {"frame_stop": 2, "adjustments": {"scale": [1.0, math.nan]}},
     "run.adjustments: adjustment scale must be a finite number from 0.05 to 10, got nan at frame 1"),
    ("preview", {"frame_stop": 2, "adjustments": {"offset_x": [0.0, 1e308]}},
     "preview.adjustments: adjustment offset_x must be a finite number from -2 to 2, got 1e+308 at "
     "frame 1"),
]

# A request field and the flag of the same value share one range: (request type, field,
# command of ``python -m backend``, flag, a value both refuse).
SAME_RANGE = [("run", "frame_start", "retarget", "--start", -1),
              ("run", "frame_stop", "retarget", "--stop", 0),
              ("run", "fps", "retarget", "--fps", 1000.5),
              ("run", "pose_workers", "retarget", "--workers", 1025),
              ("preview", "frame_start", "preview-poses", "--start", 100000001),
              ("preview", "frame_stop", "preview-poses", "--stop", 0),
              ("preview", "fps", "preview-poses", "--fps", 0)]


def worker_refusal(kind: str, values: dict) -> str:
    """The message with which the worker refuses a request of ``kind`` with ``values``."""
    line = json.dumps({"protocol": PROTOCOL_VERSION, "type": kind, "job_id": "j",
                       "source": "/s.mp4", "model": "/m", "output_dir": "/o", **values})
    with pytest.raises(ProtocolError) as error:
        validate(parse_line(line))
    return str(error.value)


def test_every_numeric_request_field_has_a_row():
    """A numeric field added to a request (or its adjustments) without a row fails here."""
    numeric = {(cls.type, f.name) for cls in (Run, Preview) for f in fields(cls)
               if f.name != "adjustments" and ("int" in str(f.type) or "float" in str(f.type))}
    numeric |= {(cls.type, f"adjustments.{f.name}") for cls in (Run, Preview) for f in fields(Adjustments)}
    rows = {(kind, name) for kind, values, _ in REQUESTS for name in values if name != "adjustments"}
    rows |= {(kind, f"adjustments.{name}") for kind, values, _ in REQUESTS
             for name in values.get("adjustments", {})}
    assert numeric - rows == set(), "numeric request fields without a row in REQUESTS"
    assert {(kind, name) for kind, name, *_ in SAME_RANGE} <= numeric


def request_id(row: tuple) -> str:
    kind, values, _ = row
    return f"{kind}-" + "-".join(f"{name}={str(value)[:12]}" for name, value in values.items())


@pytest.mark.parametrize("row", REQUESTS, ids=request_id)
def test_every_numeric_request_field_refuses_a_value_out_of_its_range(row):
    kind, values, message = row
    assert worker_refusal(kind, values).startswith(message)


def test_the_request_fields_and_their_flags_share_one_range(capsys):
    """A job's frame range, frame rate and pose workers: the worker refuses a field's bad value
    with the range the command line states for the field's flag."""
    flag_allows = {(command, flag): allowed for program, command, flag, _, allowed in FLAGS
                   if program == "backend"}
    for kind, name, command, flag, value in SAME_RANGE:
        allowed = flag_allows[(command, flag)]
        expected = f"{kind}.{name} must be {allowed}, got {value}"
        assert worker_refusal(kind, {name: value}) == expected
        expect_refusal("backend", command, flag, str(value), allowed, capsys)


# -- other refusals of a request and of files ---------------------------------------------


def request(cls: type, **values) -> str:
    base = {"job_id": "j", "source": "/s.mp4", "model": "/m", "output_dir": "/o"}
    return cls(**{**base, **values}).to_line()


@pytest.mark.parametrize("name", ["source", "model", "output_dir", "source_stats",
                                  "nearest_run", "reuse", "background"])
def test_worker_paths_must_be_absolute_and_hold_no_nul(name):
    for bad, problem in (("job/out", "must be an absolute path"),
                         ("/a\0b", "contains a NUL character")):
        values = {name: bad, **({"method": "nearest"} if name == "nearest_run" else {})}
        with pytest.raises(ProtocolError, match=rf"run\.{name} {problem}"):
            validate(parse_line(request(Run, **values)))


def test_a_run_with_nearest_run_needs_the_nearest_method():
    with pytest.raises(ProtocolError, match="nearest_run is for method 'nearest'"):
        validate(parse_line(request(Run, nearest_run="/run")))


def test_the_worker_never_tells_a_client_to_use_overwrite():
    from backend.errors import FolderTaken

    error = FolderTaken(Path("/o"), "holds a transfer job with other parameters (range differ)",
                        "use another output folder, or --overwrite to discard it")
    assert "--overwrite" in str(error) and "--overwrite" not in str(error.plain())
    assert str(error.plain()) == ("/o: holds a transfer job with other parameters (range "
                                  "differ); use another output folder")


def test_a_labels_video_of_odd_size_is_refused_rather_than_rounded(tmp_path, capsys):
    from backend.cli import main
    from backend.pose.track import PoseTrack

    track = PoseTrack.empty(3, 30.0, (64, 64)).save(tmp_path / "t.npz")
    out = tmp_path / "labels.mp4"
    assert main(["labels", str(track), "-o", str(out), "--size", "321x241", "-q"]) == 2
    assert (f"error: {out}: --size 321x241: a video's sides must be even; give 322x242"
            in capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize("fps", [-5.0, 0.0, math.nan, math.inf])
def test_a_pose_track_with_an_unusable_frame_rate_is_refused(tmp_path, fps):
    from backend.errors import InputError
    from backend.pose.track import PoseTrack

    path = PoseTrack.empty(3, fps, (64, 64)).save(tmp_path / "t.npz")
    with pytest.raises(InputError, match="frame rates must be a number > 0"):
        PoseTrack.load(path)


@pytest.mark.parametrize("command", [["serve"], ["retarget", "--source", "s", "-o", "o"]])
def test_serve_and_retarget_take_the_same_devices(command, capsys):
    parser = backend_parser()
    assert parser.parse_args([*command, "--device", "cuda:1"]).device == "cuda:1"
    for bad in ("tpu", "cpu:1", "cuda:x"):
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--device", bad])
        assert f"argument --device: must be one of auto, cpu, cuda, mps or cuda:N (a GPU by " \
               f"number), got {bad!r}" in capsys.readouterr().err


def test_prepare_refuses_a_size_the_presets_networks_cannot_train_at(tmp_path, capsys):
    from training.cli import main

    out = tmp_path / "run"
    assert main(["prepare", str(tmp_path / "clip.mp4"), "-o", str(out), "--preset", "tiny",
                 "--size", "63x31"]) == 2
    assert ("error: --size 63x31: stage global runs at 31x15, whose sides must be multiples of "
            "4" in capsys.readouterr().err)
    assert not out.exists()
