"""Frame decoding with PyAV, seeking to the nearest keyframe before the first wanted frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MalformedFileError


def decode_frames(path: str | Path, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Decode frames ``[start, stop)`` of a video file as T x H x W x 3 uint8."""
    import av

    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"decode_frames: invalid frame range [{start}, {stop})")
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            time_base = stream.time_base
            first_pts = stream.start_time or 0
            if start > 0 and rate and time_base:
                target_pts = first_pts + int(start / float(rate) / float(time_base))
                container.seek(target_pts, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if rate and time_base and frame.pts is not None:
                    index = int(round((frame.pts - first_pts) * float(time_base) * float(rate)))
                else:
                    index = len(frames) + start
                if index < start:
                    continue
                if stop is not None and index >= stop:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
    except FileNotFoundError:
        raise
    except (av.error.FFmpegError, IndexError, ValueError) as exc:  # type: ignore[attr-defined]
        raise MalformedFileError(path, f"cannot decode video ({exc})") from exc
    if not frames:
        return np.zeros((0, 0, 0, 3), np.uint8)
    return np.stack(frames)
