"""Transfer jobs as tasks of a real Ray cluster (backend/cluster), started by the tests.

The jobs are tiny (the built-in demo bundle on a demo dance clip, with its poses given) and
their frames are compared byte for byte with the same job run in this process.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from backend.demo import make_demo_clip
from backend.demo.run import DEMO_BUNDLE
from backend.errors import JobCancelled
from backend.transfer import TransferJob, run_transfer

from .helpers import REPO
from .ray_cluster import BlindHead, can_unshare, free_port

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]
LONG = 48  # frames of the job that is killed or cancelled while it runs (about 3 s)
SHORT = (10, 22)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, Path]:
    """A demo dance clip and its poses (as `python -m backend poses` would write them)."""
    folder = tmp_path_factory.mktemp("cluster-clip")
    track = make_demo_clip(folder / "dance.mp4", "dance", n_frames=LONG, fps=30,
                           size=(256, 256), progress=False)
    track.save(folder / "dance.npz")
    return folder / "dance.mp4", folder / "dance.npz"


def make_job(clip: tuple[Path, Path], out: Path, frames: tuple[int, int] = (0, LONG)) -> TransferJob:
    source, poses = clip
    return TransferJob(source=source, model=DEMO_BUNDLE, output_dir=out, frame_start=frames[0],
                       frame_stop=frames[1], device="cpu", cpu_backend="onnx", threads=1,
                       poses=poses)


@pytest.fixture(scope="module")
def references(clip, tmp_path_factory) -> dict[tuple[int, int], Path]:
    """The long and the short job, each run alone in this process."""
    folder = tmp_path_factory.mktemp("cluster-references")
    out = {}
    for frames in ((0, LONG), SHORT):
        out[frames] = folder / f"{frames[0]}-{frames[1]}"
        run_transfer(make_job(clip, out[frames], frames))
    return out


def frame_bytes(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((folder / "frames").glob("*.png"))]


def runs_logged(folder: Path) -> list[str]:
    return [line for line in (folder / "log.txt").read_text().splitlines()
            if "running on Ray cluster" in line]


def test_two_jobs_at_once_give_their_lone_run_frames_and_say_where_they_ran(
        ray_cluster, clip, references, tmp_path):
    from backend.cluster import run_on_cluster

    results, reports = {}, {frames: [] for frames in references}

    def run(frames):
        job = make_job(clip, tmp_path / f"{frames[0]}-{frames[1]}", frames)
        results[frames] = run_on_cluster(job, ray_cluster,
                                         report=lambda *r: reports[frames].append(r))

    threads = [threading.Thread(target=run, args=(frames,)) for frames in references]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)  # a loaded machine is slow; the frames are what is checked
    assert set(results) == set(references)
    for frames, reference in references.items():
        out = tmp_path / f"{frames[0]}-{frames[1]}"
        assert frame_bytes(out) == frame_bytes(reference)
        assert results[frames].frame_count == frames[1] - frames[0]
        assert results[frames].video.is_file()
        [where] = runs_logged(out)
        assert ray_cluster in where and "node " in where and "worker pid" in where
        assert reports[frames][-1] == ("finish", 1, 1)
        assert {stage for stage, _, _ in reports[frames]} <= {"poses", "generate", "finish"}
        assert not list(tmp_path.glob(".*"))  # the visibility token is gone


def test_a_killed_worker_process_is_retried_and_resumes_to_the_same_frames(
        ray_cluster, clip, references, tmp_path):
    from backend.cluster import run_on_cluster

    out = tmp_path / "job"
    killed = []

    def kill_the_task() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            logged = runs_logged(out) if (out / "log.txt").is_file() else []
            written = len(list((out / "frames").glob("0*.png"))) if logged else 0
            if written >= 3:  # in the middle of the frames
                pid = int(logged[0].rsplit("worker pid ", 1)[1].split()[0])
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, written))
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_task)
    killer.start()
    result = run_on_cluster(make_job(clip, out), ray_cluster)
    killer.join()
    assert killed and 3 <= killed[0][1] < LONG, killed
    assert frame_bytes(out) == frame_bytes(references[(0, LONG)])
    assert result.frame_count == LONG and result.video.is_file()
    logged = runs_logged(out)
    assert len(logged) == 2 and f"worker pid {killed[0][0]}" in logged[0]
    assert "resumed at frame" in (out / "log.txt").read_text()


def test_cancel_stops_the_task_and_leaves_a_resumable_folder(ray_cluster, clip, references,
                                                            tmp_path):
    from backend.cluster import run_on_cluster

    out = tmp_path / "job"
    cancel = threading.Event()

    def report(stage, done, total):
        if stage == "generate" and done >= 1:  # "generate 0/48" may come before any frame
            cancel.set()

    with pytest.raises(JobCancelled, match="run the same job again"):
        run_on_cluster(make_job(clip, out), ray_cluster, report=report, cancel=cancel)
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "cancelled" and status["frames_written"] < LONG
    assert not (out / "result.mp4").exists()
    run_on_cluster(make_job(clip, out), ray_cluster)  # the same job again: it resumes
    assert frame_bytes(out) == frame_bytes(references[(0, LONG)])
    assert "resumed at frame" in (out / "log.txt").read_text()


def test_pose_detection_chunks_run_as_tasks_of_the_cluster(ray_cluster, clip, tmp_path):
    """A job whose source's poses are detected in 2 chunks: on a cluster the chunks are Ray
    tasks, joined as on one machine (the same track and frames as 2 local processes give)."""
    from backend.cluster import run_on_cluster
    from backend.pose.detector import HolisticConfig
    from backend.pose.pipeline import PoseOptions
    from backend.pose.track import PoseTrack

    options = PoseOptions(detector=HolisticConfig(workers=2))
    here, there = tmp_path / "here", tmp_path / "there"
    run_transfer(replace(make_job(clip, here), poses=None, pose_options=options))
    run_on_cluster(replace(make_job(clip, there), poses=None, pose_options=options), ray_cluster)
    assert "pose detection: 2 chunks as tasks of the Ray cluster" in (there / "log.txt").read_text()
    a, b = PoseTrack.load(here / "poses.npz"), PoseTrack.load(there / "poses.npz")
    for name in ("body", "face", "hands", "detected"):
        assert (getattr(a, name) == getattr(b, name)).all(), name
    assert frame_bytes(here) == frame_bytes(there)


def retarget_command(clip: tuple[Path, Path], out: Path, *extra: str,
                     frames: tuple[int, int] = SHORT) -> list[str]:
    source, poses = clip
    return [sys.executable, "-m", "backend", "retarget", "--model", str(DEMO_BUNDLE),
            "--source", str(source), "--poses", str(poses), "-o", str(out),
            "--start", str(frames[0]), "--stop", str(frames[1]), "--device", "cpu",
            "--cpu-backend", "onnx", "--threads", "1", "-q", *extra]


def test_retarget_command_with_cluster_local_joins_this_machines_cluster(
        ray_cluster, clip, references, tmp_path):
    out = tmp_path / "job"
    env = {**os.environ, "RAY_ADDRESS": ray_cluster}  # how `ray start` tells this machine's
    done = subprocess.run(retarget_command(clip, out, "--cluster", "local"), cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert frame_bytes(out) == frame_bytes(references[SHORT])
    assert ray_cluster in runs_logged(out)[0]


def descendants(root: int) -> set[int]:
    """``root`` and every process below it (Linux's /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += children.get(pid, [])
    return found


def _address(hex_address: str) -> tuple[str, int]:
    """/proc/net/tcp's ``0100007F:1F90`` (or tcp6's 32 hex digits) as ``("127.0.0.1", 8080)``."""
    hex_host, hex_port = hex_address.split(":")
    raw = bytes.fromhex(hex_host)
    host = b"".join(raw[k:k + 4][::-1] for k in range(0, len(raw), 4))  # each word's bytes
    family = socket.AF_INET if len(host) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, host), int(hex_port, 16)


