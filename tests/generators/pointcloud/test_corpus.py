"""The point-cloud corpus pipeline: settings pinned per folder, previews read back from the shards."""

import pytest

from anomalykit.errors import ConfigError
from anomalykit.generators.pointcloud.corpus import PREVIEW_NAME, generate_pointcloud_corpus
from anomalykit.shards import read_shards
from anomalykit.testing import build


@pytest.fixture(scope="module")
def real3d(tmp_path_factory):
    return build("real3d_ad", tmp_path_factory.mktemp("real3d"))


def run(real3d, out, **kwargs):
    return generate_pointcloud_corpus("patchgen", out_dir=out, dataset="real3d_ad", root=real3d.root, limit=2,
                                      **kwargs)


def test_other_settings_in_the_same_folder_are_refused(real3d, tmp_path):
    run(real3d, tmp_path / "o", seed=1, previews=0)
    before = {s.key: s.data.points.tobytes() for s in read_shards(tmp_path / "o")}
    with pytest.raises(ConfigError, match="seed: 1 before, 2 now"):
        run(real3d, tmp_path / "o", seed=2, previews=0)
    with pytest.raises(ConfigError, match="per_source: 1 before, 2 now"):
        run(real3d, tmp_path / "o", seed=1, per_source=2, previews=0)
    assert {s.key: s.data.points.tobytes() for s in read_shards(tmp_path / "o")} == before
    again = run(real3d, tmp_path / "o", seed=1, previews=0)  # the same settings resume
    assert again.num_samples == 2


def test_previews_are_drawn_from_the_corpus_on_a_resumed_run(real3d, tmp_path):
    run(real3d, tmp_path / "o", previews=2)
    preview = tmp_path / "o" / PREVIEW_NAME
    first = preview.read_bytes()
    preview.unlink()
    run(real3d, tmp_path / "o", previews=2)  # nothing left to generate
    assert preview.read_bytes() == first


def test_bad_counts_are_refused(real3d, tmp_path):
    with pytest.raises(ConfigError, match="previews"):
        run(real3d, tmp_path / "a", previews=-1)
    with pytest.raises(ConfigError, match="workers"):
        run(real3d, tmp_path / "b", workers=0)
    with pytest.raises(ConfigError, match="per_source must be >= 1"):
        run(real3d, tmp_path / "c", per_source=0)
    assert not any((tmp_path / name).exists() for name in "abc")  # nothing written for a refused run


def test_preview_titles_are_not_cut_at_the_top(tmp_path):
    import numpy as np
    from PIL import Image

    from anomalykit.generators import get_generator
    from anomalykit.generators.pointcloud._common import example_cloud
    from anomalykit.generators.pointcloud.preview import write_preview

    samples = [get_generator("patchgen")(example_cloud(512, key=f"example/a-long-category-name/{i}"), seed=i)
               for i in range(4)]
    path = write_preview(samples, tmp_path / "p.png", columns=4)
    grey = np.asarray(Image.open(path).convert("L"))
    assert (grey[:3] < 200).sum() == 0  # the first title line lies inside the picture
