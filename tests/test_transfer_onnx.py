"""Transfer on ONNX Runtime, the CPU default: end to end on the demo performer with a tiny
untrained bundle, cancel and resume, ``--cpu-backend torch``, a resumed job keeping the
backend that made its frames, and the worker's model cache keeping the CPU networks."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.demo import make_demo_clip, target_motion
from backend.errors import JobCancelled, InputError
from backend.labels import LabelStyle
from backend.models import (BundleManifest, FaceGeneratorConfig, GeneratorConfig,
                            build_face_generator, build_generator, save_bundle)
from backend.normalize import compute_stats
from backend.onnx import CPU_BACKEND_ENV, OnnxGenerator
from backend.onnx import runtime as onnx_runtime
from backend.runtime import Runtime
from backend.transfer import TransferJob, choose_backend, run_transfer
from backend.transfer.inference import BackendConflict
from backend.video.images import read_image
from backend.transfer.model_cache import ModelCache

N_FRAMES = 10


@pytest.fixture(autouse=True)
def default_backend(monkeypatch, one_thread):
    """One thread (ONNX Runtime takes torch's count), and the default backend not
    overridden from outside."""
    monkeypatch.delenv(CPU_BACKEND_ENV, raising=False)


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-transfer-cache")


@pytest.fixture(autouse=True)
def shared_cache(module_cache, monkeypatch) -> Path:
    """Pose detections and ONNX exports shared by this module's tests."""
    monkeypatch.setenv("EVERYBODY_DANCE_CACHE", str(module_cache))
    return module_cache


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Path]:
    """A short dance of the demo performer, and a tiny untrained bundle (64x32, with a face
    generator) whose target is the demo performer walking about a 16:9 room."""
    folder = tmp_path_factory.mktemp("onnx-demo")
    make_demo_clip(folder / "dance.mp4", "dance", n_frames=N_FRAMES, fps=12, size=(128, 128),
                   progress=False)
    torch.manual_seed(0)
    config = GeneratorConfig(ngf=8, n_downsample_global=2, n_blocks_global=2)
    face = FaceGeneratorConfig(ngf=8, n_downsampling=2, n_blocks=1)
    stats = compute_stats(target_motion(90, fps=30, size=(640, 360), seed=1))
    manifest = BundleManifest(name="tiny", generator=config, resolution=(64, 32),
                              label_style=LabelStyle().to_dict(),
                              normalization=stats.to_dict(), face_generator=face)
    bundle = save_bundle(folder / "bundle", manifest, build_generator(config),
                         build_face_generator(face))
    return folder / "dance.mp4", bundle


def demo_job(demo, out: Path, **changes) -> TransferJob:
    source, bundle = demo
    return TransferJob(**{"source": source, "model": bundle, "output_dir": out,
                          "device": "cpu", **changes})


def frame_bytes(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((folder / "frames").glob("*.png"))]


def backend_of(folder: Path) -> str | None:
    """The backend job.json records (the one record of it)."""
    return json.loads((folder / "job.json").read_text())["backend"]


def status_of(folder: Path) -> dict:
    return json.loads((folder / "status.json").read_text())


def _run_module(demo, tmp_path_factory, module_cache, name: str, backend: str) -> Path:
    out = tmp_path_factory.mktemp(name) / "job"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVERYBODY_DANCE_CACHE", str(module_cache))
        mp.delenv(CPU_BACKEND_ENV, raising=False)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            run_transfer(demo_job(demo, out, cpu_backend=backend))
        finally:
            torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def onnx_reference(demo, tmp_path_factory, module_cache) -> Path:
    """An uninterrupted run with the default ("auto") backend."""
    return _run_module(demo, tmp_path_factory, module_cache, "onnx-ref", "auto")


@pytest.fixture(scope="module")
def torch_reference(demo, tmp_path_factory, module_cache) -> Path:
    return _run_module(demo, tmp_path_factory, module_cache, "torch-ref", "torch")


def cancelled_job(demo, out: Path, backend: str, after: int = 3) -> None:
    cancel = threading.Event()

    def report(stage, done, total):
        if stage == "generate" and done == after:
            cancel.set()

    with pytest.raises(JobCancelled):
        run_transfer(demo_job(demo, out, cpu_backend=backend), report=report, cancel=cancel)
    assert after <= status_of(out)["frames_written"] < N_FRAMES


# -- the default path ----------------------------------------------------------------------------