def listening_addresses(pids: set[int]) -> set[tuple[str, int]]:
    """The (address, port) on which the processes ``pids`` listen for TCP connections."""
    listening = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                listening[f"socket:[{fields[9]}]"] = _address(fields[1])
    found = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue  # ended meanwhile
        for fd in fds:
            try:
                link = os.readlink(fd)
            except OSError:
                continue  # closed meanwhile
            if link in listening:
                found.add(listening[link])
    return found


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return (mapped or ip).is_loopback


def md5s(folder: Path) -> list[str]:
    return [hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted((folder / "frames").glob("*.png"))]


@pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="reads Linux's /proc")
def test_two_local_commands_at_once_each_run_on_a_loopback_cluster_of_their_own(
        clip, references, tmp_path):
    """Two `--cluster local` commands of different lengths started together: each starts an
    embedded cluster of its own (the short one ending does not end the long one's), whose
    servers listen on loopback only, says so in its log (and nothing of Ray's on the terminal),
    and gives its lone run's frames."""
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="rt", dir="/tmp")}
    for name in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"):  # not the test's own
        env.pop(name, None)
    jobs = {frames: tmp_path / f"{frames[0]}-{frames[1]}" for frames in references}
    commands = {frames: subprocess.Popen(retarget_command(clip, out, "--cluster", "local",
                                                          frames=frames),
                                         cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
                for frames, out in jobs.items()}
    heard: set[tuple[str, int]] = set()
    try:
        while any(command.poll() is None for command in commands.values()):
            for command in commands.values():
                heard |= listening_addresses(descendants(command.pid))
            time.sleep(0.2)
        errors = {frames: command.communicate(timeout=60)[1] for frames, command in commands.items()}
    finally:
        for command in commands.values():
            command.kill()
        leftover = list(Path(env["RAY_TMPDIR"]).iterdir())
        shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
    for frames, command in commands.items():
        assert command.returncode == 0, errors[frames][-3000:]
        # Ray's own lines about the embedded cluster (started; how to turn its token off).
        assert " INFO " not in errors[frames] and "RAY_AUTH_MODE" not in errors[frames]
    assert len(heard) >= 4, heard  # at least each cluster's GCS and raylet
    assert all(is_loopback(address) for address, _ in heard), heard
    addresses = set()
    for frames, out in jobs.items():
        assert md5s(out) == md5s(references[frames])
        [where] = runs_logged(out)
        assert "(embedded in this process, listening on 127.0.0.1 only)" in where
        assert "(ip 127.0.0.1)" in where
        addresses.add(where.split("Ray cluster ", 1)[1].split()[0])
    assert len(addresses) == 2  # a cluster each
    assert not leftover  # each cluster's folder went with it


def test_a_job_folder_the_node_cannot_see_fails_with_a_clear_message(clip, tmp_path):
    """A cluster whose node has an empty folder where the job folders are (a mount namespace
    of its own): the job fails, and nothing here is taken for done."""
    if not can_unshare():
        pytest.skip("needs a mount namespace of its own (unshare --mount: root)")
    shared = tmp_path / "shared"
    shared.mkdir()
    head = BlindHead(shared)
    try:
        head.wait_ready()
        out = shared / "job"
        failed = subprocess.run(
            retarget_command(clip, out, "--cluster", f"127.0.0.1:{head.port}"), cwd=REPO,
            env=head.env, capture_output=True, text=True, timeout=180)
    finally:
        head.stop()
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert f"error: {out}: is not visible from Ray cluster" in failed.stderr
    assert "storage every node of the cluster sees" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert not out.exists() and not list(shared.iterdir())  # nothing written, no token left


def test_an_address_where_no_cluster_answers_is_refused_at_once(clip, tmp_path):
    """An IPv4 or an IPv6 head ([ADDRESS]:PORT, as Ray writes it) where nothing answers."""
    out = tmp_path / "job"
    for address in (f"127.0.0.1:{free_port()}", f"[::1]:{free_port()}"):
        for command in (retarget_command(clip, out, "--cluster", address),
                        [sys.executable, "-m", "backend", "serve", "--cluster", address]):
            refused = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                                     timeout=120, stdin=subprocess.DEVNULL)
            assert refused.returncode == 2, refused.stderr[-3000:]
            assert (f"error: cannot join the Ray cluster at {address}: nothing answers"
                    in refused.stderr)
            assert "Traceback" not in refused.stderr and "service not known" not in refused.stderr
            assert refused.stderr.count("error:") == 1, refused.stderr
    assert not out.exists()


