import numpy as np
import pytest

from anomalykit.errors import ConfigError
from anomalykit.metrics.insider import DEFAULT_BUDGETS, detection_rate_at_budgets, evaluate_insider
from anomalykit.schema import EventLog, Sample


def test_detection_rate_by_hand():
    labels = [0] * 8 + [1, 1]
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.95, 0.75]
    # 10 % budget: threshold = 90th percentile = 0.815, only 0.95 is above; 30 %: 0.715, both insiders' days
    assert detection_rate_at_budgets(labels, scores, budgets=(0.1, 0.3)) == {0.1: 0.5, 0.3: 1.0}
    assert tuple(detection_rate_at_budgets(labels, scores)) == DEFAULT_BUDGETS


def test_user_based_rate_counts_insiders_once():
    labels = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    scores = [0.99, 0.98, 0.1, 0.5, 0.4, 0.3, 0.2, 0.15, 0.12, 0.11]
    users = ["a", "a", "b", "c", "c", "d", "d", "e", "e", "f"]
    # 20 %: the two flagged days are both user a's: 2 of 3 anomalous days, 1 of 2 insiders
    assert detection_rate_at_budgets(labels, scores, budgets=(0.2,)) == {0.2: pytest.approx(2 / 3)}
    assert detection_rate_at_budgets(labels, scores, budgets=(0.2,), groups=users) == {0.2: 0.5}
    with pytest.raises(ConfigError, match="budgets"):
        detection_rate_at_budgets(labels, scores, budgets=(0.0,))
    with pytest.raises(ConfigError, match="groups"):
        detection_rate_at_budgets(labels, scores, groups=["a"])


def test_evaluate_insider_reads_users_from_meta():
    def day(user, label):
        return Sample(key=f"{user}/{label}", dataset="cert", split="test", label=label,
                      data=EventLog({"type": ["logon"]}), meta={"user": user})

    samples = [day("a", 1), day("b", 0), day("c", 0), day("d", 0)]
    report = evaluate_insider(samples, np.array([0.9, 0.1, 0.2, 0.3]), budgets=(0.25,))
    assert report["auroc"] == 1.0 and report["insiders"] == 1
    assert report["user_detection_rate"] == {0.25: 1.0}


def test_evaluate_insider_needs_one_score_per_sample():
    samples = [Sample(key=f"u{i}/{i}", dataset="cert", split="test", label=int(i == 0),
                      data=EventLog({"type": ["logon"]}), meta={"user": f"u{i}"}) for i in range(4)]
    with pytest.raises(ConfigError, match="3 scores for 4 samples"):
        evaluate_insider(samples, [0.9, 0.1, 0.2])