@pytest.mark.slow
def test_onnx_runtime_is_the_cpu_default_and_the_job_records_it(onnx_reference, torch_reference):
    status = status_of(onnx_reference)
    assert (status["state"], status["device"]) == ("done", "cpu, fp32")
    assert backend_of(onnx_reference) == "onnx" and "backend" not in status  # job.json's alone
    log = (onnx_reference / "log.txt").read_text()
    assert "on cpu, fp32 with ONNX Runtime 1." in log and "(1 thread)" in log
    assert backend_of(torch_reference) == "torch"
    assert "with PyTorch 2." in (torch_reference / "log.txt").read_text()
    # per-stage timings, as the benchmark reads them
    timings = status["timings"]
    assert {k: timings[k]["frames"] for k in timings} == {
        "poses": N_FRAMES, "labels": N_FRAMES, "generate": N_FRAMES, "write": N_FRAMES}
    assert all(t["seconds"] > 0 and t["fps"] > 0 for t in timings.values())
    # One step of the two backends agrees to the rounding of the 8-bit frame; over the
    # chain (each frame conditions the next) the differences carry on and, with this
    # untrained G, grow (10th frame: 4.9 levels on average), which is why a job keeps the
    # backend that made its frames.
    onnx_frames = [read_image(p) for p in sorted((onnx_reference / "frames").glob("*.png"))]
    torch_frames = [read_image(p) for p in sorted((torch_reference / "frames").glob("*.png"))]
    assert len(onnx_frames) == len(torch_frames) == N_FRAMES
    diffs = [np.abs(a.astype(int) - b.astype(int)) for a, b in zip(onnx_frames, torch_frames)]
    assert max(d.max() for d in diffs[:3]) <= 1


@pytest.mark.slow
def test_cancel_and_resume_under_onnx_runtime_gives_the_frames_of_an_uninterrupted_run(
        demo, onnx_reference, tmp_path):
    out = tmp_path / "job"
    cancelled_job(demo, out, "onnx")
    assert backend_of(out) == "onnx" and not (out / "result.mp4").exists()
    run_transfer(demo_job(demo, out))  # "auto" again
    assert frame_bytes(out) == frame_bytes(onnx_reference)
    assert "resumed at frame" in (out / "log.txt").read_text()
    assert backend_of(out) == "onnx"


@pytest.mark.slow
def test_cpu_backend_torch_on_the_command_line_matches_the_torch_reference(
        demo, torch_reference, tmp_path):
    from backend.cli import main

    source, bundle = demo
    out = tmp_path / "job"
    assert main(["retarget", "--model", str(bundle), "--source", str(source), "-o", str(out),
                 "--device", "cpu", "--cpu-backend", "torch", "-q"]) == 0
    assert frame_bytes(out) == frame_bytes(torch_reference)
    assert backend_of(out) == "torch"
    assert json.loads((out / "job.json").read_text())["parameters"]["cpu_backend"] == "torch"


# -- a resumed job keeps its backend --------------------------------------------------------------


@pytest.mark.slow
def test_a_resumed_job_continues_on_the_backend_that_made_its_frames(demo, torch_reference,
                                                                     tmp_path):
    out = tmp_path / "job"
    cancelled_job(demo, out, "torch")
    before = frame_bytes(out)
    with pytest.raises(InputError, match=r"made with PyTorch.*--cpu-backend torch.*--overwrite"):
        run_transfer(demo_job(demo, out, cpu_backend="onnx"))
    assert frame_bytes(out) == before and status_of(out)["state"] == "cancelled"
    run_transfer(demo_job(demo, out))  # "auto" would pick ONNX Runtime; the job keeps PyTorch
    assert frame_bytes(out) == frame_bytes(torch_reference)
    assert backend_of(out) == "torch"


