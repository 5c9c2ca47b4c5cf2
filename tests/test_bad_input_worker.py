"""Bad input through the real worker process (issue 13): huge or hostile lines, paths the
file system refuses, extreme adjustments, a full disk, and a resumed job's progress.

Every case gets one short ``error`` reply with ``bad_message``, ``bad_input`` or
``disk_full`` (never ``internal``), and the worker carries on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.worker.protocol import (MAX_LINE_BYTES, Adjustments, Done, Error, Hello, Progress, Run,
                                     parse_line)

from .helpers import N_FRAMES, REPO, TIMEOUT, RawWorker, job

SHORT_REPLY = 1000  # bytes: what a reply to any malformed line must stay under


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    worker = RawWorker(tmp_path_factory.mktemp("raw") / "raw.log")
    assert isinstance(parse_line(worker.lines.get(timeout=TIMEOUT).decode()), Hello)
    yield worker
    worker.close()


def raw_reply(worker: RawWorker) -> bytes:
    line = worker.lines.get(timeout=TIMEOUT)
    assert line is not None, f"the worker closed stdout; log:\n{worker.log.read_text()[-3000:]}"
    return line


def job_line(media, out: Path, **fields) -> str:
    data = {"protocol": 1, "type": "run", "job_id": "j", "source": str(media["clip"]),
            "model": str(media["bundle"]), "output_dir": str(out), **fields}
    return json.dumps(data) + "\n"


BIG = "x" * 1_000_000

HOSTILE = {
    "a megabyte in a wrongly typed field": {"frame_start": BIG},
    "a megabyte-long job id": {"job_id": BIG, "frame_start": -1},
    "a megabyte-long method": {"method": BIG},
    "a megabyte-long unknown field": {BIG: 1},
    "a hundred thousand unknown fields": {f"f{i}": 1 for i in range(100_000)},
    "a megabyte list for a number": {"fps": [1.0] * 200_000},
}


def test_replies_never_echo_large_input_and_hostile_json_is_answered(raw, media, tmp_path):
    for what, fields in HOSTILE.items():
        line = job_line(media, tmp_path / "o", **fields)
        raw.send(line)
        reply = raw_reply(raw)
        assert len(reply) < SHORT_REPLY, (what, reply[:300])
        message = parse_line(reply.decode())
        assert isinstance(message, Error) and message.code == "bad_message", (what, message)
        assert message.job_id in ("j", None), what
    for what, line in {"a type that is a list": '{"protocol": 1, "type": [1]}\n',
                       "nesting 100000 deep": "[" * 100_000 + "]" * 100_000 + "\n",
                       "an integer of 5000 digits": job_line(media, tmp_path / "o").replace(
                           '"job_id"', '"frame_start": ' + "9" * 5000 + ', "job_id"')}.items():
        raw.send(line)
        message = parse_line(raw_reply(raw).decode())
        assert isinstance(message, Error) and message.code == "bad_message", (what, message)
    assert raw.log.stat().st_size < 200_000  # the log does not keep the megabytes either


def test_a_line_above_the_limit_is_refused_unread_and_the_worker_carries_on(raw, media, tmp_path):
    huge = job_line(media, tmp_path / "o", adjustments={"scale": [1.0] * (MAX_LINE_BYTES // 4)})
    assert len(huge) > MAX_LINE_BYTES
    raw.send(huge)
    reply = raw_reply(raw)
    message = parse_line(reply.decode())
    assert isinstance(message, Error) and message.code == "bad_message"
    assert f"at most {MAX_LINE_BYTES} bytes" in message.message and len(reply) < SHORT_REPLY
    raw.send(job_line(media, tmp_path / "o", job_id="after", frame_start=-1))
    after = parse_line(raw_reply(raw).decode())
    assert (after.code, after.job_id) == ("bad_message", "after")  # still answering


@pytest.mark.parametrize("adjust, field", [({"offset_x": 1e300}, "offset_x"),
                                           ({"scale": 1e400}, "scale"),  # JSON's 1e400 is inf
                                           ({"offset_y": [0.0, -5.0]}, "offset_y")])
def test_extreme_adjustments_are_refused_when_the_run_arrives(raw, media, tmp_path, adjust, field):
    raw.send(job_line(media, tmp_path / "o", job_id="adj", frame_stop=2, adjustments=adjust))
    message = parse_line(raw_reply(raw).decode())
    assert isinstance(message, Error) and (message.code, message.job_id) == ("bad_message", "adj")
    assert f"run.adjustments: adjustment {field} must be a finite number from" in message.message
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_paths_the_file_system_refuses_are_bad_input(client, media, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    cases = {
        "source": (dict(source=str(tmp_path / ("a" * 300 + ".mp4"))), "file name too long"),
        "output under a file": (dict(output_dir=str(a_file / "job")), "is a file, not a folder"),
        "output name": (dict(output_dir=str(tmp_path / ("b" * 300))), "file name too long"),
    }
    if sys.platform.startswith("linux"):  # a pseudo file system where nothing can be made
        cases["output in /proc"] = (dict(output_dir="/proc/job"), "cannot be written in /proc")
    for what, (fields, problem) in cases.items():
        run = Run(**{**vars(job(media, tmp_path / "job", what.replace(" ", "-"))), **fields})
        reply = client.run_job(run, TIMEOUT)
        assert isinstance(reply, Error) and reply.code == "bad_input", (what, reply)
        assert problem in reply.message, (what, reply.message)
    assert a_file.read_text() == "mine"


@pytest.mark.slow
def test_a_resumed_jobs_progress_starts_past_the_frames_already_written(client, media, tmp_path):
    run = job(media, tmp_path / "job", "resumed", adjustments=Adjustments(offset_y=0.05))
    assert isinstance(client.run_job(run, TIMEOUT), Done)
    frames = sorted((tmp_path / "job" / "frames").glob("*.png"))
    for path in frames[5:]:  # as if the job had stopped after frame 5
        path.unlink()
    (tmp_path / "job" / "result.mp4").unlink()
    seen: list = []
    reply = client.run_job(run, TIMEOUT, on_message=seen.append)
    assert isinstance(reply, Done) and reply.frame_count == N_FRAMES
    done = [m.done for m in seen if isinstance(m, Progress) and m.stage == "generate"]
    assert done[0] == 5 and done[-1] == N_FRAMES and done == sorted(done), done


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 if hasattr(os, "geteuid") else True,
                    reason="mounting a small tmpfs needs root (tests/test_disk_full.py covers "
                           "running out of space without it)")
def test_a_full_disk_is_disk_full_not_internal(client, media, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr[:200]}")
    try:
        reply = client.run_job(job(media, disk / "job", "full"), TIMEOUT)
        assert isinstance(reply, Error) and reply.code == "disk_full", reply
        assert reply.message.startswith(f"disk full while writing {disk / 'job'}")
        assert "free space and run the same command to continue" in reply.message \
            or "job.json" in reply.message  # full before the first frame: nothing to keep
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_relative_or_nul_path_is_a_bad_message_and_nothing_is_written(raw, media, tmp_path):
    cases = (({"output_dir": "rel-job-19"}, "run.output_dir must be an absolute path"),
             ({"source": "/a\0b.mp4"}, "run.source contains a NUL character"))
    for fields, problem in cases:
        raw.send(job_line(media, tmp_path / "o", job_id="p", **fields))
        message = parse_line(raw_reply(raw).decode())
        assert isinstance(message, Error) and (message.code, message.job_id) == ("bad_message", "p")
        assert problem in message.message
    assert not (REPO / "rel-job-19").exists() and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_folder_holding_another_job_is_refused_in_the_protocols_words(client, media, tmp_path):
    """The client has no --overwrite: the reply says what it can do."""
    out = tmp_path / "job"
    assert isinstance(client.run_job(job(media, out, "first"), TIMEOUT), Done)
    frames = sorted(p.read_bytes() for p in (out / "frames").glob("*.png"))
    reply = client.run_job(job(media, out, "other", frame_stop=N_FRAMES - 1), TIMEOUT)
    assert isinstance(reply, Error) and reply.code == "bad_input", reply
    assert reply.message == (f"{out}: holds a transfer job with other parameters (range "
                             f"differ); use another output folder")
    assert sorted(p.read_bytes() for p in (out / "frames").glob("*.png")) == frames


def test_a_windows_path_on_posix_is_a_bad_message_and_nothing_is_written(raw, media, tmp_path):
    """Issue 25: ``C:\\jobs\\win`` or a UNC path passed the absolute-path check on Linux and the
    job was written into the worker's own folder."""
    before = sorted(p.name for p in REPO.iterdir())
    for path in ("C:\\jobs\\win", "\\\\server\\share\\unc", "C:/jobs/win"):
        raw.send(job_line(media, tmp_path / "o", job_id="w", output_dir=path))
        message = parse_line(raw_reply(raw).decode())
        assert isinstance(message, Error) and (message.code, message.job_id) == ("bad_message", "w")
        assert "run.output_dir is a Windows path" in message.message, message.message
    assert sorted(p.name for p in REPO.iterdir()) == before


