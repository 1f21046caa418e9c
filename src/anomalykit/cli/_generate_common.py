"""What the ``anomalykit generate`` commands print once a corpus is written."""

from __future__ import annotations

from pathlib import Path

from ..shards import ShardManifest
from ._common import out


def print_corpus_summary(manifest: ShardManifest, out_dir: Path, *, unit: str = "samples",
                         extra: tuple[Path, ...] = ()) -> None:
    """One line per split (count, shards, size), then the files written; ``extra`` files that
    were not written (a preview switched off) are not listed."""
    for split, info in sorted(manifest.splits().items()):
        out.print(f"{split}: {info['num_examples']} {unit} in {len(info['files'])} shard(s), "
                  f"{info['num_bytes'] / 1e6:.1f} MB", highlight=False, soft_wrap=True)
    out.print(f"wrote {out_dir / 'manifest.json'} and {out_dir / 'README.md'} (dataset card)", highlight=False,
              soft_wrap=True)
    written = [str(path) for path in extra if path.is_file()]
    if written:
        out.print(f"wrote {' and '.join(written)}", highlight=False, soft_wrap=True)
