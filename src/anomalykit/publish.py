"""Publish a shard folder (shards, manifest, card, previews) as a Hugging Face Hub dataset repo.

The source licence decides where a folder may go (``manifest.redistribution``, taken from the
card when the shards were written): ``allowed`` anywhere; ``restricted`` only to a private or
gated repository; ``forbidden`` only to a private one. Every shard's checksum is verified before
anything is uploaded.

>>> from anomalykit.publish import publish                                  # doctest: +SKIP
>>> publish("shards/visa", "me/visa-shards")                                # doctest: +SKIP
'https://huggingface.co/datasets/me/visa-shards'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, ShardError
from .shards import ShardManifest, verify_shard

#: what is uploaded from a shard folder (settings files and caches stay local)
UPLOAD_PATTERNS = ["README.md", "manifest.json", "data/*.tar", "*.png", "*.csv"]


@dataclass
class PublishPlan:
    """What ``publish`` will do, checked before any network call."""

    repo_id: str
    folder: Path
    files: list[str]
    num_bytes: int
    private: bool
    gated: bool
    redistribution: str
    notes: list[str] = field(default_factory=list)


def plan_publish(folder: str | Path, repo_id: str, *, private: bool = False, gated: bool = False,
                 verify: bool = True) -> PublishPlan:
    """Check a shard folder and the licence terms; list the files to upload."""
    folder = Path(folder)
    if "/" not in repo_id or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ConfigError(f"repo_id must look like 'owner/name', got {repo_id!r}")
    manifest = ShardManifest.load(folder)
    if not manifest.complete:
        raise ShardError(f"{folder}: the shard set is incomplete (an interrupted run); run the same command again first")
    if not (folder / "README.md").is_file():
        raise ShardError(f"{folder}: no README.md dataset card; write the shards with a card first")
    for info in manifest.shards:
        path = folder / info.name
        if not path.is_file():
            raise ShardError(f"{path}: listed in the manifest but missing")
        if verify:
            verify_shard(path, info)
    terms = manifest.redistribution or "restricted"
    notes = []
    if manifest.redistribution is None:
        notes.append("the manifest records no licence terms; treated as restricted")
    if terms == "forbidden" and not private:
        raise ConfigError(
            f"{manifest.dataset}: its licence forbids redistribution; publish only to a private repository "
            f"(--private), for your own use"
        )
    if terms == "restricted" and not (private or gated):
        raise ConfigError(
            f"{manifest.dataset}: its licence restricts redistribution; publish to a private (--private) or "
            f"gated (--gated) repository"
        )
    files = sorted({p.relative_to(folder).as_posix() for pattern in UPLOAD_PATTERNS for p in folder.glob(pattern)})
    size = sum((folder / f).stat().st_size for f in files)
    return PublishPlan(repo_id, folder, files, size, private, gated, terms, notes)


def publish(folder: str | Path, repo_id: str, *, private: bool = False, gated: bool = False,
            token: str | None = None, commit_message: str | None = None, api: Any = None) -> str:
    """Create (or reuse) the dataset repo and upload the folder; returns the repo URL.

    ``api`` defaults to ``huggingface_hub.HfApi(token=token)``.
    """
    plan = plan_publish(folder, repo_id, private=private, gated=gated)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if gated:
        api.update_repo_settings(repo_id, repo_type="dataset", gated="manual")
    api.upload_folder(
        repo_id=repo_id,
        folder_path=str(plan.folder),
        repo_type="dataset",
        allow_patterns=UPLOAD_PATTERNS,
        commit_message=commit_message or f"Upload {len(plan.files)} files written by anomalykit",
    )
    return str(url)
