"""Video decoding with PyAV: header probes, frame ranges with keyframe seeking, and clips.

Frames are numbered from 0 in presentation order; a frame's index is derived from its
presentation timestamp and the stream's frame rate, so a range ``[start, stop)`` is the same
whether it is decoded from the beginning or after a seek.

>>> from anomalykit.io.video import decode_frames, probe_video       # doctest: +SKIP
>>> probe_video("Abuse028_x264.mp4").num_frames                      # doctest: +SKIP
1412
>>> decode_frames("Abuse028_x264.mp4", 160, 176).shape               # doctest: +SKIP
(16, 240, 320, 3)
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MalformedFileError

__all__ = [
    "VideoInfo", "VideoReader", "close_cached_readers", "decode_frames", "h264_available", "iter_clips",
    "probe_video", "write_video",
]


@dataclass(frozen=True)
class VideoInfo:
    """What a video's container header says (nothing decoded)."""

    num_frames: int
    fps: float | None
    width: int
    height: int
    codec: str
    duration_s: float | None


def _av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("video decoding needs PyAV: pip install 'anomalykit[video]'") from exc
    return av


def _decode_error_types() -> tuple[type[BaseException], ...]:
    av = _av()
    return (av.error.FFmpegError, IndexError, ValueError, EOFError)  # type: ignore[attr-defined]


