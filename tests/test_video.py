"""Tests for backend.video: probing, exact frame reading, MP4 and PNG writing, bad input.

Clips are generated here with PyAV directly (not with our writer), small (64x48, 40 frames)
so the whole file runs in seconds. Real footage tests read ../shared/data via `footage`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from backend.errors import InputError
from backend.video import Mp4Writer, PngSequenceWriter, probe, read_frame, read_frames
from backend.video.reader import _read_by_seeking

NTSC = Fraction(30000, 1001)
W, H, N = 64, 48, 40
AUDIO_RATE = 48000


# ---------------------------------------------------------------- clip generation


def pattern(i: int, width: int = W, height: int = H) -> np.ndarray:
    """Frame i: flat blocks whose colours and a bar length encode i (survives H.264 well)."""
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = (i * 37) % 256  # neighbouring frames differ a lot: no off-by-one slips by
    img[..., 2] = 255 - (i * 23) % 256
    img[: height // 2, : (i % width) + 1, 1] = 220
    img[height // 2 :, width // 2 :] = (40, 160, 90)
    return img


def tone(seconds: float, burst_from_s: float | None = None) -> np.ndarray:
    """Mono 440 Hz sine; with ``burst_from_s`` silent until then (an onset to locate)."""
    t = np.arange(round(seconds * AUDIO_RATE)) / AUDIO_RATE
    signal = 0.5 * np.sin(2 * np.pi * 440 * t)
    if burst_from_s is not None:
        signal[t < burst_from_s] = 0
    return signal.astype(np.float32)


def make_clip(
    path: Path,
    n: int = N,
    fps: Fraction = NTSC,
    size: tuple[int, int] = (W, H),
    audio: np.ndarray | None = None,
    audio_codec: str = "aac",
    gop: int = 8,
    options: dict[str, str] | None = None,
    rotation: int | None = None,
    vfr: bool = False,
    codec: str = "libx264",
) -> Path:
    """Write ``n`` pattern frames (H.264, keyframe every ``gop``) and optional mono audio.

    ``vfr``: irregular frame times in ms (40, 50 or 20 ms apart), as phones record.
    """
    container = av.open(str(path), "w", options=options or {})
    video = container.add_stream(codec, rate=fps)
    video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
    video.codec_context.gop_size = gop
    if codec == "libx264":
        video.options = {"crf": "12", "keyint_min": str(gop), "sc_threshold": "0"}
    else:
        video.bit_rate = 2_000_000
    if rotation is not None:
        video.set_display_rotation(rotation)
    if vfr:
        video.time_base = video.codec_context.time_base = Fraction(1, 1000)
    sound = None
    if audio is not None:
        sound = container.add_stream(audio_codec, rate=AUDIO_RATE, layout="mono")
        if audio_codec == "pcm_s16le":
            sound.format = "s16"
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(pattern(i, *size), format="rgb24")
        frame.pts = i * 40 + (i % 3) * 10 if vfr else i
        if vfr:
            frame.time_base = Fraction(1, 1000)
        container.mux(video.encode(frame))
    container.mux(video.encode(None))
    if sound is not None:
        block = 1024
        for k in range(0, len(audio), block):
            samples = audio[None, k : k + block]
            if audio_codec == "pcm_s16le":
                frame = av.AudioFrame.from_ndarray((samples * 32767).astype(np.int16), format="s16", layout="mono")
            else:
                frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = AUDIO_RATE, k
            container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    container.close()
    return path


def decoded_audio(path: Path) -> tuple[np.ndarray, int]:
    """All audio of ``path`` as mono float samples, and the sample rate."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
        rate = container.streams.audio[0].rate
    return np.concatenate(frames, axis=1)[0], rate


def frames_equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """One clip per container, generated once for the module."""
    folder = tmp_path_factory.mktemp("clips")
    return {
        "mp4": make_clip(folder / "clip.mp4"),
        "mkv": make_clip(folder / "clip.mkv"),
        "avi": make_clip(folder / "clip.avi"),
        "mov": make_clip(folder / "clip.mov"),
        "webm": make_clip(folder / "clip.webm", codec="libvpx"),
        "mp4_audio": make_clip(folder / "audio.mp4", audio=tone(2.0)),
        "mkv_pcm_burst": make_clip(folder / "burst.mkv", audio=tone(2.0, burst_from_s=1.0), audio_codec="pcm_s16le"),
    }


# ---------------------------------------------------------------- probe and read


