"""The model bundle: round trip, atomic saving, and every way a bundle can be unreadable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import backend.models.bundle as bundle_module
from backend.errors import FormatVersionError, InputError
from backend.models.bundle import (BUNDLE_FORMAT_VERSION, FACE_GENERATOR_FILE, GENERATOR_FILE,
                                   MANIFEST_NAME, BundleManifest, is_bundle, load_bundle,
                                   read_manifest, save_bundle)
from backend.models.config import FaceGeneratorConfig, GeneratorConfig
from backend.models.networks import (GlobalGenerator, LocalEnhancer, build_face_generator,
                                     build_generator, generator_input)

SMALL = GeneratorConfig(ngf=8, n_downsample_global=2, n_blocks_global=2)
SMALL_LOCAL = GeneratorConfig(ngf=8, n_downsample_global=2, n_blocks_global=2,
                              n_local_enhancers=1, n_blocks_local=1)
SMALL_FACE = FaceGeneratorConfig(ngf=8, n_blocks=2)


def manifest(config: GeneratorConfig = SMALL, face: FaceGeneratorConfig | None = None,
             **overrides) -> BundleManifest:
    fields = dict(
        name="taiji-target",
        generator=config,
        face_generator=face,
        resolution=(64, 32),
        label_style={"background": [255, 255, 255], "joint_radius": 8, "limb_width": 4},
        normalization={"close_ankle_y": 700.5, "far_ankle_y": 520.0, "heights": [410.0, 300.0]},
        training={"stage": "global", "epochs": 1, "frames": 12},
    )
    fields.update(overrides)
    return BundleManifest(**fields)  # type: ignore[arg-type]


@pytest.fixture
def saved(tmp_path) -> tuple[Path, GlobalGenerator, torch.nn.Module]:
    torch.manual_seed(0)
    g = build_generator(SMALL)
    f = build_face_generator(SMALL_FACE)
    folder = save_bundle(tmp_path / "bundle", manifest(face=SMALL_FACE), g, f)
    return folder, g, f  # type: ignore[return-value]


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_round_trip_gives_identical_outputs(saved):
    folder, g, f = saved
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [MANIFEST_NAME, GENERATOR_FILE, FACE_GENERATOR_FILE])
    loaded = load_bundle(folder)
    assert loaded.manifest == manifest(face=SMALL_FACE, created=loaded.manifest.created)
    assert isinstance(loaded.generator, GlobalGenerator) and not loaded.generator.training
    assert loaded.face_generator is not None and not loaded.face_generator.training
    x = generator_input(torch.rand(1, 3, 32, 64) * 2 - 1)
    crops = torch.rand(2, 1, 3, 16, 16)
    g.eval(), f.eval()
    with torch.inference_mode():
        assert torch.equal(loaded.generator(x), g(x))
        assert torch.equal(loaded.face_generator(*crops), f(*crops))
    assert leftovers(folder.parent) == []


def test_round_trip_local_enhancer_without_face(tmp_path):
    g = build_generator(SMALL_LOCAL)
    save_bundle(tmp_path / "b", manifest(SMALL_LOCAL), g)
    loaded = load_bundle(tmp_path / "b")
    assert isinstance(loaded.generator, LocalEnhancer) and loaded.face_generator is None
    assert not (tmp_path / "b" / FACE_GENERATOR_FILE).exists()
    x = torch.rand(1, 6, 32, 64)
    with torch.no_grad():
        assert torch.equal(loaded.generator(x), g.eval()(x))


def test_manifest_is_plain_json(saved):
    folder, _, _ = saved
    data = json.loads((folder / MANIFEST_NAME).read_text())
    assert data["format_version"] == BUNDLE_FORMAT_VERSION
    assert data["resolution"] == [64, 32]
    assert data["generator"] == SMALL.to_dict() and data["face_generator"] == SMALL_FACE.to_dict()
    assert data["normalization"]["heights"] == [410.0, 300.0]
    assert data["label_style"]["joint_radius"] == 8
    assert {"name", "created", "backend_version", "training"} <= data.keys()
    assert is_bundle(folder) and read_manifest(folder).name == "taiji-target"


def test_saving_again_replaces_the_bundle_atomically(saved):
    folder, _, _ = saved
    g2 = build_generator(SMALL)
    save_bundle(folder, manifest(name="second"), g2)
    loaded = load_bundle(folder)
    assert loaded.manifest.name == "second" and loaded.face_generator is None
    assert not (folder / FACE_GENERATOR_FILE).exists()
    assert leftovers(folder.parent) == []


def test_a_failed_save_leaves_the_old_bundle_and_no_temporary_files(saved, monkeypatch):
    folder, g, _ = saved
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle_module, "save_file", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_bundle(folder, manifest(name="never"), g)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert leftovers(folder.parent) == []


def test_save_refuses_bad_input_before_writing(tmp_path):
    g = build_generator(SMALL)
    with pytest.raises(ValueError, match="JSON"):
        save_bundle(tmp_path / "b", manifest(label_style={"colour": object()}), g)
    with pytest.raises(ValueError, match="manifest says"):
        save_bundle(tmp_path / "b", manifest(SMALL_LOCAL), g)
    with pytest.raises(ValueError, match="face generator"):
        save_bundle(tmp_path / "b", manifest(face=SMALL_FACE), g)
    with pytest.raises(ValueError, match="multiples of 4"):
        manifest(resolution=(66, 32))
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(InputError, match="photos.*not a model bundle"):
        save_bundle(other, manifest(), g)
    assert (other / "holiday.jpg").read_bytes() == b"jpeg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_other_format_version_is_refused(saved):
    folder, _, _ = saved
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text())
    data["format_version"] = BUNDLE_FORMAT_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(FormatVersionError, match=r"manifest.json.*format version 3") as err:
        load_bundle(folder)
    assert err.value.path == path


def test_missing_or_broken_manifest(tmp_path, saved):
    folder, _, _ = saved
    with pytest.raises(InputError, match="not found"):
        load_bundle(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="manifest.json: missing"):
        load_bundle(empty)
    path = folder / MANIFEST_NAME
    path.write_text("{ not json")
    with pytest.raises(InputError, match="manifest.json: cannot read"):
        load_bundle(folder)
    path.write_text(json.dumps({"format_version": BUNDLE_FORMAT_VERSION, "name": "x"}))
    with pytest.raises(InputError, match="manifest.json: invalid bundle manifest"):
        load_bundle(folder)


def test_missing_weights_file_is_named(saved):
    folder, _, _ = saved
    (folder / FACE_GENERATOR_FILE).unlink()
    with pytest.raises(InputError, match="face_generator.safetensors: weights file missing"):
        load_bundle(folder)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "pickle"])
def test_corrupt_weights_file_is_named(saved, damage, tmp_path):
    folder, g, _ = saved
    path = folder / GENERATOR_FILE
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"\xff" * 4096)
    else:  # a pickled checkpoint under the bundle's name must not be unpickled
        torch.save(g.state_dict(), path)
    with pytest.raises(InputError, match="generator.safetensors: corrupt"):
        load_bundle(folder)


def test_weights_that_do_not_match_the_config_are_refused(saved):
    folder, _, _ = saved
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text())
    data["generator"]["ngf"] = 16  # same layers, other shapes
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="generator.safetensors: weights do not match.*size"):
        load_bundle(folder)
    data["generator"]["ngf"] = 8
    data["generator"]["n_blocks_global"] = 3  # more layers than the file holds
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="generator.safetensors: weights do not match.*Missing"):
        load_bundle(folder)


def test_loaded_networks_do_not_depend_on_the_files(saved):
    """Weights are copied out of the file: rewriting it afterwards changes nothing."""
    folder, _, _ = saved
    loaded = load_bundle(folder)
    x = torch.rand(1, 6, 32, 64)
    with torch.inference_mode():
        before = loaded.generator(x)
        path = folder / GENERATOR_FILE
        path.write_bytes(b"\x00" * path.stat().st_size)  # same size, in place
        assert torch.equal(loaded.generator(x), before)


# --------------------------------------------------------------------------------------------
# Bundles of earlier versions, and a manifest that disagrees with itself
# --------------------------------------------------------------------------------------------

LEGACY = Path(__file__).parent / "fixtures" / "legacy_bundle"


def test_a_bundle_of_the_previous_code_loads_and_transfers_the_same_pixels(tmp_path):
    """tests/fixtures/legacy_bundle was exported and transferred by the code before the
    target contract moved to backend/target (see its make.py): same manifest, same frames."""
    import numpy as np

    from backend.transfer import TransferJob, run_transfer
    from backend.video import PngSequenceWriter
    from backend.video.images import read_image

    manifest = read_manifest(LEGACY / "bundle")
    assert manifest.training.temporal == "paper" and manifest.training.uses_previous_frame
    assert manifest.training.letterbox == manifest.letterbox  # recorded == implied
    assert manifest.letterbox.content == (43, 32)
    writer = PngSequenceWriter(tmp_path / "source")
    for _ in range(8):
        writer.write(np.zeros((80, 80, 3), np.uint8))
    result = run_transfer(TransferJob(tmp_path / "source", LEGACY / "bundle", tmp_path / "job",
                                      fps=24.0, poses=LEGACY / "source_poses.npz",
                                      cpu_backend="torch"))
    expected = np.load(LEGACY / "expected_frames.npz")["frames"]
    frames = np.stack([read_image(result.frames_dir / f"{i:06d}.png") for i in range(1, 9)])
    # The same pixels, up to the float kernels of this CPU: on a Xeon with AVX-512 one pixel
    # of frame 5 rounded the other way (by 1), and each frame feeds the next through G's
    # previous-frame input, so such a flip spreads a little (6% of frame 8's values, by 3 at
    # most). Anything the bundle format could get wrong (the letterbox, the statistics, the
    # networks' configuration) moves the very first frame.
    assert np.array_equal(frames[:4], expected[:4])
    difference = np.abs(frames.astype(int) - expected)
    assert difference.max() <= 4 and (difference > 0).mean() < 0.1


def _edited_legacy(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "bundle"
    import shutil

    shutil.copytree(LEGACY / "bundle", folder)
    data = json.loads((folder / MANIFEST_NAME).read_text())
    edit(data)
    (folder / MANIFEST_NAME).write_text(json.dumps(data))
    return folder


def test_a_manifest_whose_letterbox_disagrees_with_its_resolution_is_refused(tmp_path):
    def other_resolution(data):
        data["resolution"] = [64, 64]

    folder = _edited_legacy(tmp_path, other_resolution)
    with pytest.raises(InputError, match=r"manifest.json.*training.letterbox disagrees.*canvas "
                                         r"64x32 is not the resolution 64x64"):
        read_manifest(folder)


def test_a_manifest_whose_letterbox_disagrees_with_the_target_is_refused(tmp_path):
    def other_target(data):
        data["normalization"]["frame_size"] = [1280, 720]

    with pytest.raises(InputError, match=r"source 96x72 is not the target's 1280x720"):
        read_manifest(_edited_legacy(tmp_path, other_target))

    def tampered_offset(data):
        data["training"]["letterbox"]["ox"] = 0.0

    with pytest.raises(InputError, match="scale and offset"):
        read_manifest(_edited_legacy(tmp_path / "2", tampered_offset))


def test_a_global_stage_export_of_earlier_versions_keeps_loading(tmp_path):
    """Earlier versions recorded the prepared canvas: twice the resolution for the global
    stage of a run with a local stage."""
    def global_stage_record(data):
        data["resolution"] = [32, 16]
        data["generator"]["n_downsample_global"] = 2
        data["face_generator"] = None
        data["training"]["stage"] = "global"

    manifest = read_manifest(_edited_legacy(tmp_path, global_stage_record))
    assert manifest.letterbox.canvas == (32, 16)