def _raise_malformed(path: str | Path, exc: BaseException) -> None:
    if isinstance(exc, FileNotFoundError):
        raise FileNotFoundError(f"video file not found: {path}") from exc
    if isinstance(exc, IndexError):
        raise MalformedFileError(path, "the file holds no video stream") from exc
    raise MalformedFileError(path, f"cannot decode video ({exc})") from exc


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's frame count, frame rate and size from its header.

    When the container does not record a frame count, packets are counted (demuxed, not decoded).
    """
    av = _av()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            count = int(stream.frames or 0)
            if count <= 0:
                count = sum(1 for packet in container.demux(stream) if packet.size)
            duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
            return VideoInfo(
                num_frames=count,
                fps=float(rate) if rate else None,
                width=int(stream.codec_context.width),
                height=int(stream.codec_context.height),
                codec=str(stream.codec_context.name),
                duration_s=duration,
            )
    except _decode_error_types() as exc:
        _raise_malformed(path, exc)
        raise  # pragma: no cover - _raise_malformed always raises


class VideoReader:
    """An open video for repeated range reads: ``frames(start, stop)`` seeks to the keyframe
    before ``start`` only when that is shorter than decoding on from the current position.

    >>> with VideoReader("clip.mp4") as reader:                           # doctest: +SKIP
    ...     first, second = reader.frames(0, 16), reader.frames(16, 32)   # one decode pass
    """

    #: decode forward instead of seeking when the wanted frame is at most this many frames ahead
    #: (or at most one keyframe interval, as observed while decoding, when that is longer)
    forward_window: int = 32

    def __init__(self, path: str | Path, *, threads: bool = True) -> None:
        av = _av()
        self.path = str(path)
        try:
            self._container = av.open(self.path)
            self._stream = self._container.streams.video[0]
        except _decode_error_types() as exc:
            if getattr(self, "_container", None) is not None:
                self._container.close()
            _raise_malformed(path, exc)
        if threads:
            self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate
        time_base = self._stream.time_base
        # presentation-timestamp ticks per frame; None when the stream gives no rate
        self._ticks_per_frame = float(1 / (rate * time_base)) if rate and time_base else None
        self._first_pts = self._stream.start_time
        self._frames: Iterator[Any] | None = None
        self._pending: tuple[int, Any] | None = None
        self._next_index = 0
        self._seeked_to = 0
        self._last_keyframe: int | None = None
        self._keyframe_interval = 0
        self._header_frames = int(self._stream.frames or 0)
        self.height = int(self._stream.codec_context.height)
        self.width = int(self._stream.codec_context.width)

    # -- context management ------------------------------------------------------------------
    def close(self) -> None:
        self._frames = None
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- decoding -----------------------------------------------------------------------------
    def _index_of(self, frame: Any, fallback: int) -> int:
        if frame.pts is None or self._ticks_per_frame is None:
            return fallback
        if self._first_pts is None:
            self._first_pts = frame.pts
        return int(round((frame.pts - self._first_pts) / self._ticks_per_frame))

    def _restart(self, start: int) -> None:
        """Position the decoder so that the next frame it yields is at or before ``start``."""
        self._pending = None
        self._seeked_to = start if self._ticks_per_frame is not None else 0
        self._last_keyframe = None
        if start > 0 and self._ticks_per_frame is not None:
            target = (self._first_pts or 0) + int(math.floor(start * self._ticks_per_frame))
            self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
            self._next_index = -1  # unknown until the first frame arrives
        else:
            self._container.seek(self._first_pts or 0, stream=self._stream, backward=True, any_frame=False)
            self._next_index = 0
        self._frames = self._container.decode(self._stream)

    def _next(self) -> tuple[int, Any] | None:
        if self._pending is not None:
            item, self._pending = self._pending, None
            self._next_index = item[0] + 1
            return item
        assert self._frames is not None
        frame = next(self._frames, None)
        if frame is None:
            return None
        index = self._index_of(frame, max(self._next_index, 0))
        self._next_index = index + 1
        if frame.key_frame:
            if self._last_keyframe is not None and index > self._last_keyframe:
                self._keyframe_interval = max(self._keyframe_interval, index - self._last_keyframe)
            self._last_keyframe = index
        return index, frame

    def frames(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames ``[start, stop)`` as T x H x W x 3 uint8 (fewer when the video ends first)."""
        if start < 0 or (stop is not None and stop < start):
            raise ValueError(f"{self.path}: invalid frame range [{start}, {stop})")
        if stop == start:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        try:
            return self._read(start, stop)
        except _decode_error_types() as exc:
            self._frames = None
            _raise_malformed(self.path, exc)
            raise  # pragma: no cover

    def _read(self, start: int, stop: int | None) -> np.ndarray:
        ahead = start - self._next_index
        if self._frames is None or ahead < 0 or ahead > max(self.forward_window, self._keyframe_interval):
            self._restart(start)
        out = _FrameBuffer(self._expected(start, stop), self.height, self.width, self.path)
        first = True
        back = 0
        while True:
            item = self._next()
            if item is None:
                break
            index, frame = item
            if first and index > start and self._seeked_to > 0:
                # the seek landed after the wanted frame (an open GOP, or a container that
                # indexes keyframes loosely): seek again further back, down to the beginning
                back = max(2 * back, 2 * (index - start), 8)
                self._restart(max(start - back, 0))
                continue
            first = False
            if index < start:
                continue
            if stop is not None and index >= stop:
                self._pending = item
                self._next_index = index
                break
            out.append(frame.to_ndarray(format="rgb24"))
        return out.result()

    def _expected(self, start: int, stop: int | None) -> int:
        """How many frames ``[start, stop)`` should hold according to the header (0: unknown)."""
        total = self._header_frames
        if total <= 0:
            return 0
        end = total if stop is None else min(stop, total)
        return max(end - start, 0)

    def clips(self, length: int, stride: int | None = None, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_frame, clip)`` for consecutive clips of ``length`` frames, ``stride``
        frames apart (default: ``length``, no overlap), in one forward decoding pass.

        A last clip shorter than ``length`` is not yielded.
        """
        if length <= 0:
            raise ValueError(f"{self.path}: clip length must be positive, got {length}")
        stride = length if stride is None else stride
        if stride <= 0:
            raise ValueError(f"{self.path}: clip stride must be positive, got {stride}")
        clip_start = start
        while stop is None or clip_start + length <= stop:
            if stride >= length:
                clip = self.frames(clip_start, clip_start + length)
            else:
                # overlapping clips: decode each frame once and reuse the overlap
                clip = self.frames(clip_start, clip_start + length) if clip_start == start else np.concatenate(
                    [previous[stride:], self.frames(clip_start + length - stride, clip_start + length)]
                )
            if clip.shape[0] < length:
                return
            yield clip_start, clip
            previous = clip
            clip_start += stride


class _ReaderCache:
    """A few open ``VideoReader``s per process, so that consecutive range reads of one file
    (clip after clip) continue decoding instead of reopening and seeking.

    Entries are keyed by path and checked against the file's size and modification time; a
    reader busy in another thread is not shared; everything is closed before ``fork`` (a
    decoder's threads do not survive it).
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, bool], tuple[tuple[int, int], VideoReader, threading.Lock]] = OrderedDict()

    def checkout(self, path: str, threads: bool) -> tuple[VideoReader, threading.Lock | None]:
        stat = os.stat(path)
        signature = (stat.st_size, stat.st_mtime_ns)
        key = (os.path.abspath(path), threads)
        stale = None
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                if entry[0] == signature and entry[2].acquire(blocking=False):
                    self._entries.move_to_end(key)
                    return entry[1], entry[2]
                if entry[0] != signature:
                    stale = self._entries.pop(key)
        if stale is not None:
            _close_quietly(stale)
        reader = VideoReader(path, threads=threads)
        lock = threading.Lock()
        lock.acquire()
        evicted = []
        with self._lock:
            if key in self._entries:  # another thread cached one meanwhile: use ours once
                return reader, None
            self._entries[key] = (signature, reader, lock)
            while len(self._entries) > self.size:
                evicted.append(self._entries.popitem(last=False)[1])
        for entry in evicted:
            _close_quietly(entry)
        return reader, lock

    def discard(self, reader: VideoReader) -> None:
        with self._lock:
            for key, entry in list(self._entries.items()):
                if entry[1] is reader:
                    del self._entries[key]
        reader.close()

    def clear(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            _close_quietly(entry)


def _close_quietly(entry: tuple[Any, VideoReader, threading.Lock]) -> None:
    _signature, reader, lock = entry
    # a reader busy in another thread is no longer cached; garbage collection closes it
    if lock.acquire(blocking=False):
        try:
            reader.close()
        finally:
            lock.release()


_READERS = _ReaderCache()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_READERS.clear)