@pytest.mark.parametrize("kind", ["mp4", "mkv", "avi", "mov", "webm"])
def test_probe_generated_clip(clips, kind):
    info = probe(clips[kind])
    assert (info.width, info.height, info.frame_count) == (W, H, N)
    assert info.fps == pytest.approx(30000 / 1001, abs=1e-9)
    assert info.frame_rate == NTSC
    assert info.duration_s == pytest.approx(N * 1001 / 30000)
    assert (info.kind, info.has_audio) == ("movie", False)


def test_probe_sees_audio(clips):
    assert probe(clips["mp4_audio"]).has_audio


@pytest.mark.parametrize("kind", ["mp4", "mkv", "avi"])
def test_frames_round_trip(clips, kind):
    frames = list(read_frames(clips[kind]))
    assert len(frames) == N
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in frames)
    assert max(mean_error(f, pattern(i)) for i, f in enumerate(frames)) < 4.0


@pytest.mark.parametrize("kind", ["mp4", "mkv", "avi", "webm"])
def test_range_reads_equal_slices_of_full_read(clips, kind):
    full = list(read_frames(clips[kind]))
    # Keyframes every 8 frames: ranges start on, just before and just after keyframes.
    for start, stop in [(0, 3), (5, 20), (7, 9), (8, 9), (9, 17), (31, 40), (39, 60), (20, 20)]:
        assert frames_equal(list(read_frames(clips[kind], start, stop)), full[start:stop]), (start, stop)
    assert np.array_equal(read_frame(clips[kind], 23), full[23])


@pytest.mark.parametrize("kind", ["mp4", "mkv"])
def test_seeking_itself_is_exact(clips, kind):
    """The fast path (seek + pts numbering) delivers the frames, not the counting fallback."""
    full = list(read_frames(clips[kind]))
    assert frames_equal(list(_read_by_seeking(clips[kind], 15, 30)), full[15:30])


def test_variable_frame_rate_clip(tmp_path):
    path = make_clip(tmp_path / "vfr.mp4", vfr=True)
    info = probe(path)
    assert info.frame_count == N
    assert info.fps == pytest.approx(N / 1.6, rel=0.05)  # frames over ~1.6 s: the average rate
    full = list(read_frames(path))
    assert len(full) == N and mean_error(full[17], pattern(17)) < 4.0
    for start, stop in [(7, 9), (13, 30)]:
        assert frames_equal(list(read_frames(path, start, stop)), full[start:stop])


def test_range_arguments(clips):
    assert list(read_frames(clips["mp4"], 40)) == []
    with pytest.raises(ValueError):
        read_frames(clips["mp4"], -1)
    with pytest.raises(IndexError):
        read_frame(clips["mp4"], N)


def test_rotation_tag_is_applied(tmp_path):
    path = make_clip(tmp_path / "portrait.mp4", n=3, rotation=90)
    info = probe(path)
    assert (info.width, info.height) == (H, W)
    frame = read_frame(path, 2)
    assert mean_error(frame, np.rot90(pattern(2))) < 4.0


# ---------------------------------------------------------------- image folders


def write_images(folder: Path, names: list[str], size: tuple[int, int] = (W, H)) -> None:
    folder.mkdir(exist_ok=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), cv2.cvtColor(pattern(i, *size), cv2.COLOR_RGB2BGR))


def test_image_folder_natural_order_and_fps(tmp_path):
    names = [f"frame{i}.png" for i in range(1, 13)]  # frame2 must come before frame10
    write_images(tmp_path / "seq", names)
    (tmp_path / "seq" / "notes.txt").write_text("not a frame")
    (tmp_path / "seq" / ".hidden.png").write_bytes(b"junk")
    info = probe(tmp_path / "seq")
    assert (info.kind, info.frame_count, info.width, info.height) == ("images", 12, W, H)
    assert (info.fps, info.has_audio) == (25.0, False)
    assert probe(tmp_path / "seq", fps=12).duration_s == pytest.approx(1.0)
    frames = list(read_frames(tmp_path / "seq"))
    assert all(np.array_equal(f, pattern(i)) for i, f in enumerate(frames))  # PNG is lossless
    assert frames_equal(list(read_frames(tmp_path / "seq", 9, 11)), frames[9:11])