@pytest.mark.slow
def test_a_job_without_a_recorded_backend_was_made_by_pytorch_and_overwrite_starts_again(
        demo, torch_reference, onnx_reference, tmp_path):
    out = tmp_path / "job"
    shutil.copytree(torch_reference, out)
    record = json.loads((out / "job.json").read_text())
    del record["backend"], record["precision"]  # as written before the CPU had a choice
    del record["parameters"]["cpu_backend"]
    (out / "job.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match="made with PyTorch"):
        run_transfer(demo_job(demo, out, cpu_backend="onnx"))
    run_transfer(demo_job(demo, out, cpu_backend="onnx", overwrite=True))
    assert frame_bytes(out) == frame_bytes(onnx_reference)
    assert backend_of(out) == "onnx" and status_of(out)["resumed_from"] is None


@pytest.mark.parametrize("edit", ["tensorflow", None, "deleted"])
def test_a_job_whose_recorded_backend_is_unreadable_is_refused_not_switched(
        demo, torch_reference, tmp_path, capsys, edit):
    """Issue 25's bad case: started with --cpu-backend torch, interrupted, job.json's backend
    edited: refused (exit 2, saying what to do), nothing written; never resumed on ONNX."""
    from backend.cli import main

    out = tmp_path / "job"
    cancelled_job(demo, out, "torch")
    record = json.loads((out / "job.json").read_text())
    if edit == "deleted":
        del record["backend"]
        (out / "status.json").unlink()
    else:
        record["backend"] = edit
    (out / "job.json").write_text(json.dumps(record))
    before = frame_bytes(out)
    source, bundle = demo
    args = ["retarget", "--model", str(bundle), "--source", str(source), "-o", str(out),
            "--device", "cpu", "-q"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out}: its job.json") and "--overwrite" in err
    assert frame_bytes(out) == before and not (out / "result.mp4").exists()
    # put back, it resumes to the frames of the uninterrupted run
    record["backend"] = "torch"
    (out / "job.json").write_text(json.dumps(record))
    run_transfer(demo_job(demo, out))  # "auto": the recorded PyTorch
    assert frame_bytes(out) == frame_bytes(torch_reference)


@pytest.mark.slow
def test_a_job_made_by_onnx_runtime_is_refused_where_it_is_missing(demo, onnx_reference,
                                                                   tmp_path, monkeypatch):
    out = tmp_path / "job"
    shutil.copytree(onnx_reference, out)
    monkeypatch.setattr(onnx_runtime, "onnx_available", lambda: False)
    with pytest.raises(InputError, match=r"job: its frames so far were made with ONNX Runtime, "
                                         r"which is not installed here"):
        run_transfer(demo_job(demo, out))
    assert frame_bytes(out) == frame_bytes(onnx_reference)


def test_backend_choice_follows_the_device_precision_and_environment(monkeypatch):
    cpu, gpu = Runtime(torch.device("cpu"), "fp32"), Runtime(torch.device("cuda"), "bf16")
    assert choose_backend("auto", cpu) == "onnx"  # installed here, and the faster
    assert choose_backend("torch", cpu) == "torch"
    assert choose_backend("onnx", gpu) == "torch"  # ONNX Runtime is the CPU's fp32 path only
    assert choose_backend("auto", Runtime(torch.device("cpu"), "bf16")) == "torch"
    assert choose_backend("onnx", gpu, recorded="onnx") == "torch"  # a job moved to a GPU
    with pytest.raises(BackendConflict):
        choose_backend("torch", cpu, recorded="onnx")
    monkeypatch.setenv(CPU_BACKEND_ENV, "torch")
    assert choose_backend("auto", cpu) == "torch"  # the environment sets the default
    assert choose_backend("auto", cpu, recorded="onnx") == "onnx"  # ... of new jobs only
    assert choose_backend("onnx", cpu) == "onnx"
    with pytest.raises(ValueError, match="cpu_backend"):
        TransferJob(Path("a.mp4"), Path("bundle"), Path("out"), cpu_backend="tensorrt")


# -- the worker keeps the CPU networks ------------------------------------------------------------


@pytest.mark.slow
def test_the_worker_model_cache_keeps_the_cpu_networks(demo, tmp_path):
    source, bundle = demo
    cache = ModelCache()
    first = cache.cpu_networks(bundle, "onnx")
    assert isinstance(first.generator, OnnxGenerator) and cache.loads == 1
    assert cache.cpu_networks(bundle, "onnx") is first and cache.loads == 1
    # two jobs with the same bundle: nothing more is loaded, the same sessions run
    for name in ("a", "b"):
        run_transfer(demo_job(demo, tmp_path / name, frame_stop=3), models=cache)
    assert cache.loads == 1 and cache.cpu_networks(bundle, "onnx") is first
    assert backend_of(tmp_path / "b") == "onnx"
    # PyTorch on the CPU: the bundle, loaded once, kept beside the ONNX Runtime sessions
    torch_nets = cache.cpu_networks(bundle, "torch")
    assert cache.loads == 2
    assert cache.cpu_networks(bundle, "torch").generator is torch_nets.generator
    assert torch_nets.generator is cache.get(bundle, "cpu").generator and cache.loads == 2
    assert cache.cpu_networks(bundle, "onnx") is first


# -- precision auto on a CPU with native bf16 ------------------------------------------------------


def test_auto_on_a_cpu_with_native_bf16_runs_pytorch_at_bf16_and_resumes_exactly(
        demo, tmp_path, monkeypatch, onnx_reference):
    from backend.runtime import CPU_BF16_ENV

    monkeypatch.setenv(CPU_BF16_ENV, "1")
    straight = tmp_path / "straight"
    run_transfer(demo_job(demo, straight))
    assert "on cpu, bf16 with PyTorch 2." in (straight / "log.txt").read_text()
    recorded = json.loads((straight / "job.json").read_text())
    assert (recorded["backend"], recorded.get("precision", "bf16")) == ("torch", "bf16")
    out = tmp_path / "job"
    cancelled_job(demo, out, "auto")
    run_transfer(demo_job(demo, out))
    assert frame_bytes(out) == frame_bytes(straight)
    # bf16 rounds: the first frames stay within a few levels of fp32's
    first = [np.abs(read_image(a).astype(int) - read_image(b).astype(int)).mean()
             for a, b in zip(sorted((straight / "frames").glob("*.png"))[:3],
                             sorted((onnx_reference / "frames").glob("*.png"))[:3])]
    assert max(first) < 8


def test_a_job_begun_at_fp32_resumes_at_fp32_where_auto_now_means_bf16(
        demo, tmp_path, monkeypatch, onnx_reference):
    """A job of a machine (or version) where auto meant ONNX Runtime at fp32, continued where
    auto means bf16: it goes on as it began, to the frames of an uninterrupted run."""
    from backend.runtime import CPU_BF16_ENV

    out = tmp_path / "job"
    cancelled_job(demo, out, "auto")  # conftest: no native bf16, so ONNX Runtime at fp32
    monkeypatch.setenv(CPU_BF16_ENV, "1")
    run_transfer(demo_job(demo, out))
    assert frame_bytes(out) == frame_bytes(onnx_reference)
