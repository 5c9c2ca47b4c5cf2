"""The generators, the face helpers and the discriminators (small configurations, CPU)."""

from __future__ import annotations

import pytest
import torch

from backend.models.config import (PAPER_FACE, PAPER_GLOBAL, FaceGeneratorConfig,
                                   GeneratorConfig)
from backend.models.networks import (FaceGenerator, GlobalGenerator, LocalEnhancer,
                                     apply_face_residual, build_face_generator, build_generator,
                                     crop_box, generator_input)
from backend.target.face import face_box, face_box_size
from training.models.discriminators import (MultiscaleDiscriminator, NLayerDiscriminator,
                                            build_discriminator, build_face_discriminator,
                                            frame_pair, temporal_pair)
from training.options import preset
from training.stages import discriminator_config

SMALL = GeneratorConfig(ngf=8, n_downsample_global=2, n_blocks_global=2, n_blocks_local=1)
SMALL_LOCAL = GeneratorConfig(ngf=8, n_downsample_global=2, n_blocks_global=2,
                              n_local_enhancers=1, n_blocks_local=1)
SMALL_FACE = FaceGeneratorConfig(ngf=8, n_blocks=2)

PAPER_LOCAL = GeneratorConfig(n_local_enhancers=1)  # the paper's local enhancer


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def image(n: int = 1, c: int = 3, h: int = 32, w: int = 64) -> torch.Tensor:
    return torch.rand(n, c, h, w) * 2 - 1


# --- configurations --------------------------------------------------------------------------


def test_config_defaults_are_the_papers():
    assert (PAPER_GLOBAL.input_nc, PAPER_GLOBAL.output_nc, PAPER_GLOBAL.ngf) == (6, 3, 64)
    assert (PAPER_GLOBAL.n_downsample_global, PAPER_GLOBAL.n_blocks_global) == (4, 9)
    assert (PAPER_GLOBAL.norm, PAPER_GLOBAL.padding) == ("instance", "reflect")
    assert PAPER_LOCAL.n_local_enhancers == 1 and PAPER_LOCAL.n_blocks_local == 3
    assert (PAPER_FACE.ngf, PAPER_FACE.n_downsampling, PAPER_FACE.n_blocks) == (64, 3, 5)
    assert PAPER_GLOBAL.size_multiple == 16 and PAPER_LOCAL.size_multiple == 32


def test_config_round_trip_and_validation():
    for config in (SMALL_LOCAL, SMALL_FACE):
        assert type(config).from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown keys"):
        GeneratorConfig.from_dict({**SMALL.to_dict(), "ngf_local": 4})
    with pytest.raises(ValueError, match="norm"):
        GeneratorConfig(norm="layer")
    with pytest.raises(ValueError, match="n_blocks_global"):
        GeneratorConfig(n_blocks_global=-1)
    with pytest.raises(ValueError, match="divisible"):
        GeneratorConfig(ngf=6, n_local_enhancers=2)


# --- paper-size parameter counts (construction only, on the meta device) ---------------------


def test_paper_networks_parameter_counts():
    # Counted once from pix2pixHD's layer list (checked by hand: conv k*k*cin*cout + cout).
    with torch.device("meta"):
        assert count_parameters(build_generator(PAPER_GLOBAL)) == 182_452_675
        assert count_parameters(build_generator(PAPER_LOCAL)) == 182_715_939
        assert count_parameters(build_face_generator(PAPER_FACE)) == 26_724_291
        paper = preset("paper-local")
        local_d = build_discriminator(discriminator_config(paper, local=True))
        global_d = build_discriminator(discriminator_config(paper, local=False))
        assert count_parameters(local_d) == 3 * 2_773_953
        assert count_parameters(global_d) == 2 * 2_773_953
        assert count_parameters(build_face_discriminator()) == 2_769_601


# --- generators ------------------------------------------------------------------------------


def test_global_generator_shape_and_range():
    g = build_generator(SMALL)
    assert isinstance(g, GlobalGenerator)
    out = g(generator_input(image(2), image(2)))
    assert out.shape == (2, 3, 32, 64)
    assert out.abs().max() <= 1.0 and out.std() > 0