def test_image_folder_of_jpegs_and_tiffs(tmp_path):
    write_images(tmp_path / "seq", ["a_01.jpg", "a_02.JPEG", "a_03.tif"])
    frames = list(read_frames(tmp_path / "seq"))
    assert len(frames) == 3 and mean_error(frames[1], pattern(1)) < 6.0


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="contains no images") as err:
        probe(tmp_path / "empty")
    assert err.value.path == tmp_path / "empty"
    write_images(tmp_path / "mixed", ["1.png", "2.png"])
    write_images(tmp_path / "mixed", ["3.png"], size=(32, 32))
    with pytest.raises(InputError, match="same size") as err:
        list(read_frames(tmp_path / "mixed"))
    assert err.value.path.name == "3.png"


# ---------------------------------------------------------------- bad input


def audio_only_file(path: Path) -> Path:
    container = av.open(str(path), "w")
    stream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
    for k in range(0, AUDIO_RATE // 2, 1024):
        frame = av.AudioFrame.from_ndarray(tone(0.5)[None, k : k + 1024], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = AUDIO_RATE, k
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    return path


def cut_in_half(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def test_bad_files_raise_input_error_naming_the_file(tmp_path, clips):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    (tmp_path / "empty.mp4").touch()
    cases = {
        tmp_path / "missing.mp4": "not found",
        tmp_path / "empty.mp4": "empty",
        text: "not a video",
        audio_only_file(tmp_path / "sound.m4a"): "no video stream",
    }
    for path, problem in cases.items():
        with pytest.raises(InputError, match=problem) as err:
            probe(path)
        assert err.value.path == path and str(path) in str(err.value)
        with pytest.raises(InputError, match=problem):
            read_frames(path)  # raises at the call, not at the first next()


@pytest.mark.parametrize("options", [{}, {"movflags": "+faststart"}], ids=["moov_at_end", "faststart"])
def test_truncated_mp4(tmp_path, options):
    whole = make_clip(tmp_path / "whole.mp4", options=options, gop=40)
    cut = cut_in_half(whole, tmp_path / "cut.mp4")
    with pytest.raises(InputError, match="truncated") as err:
        probe(cut)
    assert err.value.path == cut
    if options:  # the index survives: the message says how much is there
        assert "promises 40 frames but only" in str(err.value)


def test_truncated_mkv_and_avi(tmp_path, clips):
    for kind in ("mkv", "avi"):
        cut = cut_in_half(clips[kind], tmp_path / f"cut.{kind}")
        with pytest.raises(InputError, match="truncated"):
            probe(cut)


# ---------------------------------------------------------------- MP4 writer


def write_mp4(path: Path, n: int, fps, size=(W, H), **kwargs) -> Mp4Writer:
    with Mp4Writer(path, fps, size, **kwargs) as writer:
        for i in range(n):
            writer.write(pattern(i, *size))
    return writer


@pytest.mark.parametrize("fps", [NTSC, 24000 / 1001, 25])
def test_mp4_writer_round_trip(tmp_path, fps):
    out = tmp_path / "out.mp4"
    write_mp4(out, 30, fps)
    info = probe(out)
    assert (info.frame_count, info.width, info.height, info.has_audio) == (30, W, H, False)
    assert info.frame_rate == Fraction(fps).limit_denominator(1001)
    frames = list(read_frames(out))
    assert max(mean_error(f, pattern(i)) for i, f in enumerate(frames)) < 4.0
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.format.name == "yuv420p"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temp file left


def test_mp4_writer_pads_odd_sizes(tmp_path):
    out = tmp_path / "odd.mp4"
    writer = write_mp4(out, 5, 25, size=(65, 47))
    assert writer.encoded_size == (66, 48)
    frame = read_frame(out, 3)
    assert frame.shape == (48, 66, 3) and mean_error(frame[:47, :65], pattern(3, 65, 47)) < 4.0


def test_mp4_writer_rejects_wrong_frames(tmp_path):
    with Mp4Writer(tmp_path / "x.mp4", 25, (W, H)) as writer:
        with pytest.raises(ValueError, match="expected a uint8 frame"):
            writer.write(np.zeros((H, W + 2, 3), np.uint8))
        with pytest.raises(ValueError):
            writer.write(np.zeros((H, W, 3), np.float32))
        writer.write(pattern(0))


def test_mp4_writer_failure_keeps_existing_output(tmp_path):
    out = tmp_path / "result.mp4"
    out.write_bytes(b"previous good result")
    with pytest.raises(RuntimeError, match="boom"):
        with Mp4Writer(out, 25, (W, H)) as writer:
            writer.write(pattern(0))
            raise RuntimeError("boom")
    assert out.read_bytes() == b"previous good result"
    assert [p.name for p in tmp_path.iterdir()] == ["result.mp4"]
    with pytest.raises(RuntimeError):
        with Mp4Writer(tmp_path / "new.mp4", 25, (W, H)) as writer:
            writer.write(pattern(0))
            raise RuntimeError("boom")
    assert not (tmp_path / "new.mp4").exists()


def test_mp4_writer_copies_aac_trimmed_to_video(tmp_path, clips):
    out = tmp_path / "with_sound.mp4"
    writer = write_mp4(out, 30, NTSC, audio_from=clips["mp4_audio"])  # 1.001 s of video, 2 s of sound
    assert writer.has_audio and probe(out).has_audio
    samples, rate = decoded_audio(out)
    assert rate == AUDIO_RATE
    assert len(samples) / rate == pytest.approx(30 * 1001 / 30000, abs=0.025)
    assert np.sqrt(np.mean(samples**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)


def test_mp4_writer_transcodes_audio_from_an_offset(tmp_path, clips):
    """PCM audio with a tone starting at 1.0 s, taken from 0.5 s: the tone starts at 0.5 s."""
    out = tmp_path / "offset.mp4"
    write_mp4(out, 40, NTSC, audio_from=clips["mkv_pcm_burst"], audio_start_s=0.5)
    samples, rate = decoded_audio(out)
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    assert len(samples) / rate == pytest.approx(40 * 1001 / 30000, abs=0.025)
    onset = np.argmax(np.abs(samples) > 0.1) / rate
    assert onset == pytest.approx(0.5, abs=0.01)


def test_mp4_writer_audio_from_silent_or_missing_file(tmp_path, clips):
    assert not write_mp4(tmp_path / "a.mp4", 3, 25, audio_from=clips["mp4"]).has_audio
    with pytest.raises(InputError, match="not found"):
        Mp4Writer(tmp_path / "b.mp4", 25, (W, H), audio_from=tmp_path / "nope.wav")
    assert list(tmp_path.iterdir()) == [tmp_path / "a.mp4"]


# ---------------------------------------------------------------- PNG sequence writer


def test_png_sequence_round_trip_and_resume(tmp_path):
    folder = tmp_path / "frames"
    writer = PngSequenceWriter(folder)
    paths = [writer.write(pattern(i)) for i in range(4)]
    assert [p.name for p in paths] == ["000001.png", "000002.png", "000003.png", "000004.png"]
    assert writer.count_existing() == 4
    assert frames_equal(list(read_frames(folder)), [pattern(i) for i in range(4)])

    (folder / "000004.png").write_bytes((folder / "000004.png").read_bytes()[:100])  # cut short
    (folder / "000003.png").unlink()  # a gap: 000004 must not count
    resumed = PngSequenceWriter(folder)
    assert resumed.resume() == 2 and resumed.next_number == 3
    assert resumed.write(pattern(2)).name == "000003.png"
    assert PngSequenceWriter(folder).count_existing() == 3
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left


def test_png_sequence_numbering_options(tmp_path):
    writer = PngSequenceWriter(tmp_path, start_number=0, digits=4)
    assert writer.write(pattern(0)).name == "0000.png"
    assert writer.count_existing() == 1
    with pytest.raises(ValueError):
        writer.write(np.zeros((4, 4), np.uint8))


# ---------------------------------------------------------------- real footage


@pytest.mark.footage
@pytest.mark.parametrize(
    "name, size, fps, count",
    [
        ("target_taiji.mp4", (1280, 720), 24000 / 1001, 412),
        ("source_handheld.mp4", (1080, 1920), 12.0, 40),
        ("hard_two_people.avi", (1920, 1080), 30.0, 72),
    ],
)
def test_probe_real_footage(footage, name, size, fps, count):
    info = probe(footage(name))
    assert (info.width, info.height) == size
    assert info.fps == pytest.approx(fps, abs=1e-9)
    assert info.frame_count == count
    assert info.has_audio == (name == "target_taiji.mp4")


@pytest.mark.footage
def test_real_footage_frame_count_is_exact_and_ranges_match(footage):
    path = footage("source_handheld.mp4")
    with av.open(str(path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))  # independent of our reader
    assert probe(path).frame_count == decoded == 40
    full = list(read_frames(path))
    assert len(full) == 40 and full[0].shape == (1920, 1080, 3)
    assert frames_equal(list(read_frames(path, 25, 33)), full[25:33])


@pytest.mark.footage
def test_real_footage_seek_into_taiji(footage):
    path = footage("target_taiji.mp4")
    wanted = [f for i, f in enumerate(read_frames(path, 0, 305)) if i >= 297]
    assert frames_equal(list(read_frames(path, 297, 305)), wanted)
