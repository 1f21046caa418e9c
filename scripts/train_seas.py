#!/usr/bin/env python
"""Train SeaS for one product category and save the weights for the ``seas`` generator.

Stage 1 fine-tunes the U-Net and the token embeddings with the unbalanced abnormal prompt and
the denoising, normal-alignment and decoupled-anomaly-alignment losses; stage 2 trains the
refined mask prediction head. The output folder holds ``seas.json`` and ``seas.safetensors``
(the fine-tuned U-Net, token table and mask head); ``get_generator("seas", weights=OUT)`` loads
them back.

Examples::

    # all defect types of MVTec AD bottle: a third of each defect's test anomalies, 60 normals
    python scripts/train_seas.py --from mvtec_ad --root /data/mvtec --category bottle --out weights/seas-bottle

    # anomalies in AnoGen's support layout, normal images in a folder
    python scripts/train_seas.py --folder support/bottle --normal-folder bottle/train/good \\
        --category bottle --out weights/seas-bottle

Runs on the GPU when one is visible (float32 weights, bfloat16 autocast; add
--gradient-checkpointing for Stable Diffusion at 512^2 on smaller GPUs), else on the CPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="dataset", help="registered dataset name (e.g. mvtec_ad, visa)")
    source.add_argument("--folder", type=Path, help="anomaly folder: <defect>/ and <defect>_mask/")
    parser.add_argument("--root", type=Path, help="dataset root (with --from)")
    parser.add_argument("--normal-folder", type=Path, help="normal images (with --folder)")
    parser.add_argument("--category", required=True)
    parser.add_argument("--defect", action="append", help="restrict to these defect types (default: all)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="CompVis/stable-diffusion-v1-4", help="Hub id or local folder (SD 1.x)")
    parser.add_argument("--normal-count", type=int, default=60)
    parser.add_argument("--anomaly-fraction", type=float, default=None,
                        help="share of each defect's anomalies used (default 1/3 with --from, all with --folder)")
    parser.add_argument("--steps", type=int, default=None, help="stage-1 updates (default 800 x defect types)")
    parser.add_argument("--rmp-steps", type=int, default=None, help="mask-head updates (default 800 x defect types)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--gradient-accumulation", type=int, default=2)
    parser.add_argument("--unet-lr", type=float, default=4e-6)
    parser.add_argument("--token-lr", type=float, default=4e-5)
    parser.add_argument("--rmp-lr", type=float, default=5e-4)
    parser.add_argument("--rmp-hidden", type=int, default=192)
    parser.add_argument("--rmp-heads", type=int, default=8)
    parser.add_argument("--rmp-layers", type=int, default=4)
    parser.add_argument("--attention-region", choices=("full", "any"), default="full",
                        help="defect region of the alignment loss: mask == 1 (MVTec) or mask > 0 (VisA, MVTec 3D)")
    parser.add_argument("--no-augment", action="store_true", help="no rotation/flip (the reference's VisA setting)")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--save-dtype", choices=("float32", "float16"), default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--reproduce-reference-quirks", action="store_true")
    parser.add_argument("--preview", type=int, default=4,
                        help="write OUT/preview.png with this many samples on normal images (0: none)")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    import torch

    import anomalykit
    from anomalykit.errors import ConfigError
    from anomalykit.generators.image.seas import (
        SeaSData,
        SeaSTrainConfig,
        seas_data_from_dataset,
        seas_data_from_folder,
        train_seas,
    )

    if args.dataset and args.normal_folder is not None:
        raise ConfigError("--normal-folder: applies to --folder; with --from the normal images come from the dataset")
    if args.folder is not None and args.root is not None:
        raise ConfigError("--root: applies to --from (a dataset), not to --folder")
    if args.dataset:
        if args.root is None:
            raise ConfigError("--root is required with --from")
        dataset = anomalykit.load(args.dataset, args.root, category=args.category)
        fraction = args.anomaly_fraction if args.anomaly_fraction is not None else 1 / 3
        data = seas_data_from_dataset(dataset, normal_count=args.normal_count, anomaly_fraction=fraction)
    else:
        if args.normal_folder is None:
            raise ConfigError("--normal-folder is required with --folder")
        fraction = args.anomaly_fraction if args.anomaly_fraction is not None else 1.0
        data = seas_data_from_folder(args.folder, args.normal_folder, normal_count=args.normal_count,
                                     anomaly_fraction=fraction)
    if args.defect:
        unknown = sorted(set(args.defect) - set(data.defects))
        if unknown:
            raise ConfigError(f"--defect {', '.join(unknown)}: not found (have {', '.join(data.defects)})")
        data = SeaSData([a for a in data.anomalies if a[1] in args.defect], data.normals,
                        [d for d in data.defects if d in args.defect])
    config = SeaSTrainConfig(
        steps=args.steps, rmp_steps=args.rmp_steps, batch_size=args.batch_size,
        gradient_accumulation=args.gradient_accumulation, unet_lr=args.unet_lr, token_lr=args.token_lr,
        rmp_lr=args.rmp_lr, rmp_hidden=args.rmp_hidden, rmp_heads=args.rmp_heads, rmp_layers=args.rmp_layers,
        attention_region=args.attention_region, augment=not args.no_augment,
        gradient_checkpointing=args.gradient_checkpointing, seed=args.seed,
        reproduce_reference_quirks=args.reproduce_reference_quirks)
    weights = train_seas(data, model=args.model, category=args.category, config=config, device=args.device,
                         progress=not args.no_progress)
    out = weights.save(args.out, dtype=torch.float16 if args.save_dtype == "float16" else torch.float32)
    print(f"{args.category}: {len(data.anomalies)} anomalies of {len(data.defects)} defect type(s), "
          f"{len(data.normals)} normal images; final loss {weights.train['final_loss']}, "
          f"mask-head loss {weights.train['final_rmp_loss']}")
    print(f"saved {out}")
    if args.preview:
        from anomalykit.generators.image._diffusion import write_preview
        from anomalykit.schema import Image, Sample

        generator = anomalykit.get_generator("seas", weights=str(out), device=args.device)
        sources = [Sample(key=f"normal/{i}", dataset="preview", split="train", label=0, data=Image(pixels))
                   for i, pixels in enumerate(data.normals[:args.preview])]
        samples = [generator(source, seed=args.seed + i) for i, source in enumerate(sources)]
        preview = write_preview(out / "preview.png", [s.data.pixels for s in sources], samples,
                                f"SeaS {args.category}: predicted masks in red")
        print(f"wrote {preview}")
    return out


if __name__ == "__main__":
    from anomalykit.errors import AnomalyKitError

    try:
        main()
    except AnomalyKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
