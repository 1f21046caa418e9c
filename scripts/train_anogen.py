#!/usr/bin/env python
"""Train AnoGen anomaly embeddings (stage 1) and save them for the ``anogen`` generator.

One token is learned per defect type from K real anomalies and their masks, on a frozen LDM
text-to-image or Stable Diffusion 1.x checkpoint. The output folder holds ``anogen.json`` and
``embeddings.safetensors``; ``get_generator("anogen", weights=OUT)`` loads them back.

Examples::

    # K = 3 anomalies of MVTec AD bottle/broken_large, drawn with a fixed seed
    python scripts/train_anogen.py --from mvtec_ad --root /data/mvtec --category bottle \\
        --defect broken_large --defect contamination --out weights/anogen-bottle

    # AnoGen's support layout: ROOT/<defect>/NNN.png + ROOT/<defect>_mask/NNN_mask.png
    python scripts/train_anogen.py --folder support/bottle --category bottle --defect broken_large \\
        --out weights/anogen-bottle --model CompVis/ldm-text2im-large-256

Runs on the GPU when one is visible (float32 weights, bfloat16 autocast), else on the CPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="dataset", help="registered dataset name (e.g. mvtec_ad, visa)")
    source.add_argument("--folder", type=Path, help="support folder: <defect>/ and <defect>_mask/")
    parser.add_argument("--root", type=Path, help="dataset root (with --from)")
    parser.add_argument("--category", required=True, help="product category (e.g. bottle)")
    parser.add_argument("--defect", action="append", required=True, help="defect type; repeat for several")
    parser.add_argument("--out", type=Path, required=True, help="output folder of the learned weights")
    parser.add_argument("--model", default="CompVis/ldm-text2im-large-256",
                        help="Hub id or local folder of the base model (LDM text2im or SD 1.x)")
    parser.add_argument("--k-shot", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6100)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.02, help="learning rate (reference: 5e-3 x batch 4)")
    parser.add_argument("--init-word", default="defect")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--preview", type=int, default=4,
                        help="write OUT/preview.png with this many samples on normal images (--from only; 0: none)")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    import anomalykit
    from anomalykit.errors import ConfigError
    from anomalykit.generators.image.anogen import (
        AnoGenTrainConfig,
        support_from_dataset,
        support_from_folder,
        train_anogen,
    )

    config = AnoGenTrainConfig(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                               k_shot=args.k_shot, init_word=args.init_word, seed=args.seed)
    if args.folder is not None and args.root is not None:
        raise ConfigError("--root: applies to --from (a dataset), not to --folder")
    supports = {}
    if args.dataset:
        if args.root is None:
            raise ConfigError("--root is required with --from")
        dataset = anomalykit.load(args.dataset, args.root, category=args.category)
        for defect in args.defect:
            supports[defect] = support_from_dataset(dataset, defect, k_shot=args.k_shot, seed=args.seed)
    else:
        for defect in args.defect:
            supports[defect] = support_from_folder(args.folder, defect)
    weights = train_anogen(args.model, supports, category=args.category, config=config, device=args.device,
                           progress=not args.no_progress)
    out = weights.save(args.out)
    for emb in weights.embeddings:
        print(f"{emb.key}: token {emb.token}, final loss {emb.train['final_loss']:.5f}")
    print(f"saved {out}")
    if args.preview and args.dataset:
        from anomalykit.generators.image._diffusion import write_preview

        normals = dataset.filter(split="train", label=0)
        sources = [normals[i] for i in range(min(args.preview, len(normals)))]
        generator = anomalykit.get_generator("anogen", weights=str(out), device=args.device)
        samples = [generator(source, seed=args.seed + i) for i, source in enumerate(sources)]
        preview = write_preview(out / "preview.png", [s.data.pixels for s in sources], samples,
                                f"AnoGen {args.category}: boxes (weak labels) in red")
        print(f"wrote {preview}")
    return out


if __name__ == "__main__":
    from anomalykit.errors import AnomalyKitError

    try:
        main()
    except AnomalyKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
