"""Video decoding: frames/s through the ``ucf_crime`` loader against PyAV decoding the same files.

Builds a UCF-Crime-layout tree (the testing builder's layout and split files) whose MP4 files
are replaced by longer H.264 videos (default 320 x 240, 30 fps, 600 frames, keyframe every 250
frames as x264's default), then times, in the same run and on the same files:

* whole videos. limit: PyAV opening each file, decoding every frame and converting it to an
  RGB array (threads on), stacked into T x H x W x 3; anomalykit: iterating
  ``anomalykit.load("ucf_crime", root)`` and calling ``sample.data.frames()``.
* consecutive clips (sliding over every video, as snippet scoring does). limit: one PyAV pass
  per video, stacking every n frames; anomalykit: ``sample.data.frames(s, s + n)`` for
  s = 0, n, 2n, ... (the open decoder is reused from one clip to the next).
* random clips. limit: PyAV opening the file, seeking to the keyframe before the clip, decoding
  up to the clip's end and converting the clip's frames; anomalykit: ``sample.data.frames(s, s + n)``.
  The same seeded list of clip starts is used by both.

Items (videos or clips) are timed in pairs, alternating which side goes first, after a warm-up;
the totals over all rounds count. Prints frames/s of each (wall clock, and per CPU-second of
this process, which a busy shared machine disturbs less), the ratios anomalykit / limit of
the totals, and the median over items of the paired ratio (robust to bursts of load from other
processes). Target: at least 0.90.

    python benchmarks/bench_video.py [--frames 600] [--size 240x320] [--gop 250] [--clips 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

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


def limit_whole(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        video = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    return video.shape[0]


def loader_whole(ds: anomalykit.AnomalyDataset, index: int) -> int:
    return ds[index].data.frames().shape[0]


def limit_consecutive_clips(path: Path, length: int) -> int:
    import av

    frames = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        clip: list[np.ndarray] = []
        for frame in container.decode(stream):
            clip.append(frame.to_ndarray(format="rgb24"))
            if len(clip) == length:
                frames += np.stack(clip).shape[0]
                clip = []
    return frames


def loader_consecutive_clips(ds: anomalykit.AnomalyDataset, index: int, length: int) -> int:
    sample = ds[index]
    frames = 0
    for start in range(0, sample.data.length - length + 1, length):
        frames += sample.data.frames(start, start + length).shape[0]
    return frames


def limit_clip(path: Path, start: int, length: int) -> int:
    import av

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
    return np.stack(out).shape[0]


def loader_clip(sample: anomalykit.Sample, start: int, length: int) -> int:
    return sample.data.frames(start, start + length).shape[0]  # type: ignore[attr-defined]


Pair = tuple[Callable[[], int], Callable[[], int]]


def time_pairs(pairs: list[Pair], rounds: int, progress: Progress, task) -> dict[str, Any]:
    """Time each (limit, anomalykit) pair item by item, alternating which side goes first, so
    that load changes on the machine hit both sides alike. Returns per side the total wall
    seconds, CPU seconds (all threads of this process) and frames, plus the per-item wall-time
    ratios limit / anomalykit."""
    for limit, ours in pairs[:2]:  # warm-up: file cache, codec initialisation
        limit(), ours()
    totals = {"limit": [0.0, 0.0, 0], "anomalykit": [0.0, 0.0, 0]}
    ratios: list[float] = []
    for round_index in range(rounds):
        for item, (limit, ours) in enumerate(pairs):
            order = [("limit", limit), ("anomalykit", ours)]
            wall_of = {}
            for side, fn in order if (round_index + item) % 2 == 0 else order[::-1]:
                wall, cpu = time.perf_counter(), time.process_time()
                frames = fn()
                wall_of[side] = time.perf_counter() - wall
                totals[side][0] += wall_of[side]
                totals[side][1] += time.process_time() - cpu
                totals[side][2] += frames
            ratios.append(wall_of["limit"] / wall_of["anomalykit"])
        progress.advance(task)
    return {**{side: (wall, cpu, int(n)) for side, (wall, cpu, n) in totals.items()}, "ratios": ratios}


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
    console = Console(width=140)
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
        index_of = {Path(s.data.path): i for i, s in enumerate(ds)}  # type: ignore[attr-defined]
        n = args.clip_length
        benches: dict[str, list[Pair]] = {
            "whole videos": [
                (partial(limit_whole, path), partial(loader_whole, ds, index_of[path])) for path in videos
            ],
            f"consecutive {n}-frame clips": [
                (partial(limit_consecutive_clips, path, n), partial(loader_consecutive_clips, ds, index_of[path], n))
                for path in videos
            ],
            f"random {n}-frame clips": [
                (partial(limit_clip, Path(samples[key].data.path), start, n), partial(loader_clip, samples[key], start, n))
                for key, start in picks
            ],
        }
        results: dict[str, dict[str, Any]] = {}
        task = progress.add_task("timing", total=len(benches) * args.rounds)
        for name, pairs in benches.items():
            results[name] = time_pairs(pairs, args.rounds, progress, task)

    table = Table(title=f"frames/s over {args.rounds} rounds (wall clock; per CPU-second in brackets)")
    for column in ("workload", "frames", "PyAV direct (limit)", "anomalykit loader", "ratio", "CPU ratio",
                   "median paired ratio"):
        table.add_column(column, justify="right")
    for name, result in results.items():
        (wall_limit, cpu_limit, n_limit), (wall_ours, cpu_ours, n_ours) = result["limit"], result["anomalykit"]
        assert n_limit == n_ours, f"{name}: the two sides decoded {n_limit} and {n_ours} frames"
        table.add_row(
            name,
            str(n_ours),
            f"{n_limit / wall_limit:,.0f} ({n_limit / cpu_limit:,.0f})",
            f"{n_ours / wall_ours:,.0f} ({n_ours / cpu_ours:,.0f})",
            f"{wall_limit / wall_ours:.3f}",
            f"{cpu_limit / cpu_ours:.3f}",
            f"{float(np.median(result['ratios'])):.3f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
