"""Transfer's parts on their own: device choice, the canvas, face boxes, the generator loop's
resume property, the nearest-neighbour search, the helper threads and the job folder."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.errors import BackendError, InputError
from backend.labels import LabelStyle, render_label
from backend.models import (BundleManifest, FaceGeneratorConfig, GeneratorConfig, Bundle,
                            build_face_generator, build_generator)
from backend.pose.track import PoseTrack
from backend.runtime import Runtime, cpu_threads, resolve_device, resolve_precision
from backend.target.face import box_of, face_centers
from backend.target.letterbox import Letterbox
from backend.transfer.generate import FrameGenerator, feather_mask
from backend.transfer.inference import BackendConflict
from backend.video.png_writer import PNG_END
from backend.transfer.job import JobFolder, TransferJob
from backend.transfer.job_state import (Action, Decision, JobRecord, Made, OnDisk, Unreadable,
                                       check_claimable, decide, read_record)
from backend.transfer.nearest import MISSING_PENALTY, nearest_frames, pose_distances
from backend.transfer.streams import BackgroundSink, Prefetch


pytestmark = pytest.mark.usefixtures("one_thread")


# -- device and precision ---------------------------------------------------------------------


def test_auto_device_and_precision_follow_the_hardware():
    device = resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if device.type == "mps" else "cpu")
    assert device.type == expected
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert Runtime.resolve("cpu", "auto") == Runtime(torch.device("cpu"), "fp32")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_missing_cuda_is_a_clear_error():
    with pytest.raises(BackendError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_threads_fit_the_frames_the_cores_and_the_backend():
    small, paper = 256 * 128, 512 * 256
    assert cpu_threads(3, paper) == 3  # asked for: given
    for cores in (1, 2, 16):
        assert cpu_threads(0, small, cores) == cpu_threads(0, small, cores, "onnx") == 1
    # PyTorch's threads wait for each other beside a busy process: one on few cores
    assert [cpu_threads(0, paper, c) for c in (1, 2, 4, 16, 64)] == [1, 1, 2, 8, 8]
    # ONNX Runtime's pool does not: both cores of a laptop, half of many
    assert [cpu_threads(0, paper, c, "onnx") for c in (1, 2, 4, 16, 64)] == [1, 2, 2, 8, 8]


def test_unknown_device_and_precision_are_refused():
    with pytest.raises(BackendError, match="unknown device"):
        resolve_device("tpu")
    with pytest.raises(BackendError, match="unknown precision"):
        resolve_precision("int8", torch.device("cpu"))


# -- the canvas -------------------------------------------------------------------------------


def test_layout_of_a_wide_target_in_a_2_to_1_canvas_matches_training_letterbox():
    layout = Letterbox.fit_into((1280, 720), (512, 256))  # training's and transfer's alike
    assert layout.content == (455, 256) and layout.paste == (28, 0)
    canvas = np.random.default_rng(0).integers(0, 256, (256, 512, 3), dtype=np.uint8)
    content = layout.crop(canvas)
    assert content.shape == (256, 455, 3)
    padded = layout.pad(np.ascontiguousarray(content))
    assert np.array_equal(layout.crop(padded), content)
    assert padded[:, :28].max() == 0 and padded[:, 28 + 455:].max() == 0  # black bars


def test_layout_of_a_target_with_the_canvas_aspect_is_the_whole_canvas():
    layout = Letterbox.fit_into((1024, 512), (128, 64))
    image = np.zeros((64, 128, 3), np.uint8)
    assert layout.is_full and layout.crop(image).shape == image.shape
    assert layout.pad(image) is image


def _track(bodies: np.ndarray, size=(640, 360)) -> PoseTrack:
    t = len(bodies)
    track = PoseTrack.empty(t, 30.0, size)
    track.body[:] = bodies
    track.detected[:] = True
    return track


def test_face_centres_use_the_nose_else_fall_back_and_fill_from_the_nearest_frame():
    bodies = np.zeros((4, 25, 3), np.float32)
    bodies[0, 0] = (100, 50, 0.9)  # nose
    bodies[1, 1] = (200, 120, 0.9)  # neck only, with a mid hip 90 px below
    bodies[1, 8] = (200, 210, 0.9)
    centers = face_centers(_track(bodies))  # frames 2, 3: nothing, nearest is frame 1
    assert np.allclose(centers[0], (100, 50))
    assert np.allclose(centers[1], (200, 90))
    assert np.allclose(centers[2:], (200, 90))


def test_face_boxes_follow_the_nose_inside_the_canvas():
    layout = Letterbox.fit_into((640, 360), (128, 64))
    boxes = layout.face_boxes(np.array([[320.0, 100.0], [0.0, 0.0]]), multiple=4)
    side = 16  # 128 at 512 px high, scaled to 64 px
    assert all(b[2] - b[0] == side and b[3] - b[1] == side for b in boxes)
    x, y = 320.0 * layout.sx + layout.ox, 100.0 * layout.sy + layout.oy
    assert abs((boxes[0][0] + boxes[0][2]) / 2 - x) <= 1 and abs((boxes[0][1] + boxes[0][3]) / 2 - y) <= 1
    assert tuple(boxes[1][:2]) == (0, 0)  # clamped into the canvas


def test_feather_is_zero_at_the_border_and_one_inside():
    mask = feather_mask(16, 4.0)
    assert mask.shape == (16, 16)
    assert mask[0].max() < 0.2 and mask[:, -1].max() < 0.2
    assert torch.all(mask[4:12, 4:12] == 1.0)
    assert torch.equal(feather_mask(8, 0), torch.ones(8, 8))


# -- the generator loop -----------------------------------------------------------------------


def _tiny_bundle(resolution=(64, 32)) -> Bundle:
    torch.manual_seed(0)
    config = GeneratorConfig(ngf=8, n_downsample_global=2, n_blocks_global=2)
    face = FaceGeneratorConfig(ngf=8, n_downsampling=2, n_blocks=1)
    manifest = BundleManifest(name="t", generator=config, resolution=resolution,
                              label_style=LabelStyle().to_dict(), normalization={},
                              face_generator=face)
    return Bundle(None, manifest, build_generator(config).eval(),  # type: ignore[arg-type]
                  build_face_generator(face).eval())


def _labels(n: int, size=(64, 32)) -> list[np.ndarray]:
    from backend.demo import dance_motion

    track = dance_motion(n, size=(640, 360))
    return [render_label(track.frame(i), track.size, size) for i in range(n)]


def test_resuming_from_a_written_frame_gives_the_frames_of_an_uninterrupted_run():
    bundle = _tiny_bundle()
    layout = Letterbox.fit_into((640, 360), (64, 32))
    labels = _labels(6)
    box = (8, 4, 24, 20)
    run = FrameGenerator(bundle, Runtime.resolve("cpu"), layout)
    run.reset()
    frames = [run(label, box).color for label in labels]
    assert frames[0].shape == (32, 57, 3)  # the target's 16:9 part of the 2:1 canvas
    assert not np.array_equal(frames[0], frames[1])
    resumed = FrameGenerator(bundle, Runtime.resolve("cpu"), layout)
    resumed.reset(frames[2])
    assert all(np.array_equal(resumed(labels[i], box).color, frames[i]) for i in range(3, 6))
    # ... and the previous frame matters: conditioning on zeros gives another frame 3
    fresh = FrameGenerator(bundle, Runtime.resolve("cpu"), layout)
    fresh.reset()
    assert not np.array_equal(fresh(labels[3], box).color, frames[3])


@pytest.mark.parametrize("previous_input", ["minus_plate", "frame"])
def test_a_matte_model_sees_the_written_frame_minus_the_plate(previous_input):
    """With a matte G is conditioned on the frame it wrote (over the plate) minus the plate, as
    in training; a matte bundle written before ``previous_input`` existed ("frame") still
    gets the frame itself."""
    torch.manual_seed(0)
    config = GeneratorConfig(output_nc=4, ngf=8, n_downsample_global=2, n_blocks_global=2,
                             previous_input=previous_input)
    manifest = BundleManifest(name="t", generator=config, resolution=(64, 32),
                              label_style=LabelStyle().to_dict(), normalization={})
    net = build_generator(config).eval()
    seen: list[torch.Tensor] = []

    def recorded(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return net(x)

    plate = np.random.default_rng(1).integers(0, 256, (32, 64, 3), dtype=np.uint8)
    layout = Letterbox.fit_into((640, 360), (64, 32))
    bundle = Bundle(None, manifest, recorded, None)  # type: ignore[arg-type]
    run = FrameGenerator(bundle, Runtime.resolve("cpu"), layout, face=False, plate=plate)
    run.reset()
    first = run(_labels(1)[0])
    run(_labels(2)[1])
    written = run.to_tensor(layout.pad(run.over_plate(first)))
    expected = written - run.plate if previous_input == "minus_plate" else written
    assert torch.equal(seen[0][:, 3:], torch.zeros_like(seen[0][:, 3:]))  # the first: zeros
    assert torch.allclose(seen[1][:, 3:], expected)


def test_face_residual_changes_only_the_face_box():
    bundle = _tiny_bundle()
    layout = Letterbox.fit_into((1280, 640), (64, 32))  # full canvas: box coordinates are frame ones
    label = _labels(1)[0]
    with_face = FrameGenerator(bundle, Runtime.resolve("cpu"), layout, face=True)
    without = FrameGenerator(bundle, Runtime.resolve("cpu"), layout, face=False)
    assert with_face.uses_face and not without.uses_face
    with_face.reset(), without.reset()
    a, b = with_face(label, (16, 8, 32, 24)).color, without(label, (16, 8, 32, 24)).color
    changed = np.argwhere(np.any(a != b, axis=-1))
    assert len(changed) > 0
    assert changed[:, 0].min() >= 8 and changed[:, 0].max() < 24
    assert changed[:, 1].min() >= 16 and changed[:, 1].max() < 32


def test_half_precision_runs_on_the_cpu():
    bundle = _tiny_bundle()
    run = FrameGenerator(bundle, Runtime.resolve("cpu", "bf16"), Letterbox.fit_into((128, 64), (64, 32)))
    run.reset()
    frame = run(_labels(1)[0], (0, 0, 16, 16)).color
    assert frame.shape == (32, 64, 3) and frame.dtype == np.uint8
    assert next(bundle.generator.parameters()).dtype == torch.float32  # the bundle is unchanged


# -- nearest neighbour ------------------------------------------------------------------------


def test_nearest_finds_the_same_pose_and_weighs_by_confidence():
    rng = np.random.default_rng(1)
    targets = np.concatenate([rng.uniform(0, 360, (50, 25, 2)), np.ones((50, 25, 1))], -1)
    source = targets[[7, 31, 7]].copy()
    source[1, :, :2] += rng.normal(0, 2, (25, 2))  # a little noise: still frame 31
    source[2, :10, :2] += 500  # far off, but only where the source is not sure at all
    source[2, :10, 2] = 0
    assert nearest_frames(source, targets, 360).tolist() == [7, 31, 7]
    d = pose_distances(source[:1], targets, 360)
    assert d.shape == (1, 50) and d[0, 7] == 0


def test_nearest_penalizes_joints_the_target_lacks_and_holds_over_empty_frames():
    pose = np.concatenate([np.full((25, 2), 100.0), np.ones((25, 1))], -1)
    lacking = pose.copy()
    lacking[:5, 2] = 0  # same place, but five joints missing
    shifted = pose.copy()
    shifted[:, :2] += 9.0  # every joint present, slightly off
    targets = np.stack([lacking, shifted])
    d = pose_distances(pose[None], targets, 360)[0]
    assert np.isclose(d[0], 5 / 25 * MISSING_PENALTY ** 2)
    assert d[1] < d[0]
    empty = np.zeros_like(pose)
    assert nearest_frames(np.stack([empty, pose, empty]), targets, 360).tolist() == [1, 1, 1]


# -- helper threads ---------------------------------------------------------------------------


def test_prefetch_yields_in_order_and_raises_the_producers_error():
    assert list(Prefetch(iter(range(20)), depth=2)) == list(range(20))

    def failing():
        yield 1
        raise InputError("clip.mp4", "is damaged")

    items = Prefetch(failing())
    assert next(items) == 1
    with pytest.raises(InputError, match="damaged"):
        next(items)
    endless = Prefetch(iter(int, 1), depth=2)  # never ends: close must still return
    next(endless)
    endless.close()


def test_background_sink_keeps_order_and_reports_errors():
    seen: list[int] = []
    sink = BackgroundSink(lambda x: (time.sleep(0.001), seen.append(x)), depth=2)
    for i in range(10):
        sink.put(i)
    sink.close()
    assert seen == list(range(10))

    def fail(x):
        raise OSError("disk full")

    sink = BackgroundSink(fail)
    sink.put(1)
    with pytest.raises(OSError, match="disk full"):
        sink.close()


# -- the job folder ---------------------------------------------------------------------------


def claim(root: Path, identity: dict, overwrite: bool = False,
          choose=lambda made: made.backend if made else "torch") -> tuple[JobFolder, Action]:
    """What a run does with a job folder, without the networks: check, decide, apply."""
    check_claimable(root)
    folder = JobFolder(root)
    decision = decide(folder.read_disk(folder.frames_done(), []), identity, overwrite, choose)
    folder.apply(decision, identity, {"p": 1}, Made(decision.chosen, "fp32"))
    return folder, decision.action


def test_job_folder_resumes_the_same_job_and_refuses_another(tmp_path):
    root = tmp_path / "job"
    folder, action = claim(root, {"source": "a", "range": [0, 5]})
    assert action is Action.START and folder.frames_dir.is_dir()
    (folder.frames_dir / "000001.png").write_bytes(PNG_END)  # a complete frame (its end)
    (folder.frames_dir / ".000002.png.abc.tmp").write_bytes(b"half")
    again, action = claim(root, {"source": "a", "range": [0, 5]})
    assert action is Action.RESUME and not (folder.frames_dir / ".000002.png.abc.tmp").exists()
    with pytest.raises(InputError, match=r"other parameters \(range differ\).*--overwrite"):
        claim(root, {"source": "a", "range": [0, 6]})
    assert (folder.frames_dir / "000001.png").exists()  # nothing lost by the refusal
    (root / "notes.txt").write_text("mine")
    _, action = claim(root, {"source": "a", "range": [0, 6]}, overwrite=True)
    assert action is Action.RESTART and not (folder.frames_dir / "000001.png").exists()
    assert (root / "notes.txt").read_text() == "mine"  # only the job's own files go
    assert json.loads((root / "job.json").read_text())["identity"]["range"] == [0, 6]


def test_one_function_decides_start_resume_revise_finished_restart(tmp_path):
    """`decide` over what is on disk: the job's identity, backend and precision come from
    job.json, so a folder without its status.json is the same job on the same backend."""
    same = {"source": "a", "range": [0, 5], "adjustments": None}
    revised = {**same, "adjustments": {"scale": 1.2}}
    other = {**same, "range": [0, 6]}
    onnx = JobRecord(same, Made("onnx", "fp32"))

    def disk(record, frames: int, complete: bool = False) -> OnDisk:
        return OnDisk(tmp_path, record, frames, complete)

    keep = lambda made: made.backend if made else "torch"  # noqa: E731 - "auto"
    assert decide(disk(None, 0), same, False, keep) == Decision(Action.START, "torch")
    assert decide(disk(onnx, 0), same, False, keep) == Decision(Action.START, "torch")
    assert decide(disk(onnx, 3), same, False, keep) == Decision(Action.RESUME, "onnx", onnx)
    assert decide(disk(onnx, 3, True), same, False, keep).action is Action.FINISHED
    assert decide(disk(onnx, 3), revised, False, keep) == Decision(Action.REVISE, "onnx", onnx)
    assert decide(disk(onnx, 3), other, True, keep) == Decision(Action.RESTART, "torch")
    with pytest.raises(InputError, match="other parameters"):
        decide(disk(onnx, 3), other, False, keep)
    # adjustments that change nothing are the same job (an earlier command line wrote none)
    defaults = {**same, "adjustments": {"scale": 1.0, "offset_x": 0.0, "offset_y": 0.0}}
    assert decide(disk(onnx, 3), defaults, False, keep).action is Action.RESUME

    def torch_only(made):
        if made is not None and made.backend != "torch":
            raise BackendConflict("made with ONNX Runtime", "--overwrite", "another folder")
        return "torch"

    with pytest.raises(InputError, match="made with ONNX Runtime"):
        decide(disk(onnx, 3), same, False, torch_only)
    assert decide(disk(onnx, 3), same, True, torch_only) == Decision(Action.RESTART, "torch")
    unreadable = Unreadable("its job.json is unreadable")
    with pytest.raises(InputError, match="job.json is unreadable; .*--overwrite"):
        decide(disk(unreadable, 3), same, False, keep)
    assert decide(disk(unreadable, 3), same, True, keep) == Decision(Action.RESTART, "torch")


def test_a_record_is_read_or_unreadable_never_guessed():
    model = "ab" * 32
    identity = {"source": "a", "model": model, "method": "generator"}
    job = {"identity": identity, "backend": "torch", "precision": "fp32"}
    assert read_record(job, {}) == JobRecord(identity, Made("torch", "fp32"))
    for bad in ({"backend": "tensorflow"}, {"backend": None}, {"precision": "fp8"},
                {"precision": None}, {"identity": {**identity, "model": 5}},
                {"identity": "text"}):
        assert isinstance(read_record({**job, **bad}, {}), Unreadable), bad
    # folders of earlier versions, where unambiguous
    legacy = {"identity": identity, "parameters": {"cpu_backend": "auto", "precision": "auto"}}
    assert read_record(legacy, {"backend": "onnx", "device": "cpu, fp32"}).made == \
        Made("onnx", "fp32")
    assert isinstance(read_record(legacy, {"backend": "tf", "device": "cpu, fp32"}), Unreadable)
    assert isinstance(read_record(legacy, {}), Unreadable)  # status.json gone: ambiguous
    older = {"identity": identity, "parameters": {"precision": "fp32"}}  # before --cpu-backend
    assert read_record(older, {}).made == Made("torch", "fp32")
    nearest = {"identity": {**identity, "model": None, "method": "nearest"}, "backend": None,
               "precision": "fp32"}
    assert read_record(nearest, {}).made == Made(None, "fp32")


def test_a_folder_of_other_files_is_never_used(tmp_path):
    (tmp_path / "holiday.mp4").write_bytes(b"")
    for overwrite in (False, True):
        with pytest.raises(InputError, match="holds no transfer job"):
            claim(tmp_path, {"source": "a"}, overwrite=overwrite)
    assert [p.name for p in tmp_path.iterdir()] == ["holiday.mp4"]


@pytest.mark.slow
def test_a_busy_folder_is_refused_at_once_and_the_lock_dies_with_its_process(tmp_path):
    import subprocess
    import sys

    from backend.folders import FolderLock

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from backend.folders import FolderLock; "
         f"FolderLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=rf"{tmp_path}: is in use by another process \(pid "
                                             rf"{holder.pid}\)"):
            FolderLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with FolderLock(tmp_path):  # SIGKILL left nothing stale
        pass


def test_status_is_rewritten_atomically(tmp_path):
    folder, _ = claim(tmp_path / "job", {})
    stop = threading.Event()
    seen = []

    def read():
        while not stop.is_set():
            if folder.status_file.exists():
                seen.append(folder.read_status())

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(50):
        folder.write_status({"done": i})
    stop.set()
    reader.join()
    assert seen and all("done" in s for s in seen)  # never half a file
    assert folder.read_status()["done"] == 49


def test_box_of_gives_python_ints():
    assert box_of(np.array([[1, 2, 3, 4]], np.int64), 0) == (1, 2, 3, 4)
    assert all(type(v) is int for v in box_of(np.array([[1, 2, 3, 4]]), 0))


def test_a_resumed_job_keeps_the_precision_that_made_its_frames():
    """The precision, like the backend, is what made the frames: "auto" continues with the
    recorded one, another explicit one is a conflict (--overwrite starts again)."""
    from backend.transfer.job_setup import choose_runtime

    job = TransferJob(Path("a.mp4"), Path("bundle"), Path("out"), device="cpu",
                      cpu_backend="torch")
    runtime, backend = choose_runtime(job, Made("torch", "bf16"))
    assert (runtime.precision, backend) == ("bf16", "torch")
    assert choose_runtime(job, None)[0].precision == Runtime.resolve("cpu").precision
    explicit = TransferJob(Path("a.mp4"), Path("bundle"), Path("out"), device="cpu",
                           precision="fp32", cpu_backend="torch")
    with pytest.raises(BackendConflict, match=r"made at bf16.*--precision bf16.*--overwrite"):
        choose_runtime(explicit, Made("torch", "bf16"))
    assert choose_runtime(explicit, Made("torch", "fp32"))[0].precision == "fp32"
