"""ONNX export of the generators and the ONNX Runtime inference path, checked against PyTorch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="the onnx package is not installed (optional [onnx] extra)")
pytest.importorskip("onnxruntime",
                    reason="the onnxruntime package is not installed (optional [onnx] extra)")

import onnx  # noqa: E402

import backend.onnx.runtime as runtime  # noqa: E402
from backend.cli import main as cli_main  # noqa: E402
from backend.errors import BackendError, InputError  # noqa: E402
from backend.models import (BundleManifest, FaceGeneratorConfig, GeneratorConfig,  # noqa: E402
                            build_face_generator, build_generator, generator_input,
                            load_bundle, save_bundle)
from backend.models.bundle import FACE_GENERATOR_FILE, GENERATOR_FILE  # noqa: E402
from backend.onnx import OnnxGenerator, choose_cpu_backend, load_cpu_networks  # noqa: E402
from backend.onnx.export import (FACE_GENERATOR_ONNX, GENERATOR_ONNX,  # noqa: E402
                                 OnnxMismatchError, export_bundle_onnx, network_fingerprint)

TINY_LOCAL = GeneratorConfig(ngf=8, n_downsample_global=2, n_blocks_global=2,
                             n_local_enhancers=1, n_blocks_local=1)
TINY_GLOBAL = GeneratorConfig(ngf=8, n_downsample_global=2, n_blocks_global=2)
TINY_FACE = FaceGeneratorConfig(ngf=8, n_downsampling=1, n_blocks=1)
TOL = 1e-4


def make_bundle(folder: Path, config: GeneratorConfig = TINY_LOCAL,
                face: FaceGeneratorConfig | None = TINY_FACE, seed: int = 0) -> Path:
    """A 64x32 bundle with random weights (pix2pixHD's initialisation)."""
    torch.manual_seed(seed)
    manifest = BundleManifest(name="tiny", generator=config, face_generator=face,
                              resolution=(64, 32), label_style={}, normalization={})
    face_net = None if face is None else build_face_generator(face)
    return save_bundle(folder, manifest, build_generator(config), face_net)


def rand(*shape: int, seed: int = 7) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A tiny bundle (local enhancer + face generator) with its ONNX files inside."""
    folder = make_bundle(tmp_path_factory.mktemp("onnx") / "bundle")
    result = export_bundle_onnx(folder)
    assert [n.name for n in result.networks] == ["generator", "face_generator"]
    for network in result.networks:
        assert network.max_abs_diff is not None and network.max_abs_diff < TOL
    return folder


# --------------------------------------------------------------------------------------------
# Export: ONNX Runtime reproduces PyTorch
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_generator_matches_torch_at_any_batch_and_size(exported):
    bundle = load_bundle(exported)
    onnx_g = OnnxGenerator(exported / GENERATOR_ONNX)
    assert onnx_g.network == "generator" and onnx_g.size_multiple == 8
    for shape in [(1, 3, 32, 64), (3, 3, 48, 80)]:
        x = generator_input(rand(*shape), rand(*shape, seed=8))
        with torch.inference_mode():
            expected = bundle.generator(x)
        got = onnx_g(x)
        assert isinstance(got, torch.Tensor) and got.shape == expected.shape
        assert float((got - expected).abs().max()) < TOL
    # numpy in, numpy out; the first frame's zero "previous frame" too
    x = generator_input(rand(1, 3, 32, 64)).numpy()
    got_np = onnx_g(x)
    assert isinstance(got_np, np.ndarray)
    with torch.inference_mode():
        assert np.abs(got_np - bundle.generator(torch.from_numpy(x)).numpy()).max() < TOL


def test_face_generator_matches_torch(exported):
    bundle = load_bundle(exported)
    assert bundle.face_generator is not None
    face = OnnxGenerator(exported / FACE_GENERATOR_ONNX)
    assert face.input_names == ["label_crop", "face_crop"] and face.network == "face_generator"
    label, crop = rand(2, 3, 8, 8), rand(2, 3, 8, 8, seed=9)
    with torch.inference_mode():
        expected = bundle.face_generator(label, crop)
    assert float((face(label, crop) - expected).abs().max()) < TOL


def test_metadata_fingerprints_the_weights(exported):
    meta = OnnxGenerator(exported / GENERATOR_ONNX).metadata
    assert meta["fingerprint"] == network_fingerprint(exported / GENERATOR_FILE, TINY_LOCAL)
    assert meta["fingerprint"] != network_fingerprint(exported / FACE_GENERATOR_FILE, TINY_FACE)
    assert GeneratorConfig.from_dict(json.loads(meta["config"])) == TINY_LOCAL


def test_bad_inputs_get_the_torch_errors(exported):
    onnx_g = OnnxGenerator(exported / GENERATOR_ONNX)
    with pytest.raises(ValueError, match="multiples of 8"):
        onnx_g(rand(1, 6, 32, 60))
    with pytest.raises(ValueError, match="shape"):
        onnx_g(rand(1, 5, 32, 64))
    with pytest.raises(ValueError, match="takes 1 input"):
        onnx_g(rand(1, 6, 32, 64), rand(1, 6, 32, 64))
    face = OnnxGenerator(exported / FACE_GENERATOR_ONNX)
    with pytest.raises(ValueError, match="differ"):
        face(rand(1, 3, 8, 8), rand(1, 3, 16, 16))


@pytest.mark.slow
def test_static_export_fixes_the_size(tmp_path):
    folder = make_bundle(tmp_path / "b", TINY_GLOBAL, face=None)
    result = export_bundle_onnx(folder, tmp_path / "out", dynamic=False)
    assert [n.name for n in result.networks] == ["generator"]
    assert not (folder / GENERATOR_ONNX).exists()  # written to out_dir, not the bundle
    onnx_g = OnnxGenerator(tmp_path / "out" / GENERATOR_ONNX)
    assert onnx_g.inputs[0].shape == [1, 6, 32, 64]
    with torch.inference_mode():
        expected = load_bundle(folder).generator(rand(1, 6, 32, 64))
    assert float((onnx_g(rand(1, 6, 32, 64)) - expected).abs().max()) < TOL
    with pytest.raises(ValueError, match="shape"):
        onnx_g(rand(1, 6, 64, 64))


@pytest.mark.slow
def test_failed_check_keeps_the_old_file(exported, tmp_path):
    folder = tmp_path / "bundle"
    shutil.copytree(exported, folder)
    before = (folder / GENERATOR_ONNX).read_bytes()
    with pytest.raises(OnnxMismatchError, match="differs from PyTorch"):
        export_bundle_onnx(folder, atol=0.0)  # ORT's summation order differs: never exact
    assert (folder / GENERATOR_ONNX).read_bytes() == before
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_export_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        export_bundle_onnx(tmp_path / "missing")
    folder = make_bundle(tmp_path / "b", TINY_GLOBAL, face=None)
    with pytest.raises(ValueError, match="opset"):
        export_bundle_onnx(folder, opset=9)


# --------------------------------------------------------------------------------------------
# Damaged files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_onnx_is_an_input_error_naming_the_file(exported, tmp_path, damage):
    data = (exported / GENERATOR_ONNX).read_bytes()
    path = tmp_path / "generator.onnx"
    path.write_bytes({"garbage": b"this is not a model" * 50, "truncated": data[:len(data) // 2],
                      "empty": b""}[damage])
    with pytest.raises(InputError) as err:
        OnnxGenerator(path)
    assert str(path) in str(err.value) and "ONNX" in str(err.value)


def test_missing_onnx_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        OnnxGenerator(tmp_path / "nope.onnx")


# --------------------------------------------------------------------------------------------
# Choosing and loading the CPU backend
# --------------------------------------------------------------------------------------------


def test_load_cpu_networks_uses_the_bundles_onnx_files(exported):
    nets = load_cpu_networks(exported, backend="onnx")
    assert nets.backend == "onnx"
    assert nets.onnx_files == [exported / GENERATOR_ONNX, exported / FACE_GENERATOR_ONNX]
    torch_nets = load_cpu_networks(exported, backend="torch")
    x = rand(1, 6, 32, 64)
    with torch.inference_mode():
        assert float((nets.generator(x) - torch_nets.generator(x)).abs().max()) < TOL


@pytest.mark.slow
def test_stale_or_corrupt_onnx_is_replaced_by_a_cached_export(exported, tmp_path, capsys):
    # Another model's ONNX files in this bundle's folder must not be used for it.
    folder = make_bundle(tmp_path / "other", seed=1)
    shutil.copy(exported / GENERATOR_ONNX, folder / GENERATOR_ONNX)
    (folder / FACE_GENERATOR_ONNX).write_bytes(b"\x00broken")
    nets = load_cpu_networks(folder, backend="onnx")
    assert all(folder not in p.parents for p in nets.onnx_files)  # exported to the cache
    assert "ignoring" in capsys.readouterr().err
    bundle = load_bundle(folder)
    x, label, crop = rand(1, 6, 32, 64), rand(1, 3, 8, 8), rand(1, 3, 8, 8, seed=3)
    with torch.inference_mode():
        assert float((nets.generator(x) - bundle.generator(x)).abs().max()) < TOL
        assert nets.face_generator is not None and bundle.face_generator is not None
        assert float((nets.face_generator(label, crop)
                      - bundle.face_generator(label, crop)).abs().max()) < TOL
    again = load_cpu_networks(folder, backend="onnx")  # the cached export is reused
    assert again.onnx_files == nets.onnx_files
    assert "exporting" not in capsys.readouterr().err


def test_choose_cpu_backend(monkeypatch):
    monkeypatch.delenv(runtime.CPU_BACKEND_ENV, raising=False)
    assert choose_cpu_backend() == "onnx"  # measured faster; installed in this test
    assert choose_cpu_backend("torch") == "torch"
    monkeypatch.setenv(runtime.CPU_BACKEND_ENV, "torch")
    assert choose_cpu_backend() == "torch"
    monkeypatch.setenv(runtime.CPU_BACKEND_ENV, "tensorflow")
    with pytest.raises(BackendError, match="EVERYBODY_DANCE_CPU_BACKEND"):
        choose_cpu_backend()
    monkeypatch.delenv(runtime.CPU_BACKEND_ENV)
    monkeypatch.setattr(runtime, "onnx_available", lambda: False)
    assert choose_cpu_backend() == "torch"
    with pytest.raises(BackendError, match="pip install"):
        choose_cpu_backend("onnx")


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_export_onnx(exported, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli_main(["export-onnx", str(exported), "-o", str(out), "--opset", "13"]) == 0
    err = capsys.readouterr().err
    assert str(out / GENERATOR_ONNX) in err and str(out / FACE_GENERATOR_ONNX) in err
    model = onnx.load(str(out / GENERATOR_ONNX))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [13]
    # a bad bundle is reported as an error naming it, exit code 2
    assert cli_main(["export-onnx", str(tmp_path / "missing")]) == 2
    assert str(tmp_path / "missing") in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["export-onnx", str(exported), "--opset", "5"])
