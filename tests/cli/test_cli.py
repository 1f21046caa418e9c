import json

from typer.testing import CliRunner

from anomalykit.cli import app
from anomalykit.shards import read_shards
from anomalykit.testing import build

runner = CliRunner()


def test_datasets_list_and_info():
    result = runner.invoke(app, ["datasets", "list"])
    assert result.exit_code == 0
    for name in ("mvtec_ad", "visa", "swat", "fairgad"):
        assert name in result.stdout
    info = runner.invoke(app, ["datasets", "info", "visa"])
    assert info.exit_code == 0 and "CC BY 4.0" in info.stdout and "split_csv" in info.stdout
    unknown = runner.invoke(app, ["datasets", "info", "mvtecc"])
    assert unknown.exit_code == 1 and "mvtec_ad" in unknown.output


def test_verify_ok_and_failing(tmp_path):
    built = build("mvtec_ad", tmp_path / "m", categories={"toothbrush": ("defective",)},
                  n_train=60, n_test_good=12, n_defect=30, size=8)
    ok = runner.invoke(app, ["datasets", "verify", "mvtec_ad", "--root", str(built.root), "-o", "category=toothbrush"])
    assert ok.exit_code == 0, ok.output
    assert "ok" in ok.stdout
    (built.root / "toothbrush/test/good/011.png").unlink()
    bad = runner.invoke(app, ["datasets", "verify", "mvtec_ad", "--root", str(built.root), "-o", "category=toothbrush"])
    assert bad.exit_code == 1
    assert "toothbrush/test/good: 11 images, expected 12" in bad.stdout


def test_verify_missing_root_is_one_clear_line(tmp_path):
    result = runner.invoke(app, ["datasets", "verify", "visa", "--root", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "dataset root not found" in result.output and "spot-diff" in result.output


def test_convert_writes_shards_and_card(tmp_path):
    built = build("visa", tmp_path / "v")
    out = tmp_path / "out"
    result = runner.invoke(app, ["convert", "visa", "--root", str(built.root), "--out", str(out), "--category", "pcb1"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and sum(s["num_samples"] for s in manifest["shards"]) == 7
    assert (out / "README.md").read_text().startswith("---\nlicense: cc-by-4.0")
    assert {s.category for s in read_shards(out)} == {"pcb1"}


def test_demo_from_nothing(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "read back 36 samples" in result.stdout
    assert (tmp_path / "demo/shards/README.md").is_file()