def close_cached_readers() -> None:
    """Close the video files ``decode_frames`` keeps open for consecutive reads."""
    _READERS.clear()


class _FrameBuffer:
    """Collects decoded frames into one preallocated T x H x W x 3 array when the count is known
    (no list of frames and no final stacking copy); grows by concatenation past that count."""

    def __init__(self, expected: int, height: int, width: int, path: str) -> None:
        self.array = np.empty((expected, height, width, 3), np.uint8)
        self.count = 0
        self.extra: list[np.ndarray] = []
        self.path = path

    def append(self, frame: np.ndarray) -> None:
        if self.count < self.array.shape[0]:
            if frame.shape != self.array.shape[1:]:
                raise MalformedFileError(self.path, f"frame {self.count} is {frame.shape[1]}x{frame.shape[0]}, "
                                         f"the stream is {self.array.shape[2]}x{self.array.shape[1]}")
            self.array[self.count] = frame
        else:
            self.extra.append(frame)
        self.count += 1

    def result(self) -> np.ndarray:
        filled = self.array[: min(self.count, self.array.shape[0])]
        if self.extra:
            try:
                return np.concatenate([filled, np.stack(self.extra)])
            except ValueError as exc:
                raise MalformedFileError(self.path, f"frames change size mid-stream ({exc})") from None
        return filled


def decode_frames(
    path: str | Path, start: int = 0, stop: int | None = None, *, threads: bool = True, reuse: bool = True
) -> np.ndarray:
    """Decode frames ``[start, stop)`` of a video file as T x H x W x 3 uint8.

    Seeks to the keyframe at or before ``start``, decodes from there, and converts to RGB only
    the frames it returns. ``stop=None`` reads to the end; a ``stop`` past the end gives fewer
    frames. With ``reuse`` (default) the file stays open in a small per-process cache, so that a
    following read at or just after ``stop`` continues decoding without a seek (clip after clip);
    ``close_cached_readers()`` closes them. A file that will not decode raises
    ``MalformedFileError`` naming it.
    """
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"decode_frames: invalid frame range [{start}, {stop}) for {path}")
    if not reuse:
        with VideoReader(path, threads=threads) as reader:
            return reader.frames(start, stop)
    try:
        reader, lock = _READERS.checkout(str(path), threads)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"video file not found: {path}") from exc
    if lock is None:
        with reader:
            return reader.frames(start, stop)
    try:
        return reader.frames(start, stop)
    except BaseException:
        _READERS.discard(reader)  # its decoder state is unknown after an error
        raise
    finally:
        lock.release()


def iter_clips(
    path: str | Path,
    length: int,
    stride: int | None = None,
    start: int = 0,
    stop: int | None = None,
    *,
    threads: bool = True,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_frame, clip)`` over a video in one decoding pass (see ``VideoReader.clips``)."""
    with VideoReader(path, threads=threads) as reader:
        yield from reader.clips(length, stride, start, stop)


def h264_available() -> bool:
    """Whether PyAV's FFmpeg build can encode H.264 (libx264)."""
    av = _av()
    try:
        av.codec.Codec("libx264", "w")
    except (av.error.FFmpegError, ValueError):  # type: ignore[attr-defined]
        return False
    return True


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: int = 30,
    *,
    codec: str | None = None,
    gop: int = 12,
    b_frames: int = 2,
) -> str:
    """Encode T x H x W x 3 uint8 ``frames`` into an MP4 file; return the codec used.

    ``codec=None`` picks H.264 (libx264) when PyAV's FFmpeg has it, else MPEG-4 Part 2. Keyframes
    come every ``gop`` frames, with up to ``b_frames`` B-frames between references; the encoder
    runs single-threaded. H and W must be even (4:2:0 chroma).
    """
    av = _av()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"write_video: frames must be T x H x W x 3 uint8, got {frames.shape} {frames.dtype}")
    height, width = int(frames.shape[1]), int(frames.shape[2])
    if height % 2 or width % 2:
        raise ValueError(f"write_video: width and height must be even for yuv420p, got {width}x{height}")
    codec = codec or ("libx264" if h264_available() else "mpeg4")
    options = {"threads": "1"}
    if codec == "libx264":
        # fixed keyframe interval (no scene-cut keyframes), so that seeking is predictable
        options.update({"preset": "veryfast", "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"})
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = b_frames
        if codec != "libx264":
            stream.codec_context.bit_rate = 2_000_000
        stream.thread_count = 1
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return codec