def test_adjustments_of_another_length_than_the_source_range_are_a_bad_message(client, media,
                                                                               tmp_path):
    """Without frame_stop the range's length is known only once the source is read: the
    refusal is still the protocol's bad_message (it was backend_error)."""
    reply = client.run_job(Run(job_id="len", source=str(media["clip"]),
                               model=str(media["bundle"]), output_dir=str(tmp_path / "o"),
                               adjustments=Adjustments(scale=[1.0, 1.1, 1.2])), TIMEOUT)
    assert isinstance(reply, Error) and reply.code == "bad_message", reply
    assert f"the job has {N_FRAMES} frames" in reply.message
    assert not (tmp_path / "o").exists()


def test_every_error_code_the_worker_sends_is_listed_in_the_protocol_doc():
    import re

    import backend.cluster  # noqa: F401 - every module that defines an error
    import backend.transfer  # noqa: F401
    import backend.worker.execute  # noqa: F401
    import training.models.weights  # noqa: F401 - imported or not by the tests before this one
    from backend.errors import BackendError, JobCancelled

    def subclasses(cls):
        return {cls} | {s for sub in cls.__subclasses__() for s in subclasses(sub)}

    codes = {cls.code for cls in subclasses(BackendError) if not issubclass(cls, JobCancelled)}
    for module in (REPO / "backend" / "worker").glob("*.py"):
        codes |= set(re.findall(r'code="(\w+)"', module.read_text()))
    doc = (REPO / "docs" / "protocol.md").read_text()
    listed = set(re.findall(r"`(\w+)`", doc.split("Error codes:")[1].split("## Rules")[0]))
    assert codes <= listed, f"not in docs/protocol.md: {sorted(codes - listed)}"


