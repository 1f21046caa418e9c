"""Video decoding: frames/s through the ``ucf_crime`` loader against PyAV decoding the same files.

Builds a UCF-Crime-layout tree (the testing builder's layout and split files) whose MP4 files
are replaced by longer H.264 videos (default 320 x 240, 30 fps, 600 frames, keyframe every 250
frames as x264's default), then times, in the same run and on the same files:

* whole videos. limit: PyAV opening each file, decoding every frame and converting it to an
  RGB array (threads on), stacked into T x H x W x 3; anomalykit: iterating
  ``anomalykit.load("ucf_crime", root)`` and calling ``sample.data.frames()``.
* clips. limit: PyAV opening the file, seeking to the keyframe before the clip, decoding up to
  the clip's end and converting the clip's frames; anomalykit: ``sample.data.frames(s, s + n)``.
  The same seeded list of clip starts is used by both.

After a warm-up pass, rounds alternate the order of the two sides; each side's best round counts. Prints frames/s of
each and the ratio anomalykit / limit. Target: at least 0.90.

    python benchmarks/bench_video.py [--frames 600] [--size 240x320] [--gop 250] [--clips 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import anomalykit
from anomalykit.io.video import h264_available, write_video
from anomalykit.testing import build


def textured_frames(num_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """A moving sinusoidal texture with mild noise: encodes and decodes like real footage."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 3)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        for c in range(3):
            wave = np.sin((x + 2 * t) / (9 + 4 * c) + phase[c]) * np.cos((y - t) / (13 + 3 * c))
            frames[t, :, :, c] = np.clip(128 + 90 * wave + rng.normal(0, 6, (height, width)), 0, 255)
    return frames


def make_tree(root: Path, num_frames: int, size: tuple[int, int], gop: int, progress: Progress) -> list[Path]:
    built = build("ucf_crime", root)
    videos = sorted(built.root.rglob("*.mp4"))
    task = progress.add_task("encoding test videos", total=len(videos))
    for i, path in enumerate(videos):
        write_video(path, textured_frames(num_frames, *size, seed=i), fps=30, gop=gop, b_frames=2)
        progress.advance(task)
    return videos


def limit_whole(paths: list[Path]) -> int:
    import av

    frames = 0
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            video = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        frames += video.shape[0]
    return frames


def loader_whole(root: Path) -> int:
    frames = 0
    for sample in anomalykit.load("ucf_crime", root):
        frames += sample.data.frames().shape[0]
    return frames


def limit_clips(clips: list[tuple[Path, int]], length: int) -> int:
    import av

    frames = 0
    for path, start in clips:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            ticks = 1 / (stream.average_rate * stream.time_base)
            first = stream.start_time or 0
            container.seek(first + int(start * ticks), stream=stream, backward=True)
            out = []
            for frame in container.decode(stream):
                index = round((frame.pts - first) / ticks)
                if index < start:
                    continue
                if index >= start + length:
                    break
                out.append(frame.to_ndarray(format="rgb24"))
            frames += np.stack(out).shape[0]
    return frames


def loader_clips(samples: dict[str, object], clips: list[tuple[str, int]], length: int) -> int:
    frames = 0
    for key, start in clips:
        frames += samples[key].data.frames(start, start + length).shape[0]  # type: ignore[attr-defined]
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--size", default="240x320", help="H x W")
    parser.add_argument("--gop", type=int, default=250)
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--clip-length", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    console = Console()
    console.print(f"codec: {'H.264 (libx264)' if h264_available() else 'MPEG-4'}; {args.frames} frames of "
                  f"{width}x{height} per video, keyframe every {args.gop}")

    with tempfile.TemporaryDirectory() as tmp, Progress(console=console, transient=True) as progress:
        root = Path(tmp) / "ucf"
        videos = make_tree(root, args.frames, (height, width), args.gop, progress)
        ds = anomalykit.load("ucf_crime", root)
        samples = {s.key: s for s in ds}
        rng = np.random.default_rng(args.seed)
        keys = sorted(samples)
        picks = [(keys[int(rng.integers(len(keys)))], int(rng.integers(0, args.frames - args.clip_length)))
                 for _ in range(args.clips)]
        loader_picks = picks
        limit_picks = [(Path(samples[k].data.path), s) for k, s in picks]  # type: ignore[attr-defined]

        benches = {
            "whole videos": (lambda: limit_whole(videos), lambda: loader_whole(root)),
            f"{args.clip_length}-frame clips": (
                lambda: limit_clips(limit_picks, args.clip_length),
                lambda: loader_clips(samples, loader_picks, args.clip_length),
            ),
        }
        results: dict[str, dict[str, tuple[float, int]]] = {}
        task = progress.add_task("timing", total=len(benches) * args.rounds * 2)
        for name, (limit, ours) in benches.items():
            limit(), ours()  # warm-up: file cache, codec initialisation
            best = {"limit": (float("inf"), 0), "anomalykit": (float("inf"), 0)}
            for round_index in range(args.rounds):
                order = [("limit", limit), ("anomalykit", ours)]
                for side, fn in order if round_index % 2 == 0 else order[::-1]:
                    start = time.perf_counter()
                    frames = fn()
                    elapsed = time.perf_counter() - start
                    if elapsed < best[side][0]:
                        best[side] = (elapsed, frames)
                    progress.advance(task)
            results[name] = best

    table = Table(title="frames/s (best of rounds)")
    for column in ("workload", "frames", "PyAV direct (limit)", "anomalykit loader", "ratio"):
        table.add_column(column, justify="right")
    for name, best in results.items():
        (t_limit, n_limit), (t_ours, n_ours) = best["limit"], best["anomalykit"]
        assert n_limit == n_ours, f"{name}: the two sides decoded {n_limit} and {n_ours} frames"
        fps_limit, fps_ours = n_limit / t_limit, n_ours / t_ours
        table.add_row(name, str(n_ours), f"{fps_limit:,.0f}", f"{fps_ours:,.0f}", f"{fps_ours / fps_limit:.3f}")
    console.print(table)


if __name__ == "__main__":
    main()
