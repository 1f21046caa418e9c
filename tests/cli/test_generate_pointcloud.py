"""``anomalykit generate pointcloud``: shards, card and previews from meshes or a dataset."""

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from anomalykit import read_shards
from anomalykit.cli import app
from anomalykit.testing import build

runner = CliRunner()


def mesh_folder(root):
    root.mkdir()
    trimesh.creation.icosphere(subdivisions=2).export(root / "ball.obj")
    trimesh.creation.box().export(root / "box.stl")
    return root


def test_meshes_to_shards_card_and_previews(tmp_path):
    meshes = mesh_folder(tmp_path / "meshes")
    args = ["generate", "pointcloud", "defects3d", "--meshes", str(meshes), "--per-source", "2", "--seed", "5",
            "-o", "families=hole,bulge", "-o", "mesh_points=2000", "-o", "mesh_max_edge=0.05", "-o", "radius_low=0.2",
            "-o", "radius_high=0.3"]
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    out = tmp_path / "a"
    assert (out / "manifest.json").is_file() and (out / "previews.png").stat().st_size > 1000
    card = (out / "README.md").read_text()
    assert "defects3d" in card and "synthetic" in card
    samples = list(read_shards(out))
    assert len(samples) == 4 and {s.defect for s in samples} <= {"hole", "bulge"}
    for sample in samples:
        assert sample.label == 1 and sample.target.sum() > 0 and sample.provenance["generator"] == "defects3d"
        assert sample.data.displacement.shape == (2000, 3)
        assert not np.any(sample.data.displacement[sample.target == 0])
    second = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--workers", "2"])
    assert second.exit_code == 0, second.output
    tars = sorted(p.relative_to(out) for p in out.glob("data/*.tar"))
    assert tars and all((out / t).read_bytes() == (tmp_path / "b" / t).read_bytes() for t in tars)


def test_from_a_registered_dataset(tmp_path):
    built = build("real3d_ad", tmp_path / "real3d")
    result = runner.invoke(app, ["generate", "pointcloud", "patchgen", "--from", "real3d_ad", "--root", str(built.root),
                                 "--out", str(tmp_path / "out"), "--limit", "2", "--previews", "2"])
    assert result.exit_code == 0, result.output
    samples = list(read_shards(tmp_path / "out"))
    assert len(samples) == 2 and all(s.split == "train" and s.meta["removed_count"] == 0 for s in samples)
    assert all(s.provenance["source_dataset"] == "real3d_ad" for s in samples)
    assert (tmp_path / "out" / "previews.png").is_file()


def test_clear_errors(tmp_path):
    meshes = mesh_folder(tmp_path / "meshes")
    both = runner.invoke(app, ["generate", "pointcloud", "patchgen", "--meshes", str(meshes), "--from", "real3d_ad",
                               "--root", str(tmp_path), "--out", str(tmp_path / "o")])
    assert both.exit_code == 1 and "exactly one source" in both.output
    root_with_meshes = runner.invoke(app, ["generate", "pointcloud", "patchgen", "--meshes", str(meshes), "--root",
                                           str(tmp_path), "--out", str(tmp_path / "o")])
    assert root_with_meshes.exit_code == 1 and "not to --meshes" in root_with_meshes.output
    unknown = runner.invoke(app, ["generate", "pointcloud", "nosuch", "--meshes", str(meshes),
                                  "--out", str(tmp_path / "o")])
    assert unknown.exit_code == 1 and "nosuch" in unknown.output
    bad = runner.invoke(app, ["generate", "pointcloud", "dagen", "--meshes", str(meshes), "--out", str(tmp_path / "o"),
                              "-o", "parts=1"])
    assert bad.exit_code == 1 and "parts" in bad.output


def test_summary_lists_only_files_written_by_the_run(tmp_path):
    built = build("real3d_ad", tmp_path / "real3d")
    args = ["generate", "pointcloud", "patchgen", "--from", "real3d_ad", "--root", str(built.root),
            "--out", str(tmp_path / "out"), "--limit", "1"]
    first = runner.invoke(app, [*args, "--previews", "1"])
    assert first.exit_code == 0, first.output
    assert "train: 1 samples in 1 shard(s)" in first.stdout and "previews.png" in first.stdout
    without = runner.invoke(app, [*args, "--previews", "0"])
    assert without.exit_code == 0, without.output
    assert "manifest.json" in without.stdout and "previews.png" not in without.stdout
    negative = runner.invoke(app, [*args, "--previews", "-1"])
    assert negative.exit_code == 1 and "previews must be >= 0" in negative.output


def test_script_is_the_same_command(tmp_path, monkeypatch):
    built = build("real3d_ad", tmp_path / "real3d")
    script = Path(__file__).resolve().parents[2] / "scripts" / "generate_pointclouds.py"
    args = ["patchgen", "--from", "real3d_ad", "--root", str(built.root), "--limit", "2", "--previews", "0",
            "--seed", "4"]
    monkeypatch.setattr(sys, "argv", [str(script), *args, "--out", str(tmp_path / "s")])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_info.value.code in (0, None)
    assert runner.invoke(app, ["generate", "pointcloud", *args, "--out", str(tmp_path / "c")]).exit_code == 0
    tars = sorted(p.name for p in (tmp_path / "c" / "data").glob("*.tar"))
    assert tars and all((tmp_path / "s" / "data" / t).read_bytes() == (tmp_path / "c" / "data" / t).read_bytes()
                        for t in tars)