@pytest.mark.parametrize("fields, flags", [
    ({"nearest_run": "/prepared/run"}, ["--nearest-run", "/prepared/run"]),
    ({"frame_start": 5, "frame_stop": 3}, ["--start", "5", "--stop", "3"]),
])
def test_the_same_bad_value_gets_the_same_message_from_every_entry(raw, client, media, tmp_path,
                                                                   capsys, fields, flags):
    """One request type and one check: the command line, the worker and the add-on's client
    refuse a request with the same words (exit 2, bad_message, ValueError)."""
    from backend.cli import main

    out = tmp_path / "o"
    assert main(["retarget", "--model", str(media["bundle"]), "--source", str(media["clip"]),
                 "-o", str(out), "-q", *flags]) == 2
    cli = capsys.readouterr().err.strip()
    assert cli.startswith("error: run.")
    raw.send(job_line(media, out, job_id="same", **fields))
    worker = parse_line(raw_reply(raw).decode())
    assert isinstance(worker, Error) and worker.code == "bad_message"
    with pytest.raises(ValueError) as refused:
        client.submit(job(media, out, "same", **fields))
    assert cli == f"error: {worker.message}" == f"error: {refused.value}"
    assert not out.exists()


def test_a_folder_that_cannot_serve_gets_the_same_message_from_both_entries(raw, media, tmp_path,
                                                                          capsys):
    """The folders a request names are checked in one function (`request.check_folders`):
    an earlier job to reuse that holds no job is refused by the command line (exit 2) and
    the worker (bad_input) with the same words, and nothing is written."""
    from backend.cli import main

    out, not_a_job = tmp_path / "o", tmp_path / "empty"
    not_a_job.mkdir()
    assert main(["retarget", "--model", str(media["bundle"]), "--source", str(media["clip"]),
                 "-o", str(out), "-q", "--reuse", str(not_a_job)]) == 2
    cli = capsys.readouterr().err.strip()
    raw.send(job_line(media, out, job_id="reuse", reuse=str(not_a_job)))
    worker = parse_line(raw_reply(raw).decode())
    assert isinstance(worker, Error) and worker.code == "bad_input"
    assert cli == f"error: {worker.message}"
    assert "needs an earlier job folder, and this one holds no transfer job" in cli
    assert not out.exists()


def test_a_worker_job_continued_from_the_command_line_resumes(client, media, tmp_path):
    """Issue 25: a worker job cancelled and continued from the command line logged
    "revised: the adjustments changed" when nothing changed."""
    from backend.cli import main

    out = tmp_path / "job"
    assert isinstance(client.run_job(job(media, out, "continued"), TIMEOUT), Done)
    whole = [p.read_bytes() for p in sorted((out / "frames").glob("*.png"))]
    for path in sorted((out / "frames").glob("*.png"))[5:]:  # as if cancelled after frame 5
        path.unlink()
    (out / "result.mp4").unlink()
    assert main(["retarget", "--model", str(media["bundle"]), "--source", str(media["clip"]),
                 "-o", str(out), "--device", "cpu", "-q"]) == 0
    log = (out / "log.txt").read_text()
    assert "resumed at frame 6" in log and "revised" not in log, log
    assert [p.read_bytes() for p in sorted((out / "frames").glob("*.png"))] == whole
