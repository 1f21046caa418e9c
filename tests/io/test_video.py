"""Frame decoding: ranges after keyframe seeks equal slices of a full decode, clips, probes, errors."""

from __future__ import annotations

import numpy as np
import pytest

from anomalykit.errors import MalformedFileError
from anomalykit.io import video as video_io
from anomalykit.io.video import VideoReader, decode_frames, h264_available, iter_clips, probe_video, write_video

CODECS = ["libx264", "mpeg4"] if h264_available() else ["mpeg4"]


def _graded(num_frames: int, size=(24, 32)) -> np.ndarray:
    frames = np.empty((num_frames, *size, 3), np.uint8)
    for i in range(num_frames):
        frames[i] = (i * 6) % 256
    return frames


def _indices(frames: np.ndarray) -> list[int]:
    """Which source frame each decoded frame is (its gray level is 6 x index)."""
    return [int(round(f.mean() / 6)) for f in frames]


@pytest.fixture(scope="module", params=CODECS)
def clip_file(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param) / "clip.mp4"
    write_video(path, _graded(40), codec=request.param, gop=8, b_frames=2)
    return path


def test_full_decode_returns_every_frame_in_order(clip_file):
    frames = decode_frames(clip_file)
    assert frames.shape == (40, 24, 32, 3) and frames.dtype == np.uint8
    assert _indices(frames) == list(range(40))


@pytest.mark.parametrize("start,stop", [(0, 5), (3, 11), (7, 9), (9, 17), (17, 40), (30, None), (39, 45), (16, 24)])
def test_ranges_after_seeking_equal_slices_of_the_full_decode(clip_file, start, stop):
    full = decode_frames(clip_file)
    part = decode_frames(clip_file, start, stop)
    np.testing.assert_array_equal(part, full[start:stop])


def test_empty_and_invalid_ranges(clip_file):
    assert decode_frames(clip_file, 8, 8).shape == (0, 24, 32, 3)
    assert decode_frames(clip_file, 50, 60).shape == (0, 24, 32, 3)
    with pytest.raises(ValueError, match="invalid frame range"):
        decode_frames(clip_file, 5, 2)
    with pytest.raises(ValueError, match="invalid frame range"):
        decode_frames(clip_file, -1, 2)


def test_reader_reuses_the_decoder_forward_and_seeks_back(clip_file, monkeypatch):
    full = decode_frames(clip_file)
    restarts: list[int] = []
    with VideoReader(clip_file) as reader:
        original = reader._restart
        monkeypatch.setattr(reader, "_restart", lambda start: (restarts.append(start), original(start)))
        for start, stop in [(0, 8), (8, 16), (16, 20), (22, 30)]:  # consecutive reads: one pass
            np.testing.assert_array_equal(reader.frames(start, stop), full[start:stop])
        assert restarts == [0]
        np.testing.assert_array_equal(reader.frames(2, 6), full[2:6])  # backwards: a seek
        assert restarts[:2] == [0, 2]
        # an open GOP may need a second seek further back, never a forward one
        assert all(r < 2 for r in restarts[2:])


def test_far_start_seeks_instead_of_decoding_from_the_beginning(tmp_path, monkeypatch):
    path = tmp_path / "long.mp4"
    write_video(path, _graded(40).repeat(3, axis=0), gop=8, b_frames=0)  # 120 frames, keyframe every 8
    decoded = 0
    with VideoReader(path) as reader:
        original = reader._next

        def counting():
            nonlocal decoded
            decoded += 1
            return original()

        monkeypatch.setattr(reader, "_next", counting)
        assert reader.frames(100, 104).shape[0] == 4
    assert decoded <= 4 + 8 + 1, f"decoded {decoded} frames to return 4 frames starting at 100"


def test_clips_cover_the_video_with_and_without_overlap(clip_file):
    full = decode_frames(clip_file)
    plain = list(iter_clips(clip_file, 16))
    assert [s for s, _ in plain] == [0, 16]  # the last 8 frames do not make a full clip
    overlapping = list(iter_clips(clip_file, 16, stride=8))
    assert [s for s, _ in overlapping] == [0, 8, 16, 24]
    for start, clip in plain + overlapping:
        np.testing.assert_array_equal(clip, full[start:start + 16])
    with pytest.raises(ValueError, match="clip length"):
        list(iter_clips(clip_file, 0))


