"""Every bad value is an error where it enters (issue 19): each numeric flag of every command
of ``python -m backend`` and ``python -m training``, and each numeric field of the worker's
requests, walked with nan, inf, 0, negative and huge values. A refusal is one ``error:`` line
naming the flag, the value and what is allowed, exit status 2, before anything is loaded or
written; what a flag allows is stated once (backend/checks.py).
"""

from __future__ import annotations

import argparse
import functools
import math
from dataclasses import fields
from pathlib import Path

import pytest

from backend.checks import Number, Size
from backend.demo.run import DEMO_BUNDLE
from backend.worker.protocol import NUMBERS, Adjust, Preview, ProtocolError, Run, parse_line, validate

BAD = ("nan", "inf", "-inf", "0", "-1", "-5", "0.5", "1e308", str(10**30))
ALWAYS_REFUSED = {"nan", "inf", "-inf", "1e308", str(10**30)}


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


def numeric_flags(parser: argparse.ArgumentParser) -> list[tuple[str, Number]]:
    out = []
    for action in parser._actions:
        check = getattr(action.type, "__self__", None)
        assert action.type not in (int, float), \
            f"{parser.prog} {action.option_strings}: a number without a range (backend/checks.py)"
        if isinstance(check, Number):
            out.append((action.option_strings[-1], check))
    return out


def walk(parser: argparse.ArgumentParser) -> list[tuple[str, str, Number, str]]:
    cases = []
    for name, command in commands(parser).items():
        for flag, number in numeric_flags(command):
            cases += [(name, flag, number, value) for value in BAD]
    return cases


@functools.cache
def backend_parser() -> argparse.ArgumentParser:
    from backend.cli import build_parser

    return build_parser()


@functools.cache
def training_parser() -> argparse.ArgumentParser:
    from training.cli import build_parser

    return build_parser()


def expect(parser: argparse.ArgumentParser, argv: list[str], flag: str, number: Number,
           value: str, capsys) -> None:
    parsed = float(value) if number.kind is float else _int_or_none(value)
    allowed = parsed is not None and number.accepts(parsed)
    assert not (allowed and value in ALWAYS_REFUSED), f"{flag} allows {value}"
    if allowed:
        parser.parse_args(argv)
        return
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: argument {flag}: must be "), err
    assert repr(value) in err and number.allowed() in err


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


PARSERS = {"backend": backend_parser, "training": training_parser}


@pytest.mark.parametrize("program,command,flag,number,value",
                         [(name, *case) for name, make in PARSERS.items() for case in walk(make())],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_numeric_flag_of_every_command(program, command, flag, number, value, capsys):
    """``python -m backend`` and ``python -m training``, each command, each numeric flag."""
    parser = PARSERS[program]()
    sub = commands(parser)[command]
    expect(parser, [command, *minimal_args(sub), f"{flag}={value}"], flag, number, value, capsys)


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
    assert "--run is for --method nearest" in capsys.readouterr().err
    assert main(common + ["--reuse", "/nonexistent"]) == 2
    assert "error: /nonexistent: --reuse needs an earlier job folder" in capsys.readouterr().err
    assert not out.exists()


# -- the worker's requests ---------------------------------------------------------------------

WORKER_BAD = (math.nan, math.inf, -math.inf, 0, -1, -5, 0.5, 1e308, 10**30, 10**400)


def request_fields() -> list[tuple[type, str, object]]:
    cases = []
    for cls in (Run, Preview):
        for f in fields(cls):
            if "int" in str(f.type) or "float" in str(f.type):
                if f.name != "adjust":
                    assert f.name in NUMBERS, f"{cls.__name__}.{f.name}: no range in protocol.NUMBERS"
                    cases += [(cls, f.name, value) for value in WORKER_BAD]
    return cases


def request(cls: type, **values) -> str:
    base = {"job_id": "j", "source": "/s.mp4", "model": "/m", "output_dir": "/o"}
    return cls(**{**base, **values}).to_line()


@pytest.mark.parametrize("cls,name,value", request_fields(),
                         ids=lambda v: v.__name__ if isinstance(v, type) else repr(v))
def test_every_numeric_field_of_the_worker_requests(cls, name, value):
    number = NUMBERS[name]
    allowed = number.accepts(value) and not (name == "frame_stop" and value <= 0)
    if allowed:
        validate(parse_line(request(cls, **{name: value})))
        return
    with pytest.raises(ProtocolError, match=rf"{cls.type}\.{name}"):
        validate(parse_line(request(cls, **{name: value})))


@pytest.mark.parametrize("name", ["scale", "offset_x", "offset_y"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e308, -1e308, 10**400])
def test_every_adjustment_field_refuses_values_that_are_not_finite_or_huge(name, value):
    for cls in (Run, Preview):
        line = request(cls, adjust=Adjust(**{name: value}))
        with pytest.raises(ProtocolError, match=rf"{cls.type}\.adjust"):
            validate(parse_line(line))
        listed = request(cls, frame_stop=2, adjust=Adjust(**{name: [1.0, value]}))
        with pytest.raises(ProtocolError, match=rf"{cls.type}\.adjust"):
            validate(parse_line(listed))


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


def test_the_request_fields_and_their_flags_share_one_range():
    """A job's frame range, frame rate and pose workers: the worker's request fields and the
    command line's flags are checked by the same `backend.checks` objects, so they cannot
    drift apart."""
    retarget = commands(backend_parser())["retarget"]
    flags = {flag: number for flag, number in numeric_flags(retarget)}
    assert (flags["--start"], flags["--stop"], flags["--fps"], flags["--workers"]) == (
        NUMBERS["frame_start"], NUMBERS["frame_stop"], NUMBERS["fps"], NUMBERS["pose_workers"])


def test_prepare_refuses_a_size_the_presets_networks_cannot_train_at(tmp_path, capsys):
    from training.cli import main

    out = tmp_path / "run"
    assert main(["prepare", str(tmp_path / "clip.mp4"), "-o", str(out), "--preset", "tiny",
                 "--size", "63x31"]) == 2
    assert ("error: --size 63x31: stage global runs at 31x15, whose sides must be multiples of "
            "4" in capsys.readouterr().err)
    assert not out.exists()