def test_generator_rejects_bad_sizes():
    g = build_generator(SMALL)
    with pytest.raises(ValueError, match="multiples of 4"):
        g(torch.zeros(1, 6, 30, 64))
    with pytest.raises(ValueError, match="N x 6"):
        g(torch.zeros(1, 3, 32, 64))
    with pytest.raises(ValueError, match="differ in shape"):
        generator_input(image(), image(h=16))


def test_generator_input_uses_zeros_for_the_first_frame():
    label = image()
    x = generator_input(label)
    assert x.shape == (1, 6, 32, 64)
    assert torch.equal(x[:, :3], label) and not x[:, 3:].any()


def test_local_enhancer_shape_range_and_widths():
    g = build_generator(SMALL_LOCAL)
    assert isinstance(g, LocalEnhancer)
    out = g(image(1, 6, 64, 128))
    assert out.shape == (1, 3, 64, 128) and out.abs().max() <= 1.0
    # The local branch has half the global width (pix2pixHD --netG local --ngf 32 with 64).
    assert g.branches[0].down[1].out_channels == SMALL_LOCAL.ngf // 2


def test_local_enhancer_from_global_copies_the_trained_weights():
    g = build_generator(SMALL)
    local = LocalEnhancer.from_global(g)
    assert local.config == SMALL_LOCAL
    trunk = local.global_trunk.state_dict()
    trained = g.model.state_dict()
    assert trunk.keys() <= trained.keys() and len(trunk) == len(trained) - 2  # minus final conv
    for key, value in trunk.items():
        assert torch.equal(value, trained[key]), key
    # The trunk computes exactly what the global generator computes before its last layers.
    x = image(1, 6)
    with torch.no_grad():
        assert torch.equal(local.global_trunk(x), g.model[:-3](x))