def test_probe_reads_the_header(clip_file):
    info = probe_video(clip_file)
    assert (info.num_frames, info.fps, info.width, info.height) == (40, 30.0, 32, 24)
    assert info.codec in ("h264", "mpeg4")
    assert info.duration_s == pytest.approx(40 / 30, abs=0.05)


def test_write_video_places_keyframes_and_validates(tmp_path):
    import av

    frames = _graded(30)
    codec = write_video(tmp_path / "a.mp4", frames, gop=10, b_frames=2)
    assert codec == CODECS[0]
    np.testing.assert_allclose(decode_frames(tmp_path / "a.mp4").astype(float), frames, atol=6)
    if codec == "libx264":
        with av.open(str(tmp_path / "a.mp4")) as container:
            stream = container.streams.video[0]
            ticks = 1 / (stream.average_rate * stream.time_base)
            keyframes = sorted(round(p.pts / ticks) for p in container.demux(stream) if p.is_keyframe and p.pts is not None)
        assert keyframes == [0, 10, 20]
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "c.mp4", np.zeros((2, 5, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "c.mp4", np.zeros((2, 4, 8), np.uint8))


def test_a_file_that_is_not_a_video_names_the_file(tmp_path):
    bad = tmp_path / "Abuse001_x264.mp4"
    bad.write_bytes(b"this is not an mp4 container at all" * 50)
    for call in (lambda: decode_frames(bad), lambda: probe_video(bad), lambda: VideoReader(bad)):
        with pytest.raises(MalformedFileError, match="Abuse001_x264.mp4"):
            call()


def test_a_truncated_video_names_the_file_or_returns_the_frames_before_the_cut(tmp_path):
    good = tmp_path / "good.mp4"
    write_video(good, _graded(40), gop=8)
    data = good.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    try:
        frames = decode_frames(cut)
    except MalformedFileError as exc:
        assert "cut.mp4" in str(exc)
    else:
        assert frames.shape[0] < 40
        assert _indices(frames) == list(range(frames.shape[0]))


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.mp4"):
        decode_frames(tmp_path / "nothing.mp4")


def test_single_threaded_decoding_gives_the_same_frames(clip_file):
    np.testing.assert_array_equal(decode_frames(clip_file, 5, 30, threads=False), decode_frames(clip_file, 5, 30))
    assert video_io.VideoReader.forward_window > 0


def _count_restarts(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = VideoReader._restart

    def counting(self, start):
        calls.append(start)
        return original(self, start)

    monkeypatch.setattr(VideoReader, "_restart", counting)
    return calls


def test_consecutive_clips_continue_decoding_without_reopening(tmp_path, monkeypatch):
    video_io.close_cached_readers()
    path = tmp_path / "clips.mp4"
    write_video(path, _graded(40), gop=8)
    full = decode_frames(path, reuse=False)
    restarts = _count_restarts(monkeypatch)
    for start in range(0, 40, 8):
        np.testing.assert_array_equal(decode_frames(path, start, start + 8), full[start:start + 8])
    assert restarts == [0], "clip after clip must reuse the open decoder"
    np.testing.assert_array_equal(decode_frames(path, 1, 3), full[1:3])
    assert len(restarts) == 2  # going back seeks
    # a rewritten file is reopened, not served from the stale decoder
    write_video(path, _graded(40)[::-1].copy(), gop=8)
    assert _indices(decode_frames(path, 0, 4)) == [39, 38, 37, 36]
    video_io.close_cached_readers()


def test_cached_decoding_is_safe_across_threads(clip_file):
    from concurrent.futures import ThreadPoolExecutor

    full = decode_frames(clip_file, reuse=False)
    ranges = [(s, s + 6) for s in range(0, 34, 3)] * 3

    def read(bounds):
        start, stop = bounds
        return np.array_equal(decode_frames(clip_file, start, stop), full[start:stop])

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(read, ranges))


def _child_decode(path: str) -> list[int]:
    return _indices(decode_frames(path, 10, 14))


def test_cached_readers_survive_fork(clip_file):
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("fork is not available on this platform")
    decode_frames(clip_file, 0, 4)  # leaves a reader (with decoder threads) in the cache
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_child_decode, (str(clip_file),)).get(timeout=60) == [10, 11, 12, 13]
    assert _indices(decode_frames(clip_file, 4, 6)) == [4, 5]