HIDE_RAY = '''
import sys


class HideRay:
    """Ray as if it were not installed: its import fails as a missing package's does."""

    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, HideRay())
'''


def test_without_ray_cluster_says_how_to_install_it_and_nothing_else_changes(clip, references,
                                                                           tmp_path):
    hide = tmp_path / "no-ray"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE_RAY)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hide), str(REPO)])}
    env.pop("RAY_ADDRESS", None)
    probe = subprocess.run([sys.executable, "-c", "import ray"], env=env, capture_output=True,
                           text=True)
    assert "No module named 'ray'" in probe.stderr
    out = tmp_path / "job"
    for command in (retarget_command(clip, out, "--cluster", "local"),
                    [sys.executable, "-m", "backend", "serve", "--cluster", "local"]):
        refused = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                                 timeout=120, stdin=subprocess.DEVNULL)
        assert refused.returncode == 2, refused.stderr[-3000:]
        assert "pip install -e '.[cluster]'" in refused.stderr
        assert "Traceback" not in refused.stderr and refused.stdout == ""
    assert not out.exists()
    done = subprocess.run(retarget_command(clip, out), cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert frame_bytes(out) == frame_bytes(references[SHORT])


# -- the worker (`serve --cluster`) and the add-on's job runner -------------------------------


def test_the_worker_hands_its_queue_to_the_cluster_several_at_once(ray_cluster, clip, tmp_path):
    """The add-on's runner gives a `serve --cluster` worker several jobs at once: progress,
    cancel and results as before, the frames of each job run alone here."""
    from backend.worker.execute import WorkerSettings, to_transfer_job
    from blender_addon.backend_client import BackendClient, Run
    from blender_addon.core.job_queue import Job, JobState, Placement
    from blender_addon.core.runner import JobRunner

    source, _ = clip

    def job(name: str, frames: tuple[int, int]) -> Job:
        run = Run(job_id=name, source=str(source), model=str(DEMO_BUNDLE),
                  output_dir=str(tmp_path / "jobs" / name), frame_start=frames[0],
                  frame_stop=frames[1])
        return Job(id=name, label=name, run=run, placement=Placement(
            scene="Scene", channel=2, frame_start=1, job_frames=tuple(range(frames[1] - frames[0])),
            name=name))

    def make_client():
        client = BackendClient(sys.executable, log_path=tmp_path / "worker.log",
                               args=["--device", "cpu", "--cluster", ray_cluster])
        client.start(wait=False)
        return client

    runner = JobRunner(make_client, at_once=lambda: 8)
    jobs = [job("a", (0, 8)), job("b", (8, 16)), job("cancelled", (0, LONG))]
    for each in jobs:
        runner.submit(each)
    most_at_once, finished, progress = 0, [], set()
    deadline = time.monotonic() + 240
    while runner.queue.active():
        assert time.monotonic() < deadline, [j.status_text() for j in runner.queue.jobs]
        finished += runner.tick()
        running = runner.queue.all_running()
        most_at_once = max(most_at_once, len(running))
        progress |= {(j.id, j.stage) for j in running if j.total}
        if jobs[2].stage == "generate" and not jobs[2].cancel_requested:
            runner.cancel("cancelled")
        time.sleep(0.05)
    runner.release()
    assert most_at_once == 3  # all sent together; the worker runs 2 at once (2 CPUs)
    assert [j.state for j in jobs] == [JobState.DONE, JobState.DONE, JobState.CANCELLED]
    assert {("a", "generate"), ("b", "generate"), ("cancelled", "generate")} <= progress
    assert "jobs go to the Ray cluster" in (tmp_path / "worker.log").read_text()
    for each in jobs[:2]:
        out = Path(each.run.output_dir)
        lone = tmp_path / "lone" / each.id
        run_transfer(to_transfer_job(replace(each.run, output_dir=str(lone)),
                                     WorkerSettings(device="cpu")))
        assert frame_bytes(out) == frame_bytes(lone) and each.result.frame_count == 8
        assert ray_cluster in runs_logged(out)[0]
    status = json.loads((Path(jobs[2].run.output_dir) / "status.json").read_text())
    assert status["state"] == "cancelled" and status["frames_written"] < LONG


def test_a_task_asks_for_one_gpu_where_the_cluster_has_gpus_and_paths_are_made_absolute(clip):
    from backend.cluster.connect import Cluster
    from backend.cluster.follow import with_absolute_paths

    gpus, cpus = Cluster("head:6379", gpus=2, cpus=32), Cluster("head:6379", gpus=0, cpus=8)
    assert gpus.task_resources("auto") == {"num_gpus": 1, "num_cpus": 1}
    assert gpus.task_resources("cpu") == cpus.task_resources("auto") == {"num_gpus": 0,
                                                                         "num_cpus": 1}
    assert (gpus.slots, cpus.slots) == (2, 8)
    job = replace(make_job(clip, Path("jobs/a")), background="backgrounds/room.png")
    moved = with_absolute_paths(job)
    assert moved.output_dir == Path.cwd() / "jobs" / "a" and moved.source == job.source
    assert moved.background == str(Path.cwd() / "backgrounds" / "room.png")
    assert with_absolute_paths(replace(job, background="transparent")).background == "transparent"
