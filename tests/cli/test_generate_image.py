"""``anomalykit generate image`` and ``scripts/generate_images.py`` end to end on a tiny MVTec AD tree."""

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from anomalykit.cli import app
from anomalykit.shards import read_shards
from anomalykit.testing import build

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def test_generate_image_end_to_end_and_resume(tmp_path):
    built = build("mvtec_ad", tmp_path / "mvtec", categories={"bottle": ("broken_large",), "grid": ("bent",)},
                  n_train=2, n_test_good=1, n_defect=1, size=48)
    out = tmp_path / "out"
    args = ["generate", "image", "cutpaste", "--from", "mvtec_ad", "--root", str(built.root), "--out", str(out),
            "--per-image", "2", "--seed", "5", "--contact-sheet", "3", "-o", "aspect_sampling=log_uniform"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "8 samples generated; 8 in total" in result.stdout
    assert "contact_sheet.png" in result.stdout
    samples = list(read_shards(out))
    assert len(samples) == 2 * 2 * 2
    assert {s.provenance["source_key"] for s in samples} == {
        "bottle/train/good/000.png", "bottle/train/good/001.png", "grid/train/good/000.png", "grid/train/good/001.png"}
    for sample in samples:
        assert sample.label == 1 and sample.defect == "cutpaste" and sample.target.any()
        assert sample.provenance["parameters"]["aspect_sampling"] == "log_uniform"
        assert sample.data.pixels.shape == (48, 48, 3)
    assert (out / "contact_sheet.png").is_file() and (out / "README.md").is_file()

    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "0 samples generated (8 found done from an earlier run); 8 in total" in again.stdout

    category = runner.invoke(app, ["generate", "image", "perlin", "--from", "mvtec_ad", "--root", str(built.root),
                                   "--out", str(tmp_path / "grid"), "--category", "grid", "--contact-sheet", "0"])
    assert category.exit_code == 0, category.output
    assert {s.category for s in read_shards(tmp_path / "grid")} == {"grid"}


def test_errors_are_one_clear_line(tmp_path):
    built = build("mvtec_ad", tmp_path / "mvtec", categories={"bottle": ("broken_large",)}, n_train=1, size=16)
    base = ["--from", "mvtec_ad", "--root", str(built.root), "--out", str(tmp_path / "o")]
    unknown_option = runner.invoke(app, ["generate", "image", "perlin", *base, "-o", "sigma=2"])
    assert unknown_option.exit_code == 1 and "unknown key(s) sigma" in unknown_option.output
    assert "Traceback" not in unknown_option.output
    too_small = runner.invoke(app, ["generate", "image", "cutpaste_scar", *base, "--contact-sheet", "0"])
    assert too_small.exit_code == 1
    assert "bottle/train/good/000.png" in too_small.output and "scar_width_high" in too_small.output
    empty = tmp_path / "empty_textures"
    empty.mkdir()
    no_textures = runner.invoke(app, ["generate", "image", "perlin", *base, "-o", f"texture_dir={empty}"])
    assert no_textures.exit_code == 1 and "holds no images" in no_textures.output
    missing_root = runner.invoke(app, ["generate", "image", "perlin", "--from", "mvtec_ad", "--root",
                                       str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2")])
    assert missing_root.exit_code == 1 and "not found" in missing_root.output


def test_script_runs_the_same_command(tmp_path, monkeypatch):
    built = build("mvtec_ad", tmp_path / "mvtec", categories={"bottle": ("broken_large",)}, n_train=2, size=32)
    out = tmp_path / "out"
    argv = [str(REPO / "scripts" / "generate_images.py"), "perlin", "--from", "mvtec_ad", "--root", str(built.root),
            "--out", str(out), "--contact-sheet", "0", "--seed", "9"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(argv[0], run_name="__main__")
    assert exit_info.value.code in (0, None)
    samples = {s.key: s for s in read_shards(out)}
    assert len(samples) == 2
    result = runner.invoke(app, ["generate", "image", "perlin", "--from", "mvtec_ad", "--root", str(built.root),
                                 "--out", str(tmp_path / "same"), "--contact-sheet", "0", "--seed", "9"])
    assert result.exit_code == 0, result.output
    for sample in read_shards(tmp_path / "same"):
        np.testing.assert_array_equal(sample.data.pixels, samples[sample.key].data.pixels)
