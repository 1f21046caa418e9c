"""The series corpus pipeline: settings pinned per folder, preview of the corpus's first series."""

import pytest

from anomalykit.errors import ConfigError
from anomalykit.generators.series.corpus import CSV_PREVIEW_NAME, PREVIEW_NAME, generate_series_corpus
from anomalykit.generators.series.export import to_gutentag_csv
from anomalykit.shards import read_shards

CONFIG = {"length": 120, "anomalies": [{"kind": "mean", "length": 10, "offset": 2.0}]}


def test_other_settings_in_the_same_folder_are_refused(tmp_path):
    generate_series_corpus(CONFIG, tmp_path / "o", num_samples=3, seed=1, preview=False)
    with pytest.raises(ConfigError, match="seed: 1 before, 2 now"):
        generate_series_corpus(CONFIG, tmp_path / "o", num_samples=3, seed=2, preview=False)
    with pytest.raises(ConfigError, match="parameters"):
        generate_series_corpus({**CONFIG, "length": 130}, tmp_path / "o", num_samples=3, seed=1, preview=False)
    assert generate_series_corpus(CONFIG, tmp_path / "o", num_samples=3, seed=1, preview=False).num_samples == 3


def test_preview_shows_the_first_series_of_the_corpus_after_a_resume(tmp_path):
    out = tmp_path / "o"
    generate_series_corpus(CONFIG, out, num_samples=3)
    for name in (PREVIEW_NAME, CSV_PREVIEW_NAME):
        (out / name).unlink()
    generate_series_corpus(CONFIG, out, num_samples=3)  # everything is done already
    first = next(iter(read_shards(out)))
    to_gutentag_csv(first, tmp_path / "expected.csv")
    assert (out / CSV_PREVIEW_NAME).read_text() == (tmp_path / "expected.csv").read_text()
    assert (out / PREVIEW_NAME).read_bytes()[:4] == b"\x89PNG"


def test_generation_settings_are_refused_with_sources(tmp_path):
    import numpy as np

    from anomalykit.schema import Sample, Series

    source = Sample(key="s/0", dataset="demo", split="train", label=0, data=Series(np.zeros((200, 1), np.float32)))
    with pytest.raises(ConfigError, match="num_samples/only"):
        generate_series_corpus(CONFIG, tmp_path / "o", sources=[source], num_samples=5)
    with pytest.raises(ConfigError, match="num_samples/only"):
        generate_series_corpus(CONFIG, tmp_path / "o", sources=[source], only="a")
    with pytest.raises(ConfigError, match="per_source: 0 is below"):
        generate_series_corpus(CONFIG, tmp_path / "o", sources=[source], per_source=0)
    assert not (tmp_path / "o").exists()
    with pytest.warns(UserWarning, match="config keys length describe a generated series"):
        assert generate_series_corpus(CONFIG, tmp_path / "o", sources=[source], per_source=2).num_samples == 2
