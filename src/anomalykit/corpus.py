"""Corpus generation: run any registered generator over sources (or from nothing), in worker
processes, into resumable shards with a dataset card.

The output does not depend on the number of workers: every task has a fixed key and a seed
derived from (corpus seed, task index), tasks are mapped in order, and the main process writes
the results in task order. An interrupted run resumes: tasks whose keys are already in complete
shards are not generated again.

>>> from anomalykit.corpus import generate_corpus                       # doctest: +SKIP
>>> generate_corpus(get_generator("perlin"), dataset.filter(split="train", label=0),
...                 out_dir="out", per_source=4, seed=0, workers=2)       # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .generators.base import Generator, derive_seed
from .schema import Sample
from .shards import DEFAULT_MAX_BYTES, MANIFEST_NAME, ShardManifest, ShardWriter, _progress

#: the settings of a corpus run, checked when a run resumes in the same folder
SETTINGS_NAME = "generation.json"


@dataclass(frozen=True)
class Task:
    index: int
    key: str
    source_index: int | None
    seed: int


def plan_tasks(
    generator_name: str,
    source_keys: Sequence[str] | None,
    *,
    per_source: int = 1,
    num_samples: int | None = None,
    seed: int = 0,
) -> list[Task]:
    """The fixed list of tasks of a corpus: ``per_source`` per source, or ``num_samples`` from nothing."""
    if per_source < 1:
        raise ConfigError(f"per_source must be >= 1, got {per_source}")
    tasks: list[Task] = []
    if source_keys is None:
        if num_samples is None or num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1 when there are no sources, got {num_samples}")
        for i in range(num_samples):
            tasks.append(Task(i, f"{generator_name}/{i:08d}", None, derive_seed(seed, generator_name, str(i))))
        return tasks
    for s, source_key in enumerate(source_keys):
        for r in range(per_source):
            i = len(tasks)
            tasks.append(Task(i, f"{generator_name}/{source_key}/{r:03d}", s, derive_seed(seed, generator_name, str(i))))
    return tasks


# Worker state, set once per process by the pool initializer (avoids pickling per task).
_WORKER: dict[str, Any] = {}


def _init_worker(generator: Generator, sources: Any, split: str | None) -> None:
    _WORKER.update(generator=generator, sources=sources, split=split)


def _run_task(task: Task) -> Sample:
    generator: Generator = _WORKER["generator"]
    sources = _WORKER["sources"]
    try:
        source = sources[task.source_index] if task.source_index is not None else None
        sample = generator(source, seed=task.seed % (2**63))
    except Exception as exc:
        exc.add_note(f"while generating corpus sample {task.key}")  # kept across process boundaries
        raise
    sample.key = task.key
    if _WORKER["split"] is not None:
        sample.split = _WORKER["split"]
    return sample


def _results(tasks: list[Task], workers: int, generator: Generator, sources: Any, split: str | None) -> Iterator[Sample]:
    if workers <= 1 or len(tasks) <= 1:
        _init_worker(generator, sources, split)
        for task in tasks:
            yield _run_task(task)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn" if os.name == "nt" else "forkserver")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(generator, sources, split)) as pool:
        yield from pool.map(_run_task, tasks, chunksize=max(1, min(16, len(tasks) // (workers * 4) or 1)))


def generate_corpus(
    generator: Generator,
    sources: Sequence[Sample] | None = None,
    *,
    out_dir: str | Path,
    per_source: int = 1,
    num_samples: int | None = None,
    seed: int = 0,
    workers: int = 1,
    split: str | None = "train",
    card: dict[str, Any] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: bool = False,
    on_sample: Callable[[Sample], None] | None = None,
) -> ShardManifest:
    """Generate a corpus into ``out_dir`` (shards, manifest, README card).

    ``sources`` is any sequence of samples (an ``AnomalyDataset`` decodes lazily, in the
    workers); ``per_source`` outputs are made from each. Without sources, ``num_samples``
    outputs are generated from nothing (series generators). ``on_sample`` sees each sample as
    it is written (for previews).
    """
    from .cards import render_card

    source_keys = None
    if sources is not None:
        manifest = getattr(sources, "manifest", None)
        source_keys = manifest.column("key").to_pylist() if manifest is not None else [s.key for s in sources]
    tasks = plan_tasks(generator.name, source_keys, per_source=per_source, num_samples=num_samples, seed=seed)
    dataset_name = f"{generator.name}-corpus"
    writer = ShardWriter(out_dir, dataset=dataset_name, modality=generator.modality, max_bytes=max_bytes)
    todo = [t for t in tasks if t.key not in writer.done_keys]
    description = f"{generator.name}: {len(todo)} samples" + (f" ({len(tasks) - len(todo)} done before)" if len(todo) < len(tasks) else "")
    with writer, _progress(progress, len(todo), description) as advance:
        for sample in _results(todo, workers, generator, sources, split):
            writer.write(sample)
            if on_sample is not None:
                on_sample(sample)
            advance()
    result = writer.manifest
    card = card if card is not None else corpus_card(generator, sources, seed=seed, per_source=per_source)
    if result.modality:
        readme = render_card(card, result.splits(), result.features())
        (Path(out_dir) / "README.md").write_text(readme, encoding="utf-8")
        result.redistribution = card["redistribution"]
        result.save(Path(out_dir))
    return result


def corpus_card(generator: Generator, sources: Any, *, seed: int, per_source: int) -> dict[str, Any]:
    """A card for a generated corpus; it inherits the licence of the source dataset when known."""
    import json

    from .cards import load_card

    source_name = getattr(sources, "name", None)
    source_card = load_card(source_name) if source_name else {}
    parameters = json.dumps(generator.config.to_dict(), sort_keys=True)
    description = (
        f"Synthetic anomalies made by anomalykit's `{generator.name}` generator (version {generator.version}), "
        f"seed {seed}, parameters `{parameters}`"
        + (f", {per_source} per source sample of `{source_name}`." if source_name else ".")
        + " Every sample carries its provenance (generator, parameters, seed, source key) and a dense target."
    )
    card = {
        "name": f"{generator.name}-corpus",
        "pretty_name": f"{generator.name} synthetic anomalies" + (f" from {source_card.get('pretty_name', source_name)}" if source_name else ""),
        "modality": generator.modality.value,
        "homepage": source_card.get("homepage", "https://github.com/anomalykit/anomalykit"),
        "license": source_card.get("license", "apache-2.0"),
        "license_name": source_card.get("license_name", "Apache-2.0"),
        "redistribution": source_card.get("redistribution", "allowed"),
        "redistribution_note": source_card.get("redistribution_note", "Generated data; redistribution allowed."),
        "citation": source_card.get("citation", "@misc{anomalykit, title={anomalykit}}\n"),
        "task_categories": source_card.get("task_categories", ["other"]),
        "tags": ["synthetic", generator.name],
        "description": description,
        "layout": source_card.get("layout", ""),
    }
    return card


def _holds_samples(out_dir: Path) -> bool:
    if not (out_dir / MANIFEST_NAME).is_file():
        return False
    return ShardManifest.load(out_dir).num_samples > 0


def run_settings(generator: Generator, **details: Any) -> dict[str, Any]:
    """The settings that decide a corpus's bytes: the generator, its version and parameters, and
    the pipeline's own (source, counts, seed)."""
    return {"method": generator.name, "generator_version": generator.version,
            "parameters": generator.config.to_dict(), **details}


def record_settings(out_dir: str | Path, settings: dict[str, Any]) -> None:
    """Record the settings of a run in ``generation.json``; refuse to add to a corpus made with
    other settings (a folder whose earlier run stopped before writing any sample takes the new
    settings). ``settings`` must be JSON-ready."""
    out_dir = Path(out_dir)
    # as they are read back: tuples as lists, paths (a loader's cache_dir) as strings
    settings = json.loads(json.dumps(settings, sort_keys=True, default=str))
    path = out_dir / SETTINGS_NAME
    if path.is_file() and _holds_samples(out_dir):
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"{path}: unreadable settings of an earlier run ({exc}); remove it or choose another --out")
        differing = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
        if differing:
            details = "; ".join(f"{k}: {before.get(k)!r} before, {settings.get(k)!r} now" for k in differing)
            raise ConfigError(f"{out_dir} holds a corpus made with other settings ({details}); resume with the same "
                              f"settings or choose another output folder")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