def test_two_consecutive_frames_train_through_the_previous_output():
    """G(x_t, G(x_t-1, 0)): the second frame's loss reaches the first frame's computation."""
    g = build_generator(SMALL)
    label0, label1 = image(), image()

    def second_frame_grads(detach_first: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        g.zero_grad()
        first = g(generator_input(label0))
        first.retain_grad()
        previous = first.detach() if detach_first else first
        second = g(generator_input(label1, previous))
        second.square().mean().backward()
        return first.grad, [p.grad.clone() for p in g.parameters()]

    first_grad, through = second_frame_grads(detach_first=False)
    assert first_grad is not None and first_grad.abs().sum() > 0
    no_grad_first, detached = second_frame_grads(detach_first=True)
    assert no_grad_first is None
    # The parameters get extra gradient through the first frame when it is not detached.
    assert any(not torch.allclose(a, b) for a, b in zip(through, detached))


def test_init_weights_is_pix2pixhd_normal():
    g = build_generator(GeneratorConfig(ngf=32, n_downsample_global=2, n_blocks_global=1))
    w = g.model[1].weight
    assert abs(w.mean().item()) < 0.002 and abs(w.std().item() - 0.02) < 0.002
    d = build_face_discriminator(ndf=16)
    bn = d.blocks[1][1]
    assert torch.all(bn.bias == 0) and abs(bn.weight.mean().item() - 1.0) < 0.01


# --- face generator and face region ----------------------------------------------------------


def test_face_generator_predicts_a_residual_of_the_crop_size():
    f = build_face_generator(SMALL_FACE)
    assert isinstance(f, FaceGenerator)
    residual = f(image(2, 3, 16, 16), image(2, 3, 16, 16))
    assert residual.shape == (2, 3, 16, 16) and residual.abs().max() <= 1.0
    with pytest.raises(ValueError, match="multiples of 8"):
        f(image(1, 3, 12, 12), image(1, 3, 12, 12))


def test_face_box_size_scales_with_the_height():
    assert face_box_size(512) == 128 and face_box_size(256) == 64 and face_box_size(128) == 32
    assert face_box_size(1080) == 272  # 270 rounded to a multiple of 8
    assert face_box_size(20) == 8


def test_face_box_is_centred_and_clamped_inside_the_image():
    assert face_box((512, 100), (1024, 512)) == (448, 36, 576, 164)
    assert face_box((3.0, 2.0), (1024, 512)) == (0, 0, 128, 128)
    assert face_box((1023.0, 511.0), (1024, 512)) == (896, 384, 1024, 512)
    assert face_box((300, 100), (512, 256)) == (268, 68, 332, 132)
    assert face_box((10, 10), (64, 32), box=64) == (0, 0, 32, 32)  # cut down to fit
    assert face_box((20, 20), (64, 64), box=20) == (12, 12, 28, 28)  # a multiple of 8
    with pytest.raises(ValueError, match="not finite"):
        face_box((float("nan"), 3), (64, 32))
    with pytest.raises(ValueError, match="too small"):
        face_box((2, 2), (6, 6))


def test_apply_face_residual_changes_only_the_box_and_passes_gradients():
    frame = image(2).requires_grad_()
    residual = (torch.rand(2, 3, 16, 16) * 0.2).requires_grad_()
    boxes = [(0, 0, 16, 16), (40, 10, 56, 26)]
    out = apply_face_residual(frame, residual, boxes, clamp=False)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        inside = torch.zeros(32, 64, dtype=torch.bool)
        inside[y0:y1, x0:x1] = True
        assert torch.equal(out[i][:, ~inside], frame[i][:, ~inside])
        assert torch.allclose(out[i][:, y0:y1, x0:x1], frame[i][:, y0:y1, x0:x1] + residual[i])
    assert torch.equal(crop_box(out, boxes), crop_box(frame, boxes) + residual)
    out.sum().backward()
    assert torch.all(residual.grad == 1) and torch.all(frame.grad == 1)


def test_apply_face_residual_clamps_and_checks_the_box():
    frame = torch.full((1, 3, 32, 64), 0.9)
    out = apply_face_residual(frame, torch.full((1, 3, 8, 8), 0.5), (8, 8, 16, 16))
    assert out.max() == 1.0 and out[0, :, 8:16, 8:16].eq(1.0).all()
    with pytest.raises(ValueError, match="does not fit"):
        apply_face_residual(frame, torch.zeros(1, 3, 8, 8), (0, 0, 16, 16))
    with pytest.raises(ValueError, match="outside"):
        apply_face_residual(frame, torch.zeros(1, 3, 8, 8), (60, 0, 68, 8))
    with pytest.raises(ValueError, match="face boxes"):
        crop_box(image(2), [(0, 0, 8, 8)])


# --- discriminators --------------------------------------------------------------------------


def test_multiscale_discriminator_returns_features_for_each_scale():
    d = MultiscaleDiscriminator(input_nc=12, ndf=8, n_layers=3, num_D=3)
    out = d(image(2, 12, 64, 128))
    assert len(out) == 3
    for scale, features in enumerate(out):
        assert len(features) == 3 + 2
        assert [f.shape[1] for f in features] == [8, 16, 32, 64, 1]
        assert features[-1].shape[0] == 2
    # Each scale sees the input pooled once more: its first feature map is about half as wide.
    widths = [features[0].shape[-1] for features in out]
    assert widths == [65, 33, 17]


def test_discriminator_inputs_in_the_official_order():
    x0, x1, y0, y1 = (torch.full((1, 3, 4, 4), float(v)) for v in range(4))
    pair = temporal_pair(x0, x1, y0, y1)
    assert pair.shape == (1, 12, 4, 4)
    assert [pair[0, c].mean().item() for c in (0, 3, 6, 9)] == [0.0, 1.0, 2.0, 3.0]
    assert torch.equal(frame_pair(x0, y1), torch.cat((x0, y1), dim=1))


def test_nlayer_face_discriminator_on_label_and_face_crops():
    d = build_face_discriminator(ndf=8)
    assert isinstance(d, NLayerDiscriminator)
    features = d(frame_pair(image(2, 3, 32, 32), image(2, 3, 32, 32)))
    assert len(features) == 5 and features[-1].shape[1] == 1
    with pytest.raises(RuntimeError):
        d(image(2, 12, 32, 32))
