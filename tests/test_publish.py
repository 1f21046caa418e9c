import json

import pytest
from typer.testing import CliRunner

import anomalykit
from anomalykit.cli import app
from anomalykit.errors import ConfigError, ShardError
from anomalykit.publish import plan_publish, publish
from anomalykit.testing import build


class RecordingApi:
    """Stands in for huggingface_hub.HfApi: records calls, never touches the network."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/datasets/{repo_id}"

    def update_repo_settings(self, repo_id, **kwargs):
        self.calls.append(("update_repo_settings", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))


@pytest.fixture
def visa_shards(tmp_path):
    ds = anomalykit.load("visa", build("visa", tmp_path / "v").root)
    ds.write_shards(tmp_path / "out")
    return tmp_path / "out"


@pytest.fixture
def mvtec_shards(tmp_path):
    ds = anomalykit.load("mvtec_ad", build("mvtec_ad", tmp_path / "m").root)
    ds.write_shards(tmp_path / "mout")
    return tmp_path / "mout"


def test_allowed_licence_publishes_publicly(visa_shards):
    api = RecordingApi()
    url = publish(visa_shards, "me/visa", api=api)
    assert url == "https://huggingface.co/datasets/me/visa"
    names = [c[0] for c in api.calls]
    assert names == ["create_repo", "upload_folder"]
    assert api.calls[0][2]["repo_type"] == "dataset" and api.calls[0][2]["private"] is False
    upload = api.calls[1][2]
    assert upload["folder_path"] == str(visa_shards) and "data/*.tar" in upload["allow_patterns"]
    assert json.loads((visa_shards / "manifest.json").read_text())["redistribution"] == "allowed"


def test_restricted_licence_needs_private_or_gated(mvtec_shards):
    with pytest.raises(ConfigError, match="restricts redistribution.*--gated"):
        publish(mvtec_shards, "me/mvtec", api=RecordingApi())
    api = RecordingApi()
    publish(mvtec_shards, "me/mvtec", gated=True, api=api)
    assert ("update_repo_settings", "me/mvtec", {"repo_type": "dataset", "gated": "manual"}) in api.calls


def test_forbidden_licence_only_private(mvtec_shards):
    manifest = json.loads((mvtec_shards / "manifest.json").read_text())
    manifest["redistribution"] = "forbidden"
    (mvtec_shards / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="forbids redistribution"):
        plan_publish(mvtec_shards, "me/x", gated=True)
    assert plan_publish(mvtec_shards, "me/x", private=True).redistribution == "forbidden"


def test_corrupt_or_incomplete_folders_are_refused(visa_shards):
    with pytest.raises(ConfigError, match="owner/name"):
        plan_publish(visa_shards, "visa")
    shard = next((visa_shards / "data").glob("*.tar"))
    shard.write_bytes(shard.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ShardError, match="SHA-256"):
        publish(visa_shards, "me/visa", api=RecordingApi())


def test_cli_dry_run_lists_the_files(visa_shards):
    result = CliRunner().invoke(app, ["publish", str(visa_shards), "--repo-id", "me/visa", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "README.md" in result.stdout and "data/test-00000.tar" in result.stdout and "allowed" in result.stdout
