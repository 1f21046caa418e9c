import numpy as np
import pytest

import anomalykit.metrics as metrics
from anomalykit.errors import ConfigError
from anomalykit.metrics.classification import PRArea, auprc, auroc


def test_auroc_hand_computed():
    # positive/negative pairs: (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4) -> 3/4
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    # positives 0.2, 0.9 vs negatives 0.2, 0.1: the tie counts one half -> (0.5 + 1 + 1 + 1) / 4
    assert auroc([0, 1, 0, 1], [0.2, 0.2, 0.1, 0.9]) == 0.875
    assert auroc(np.array([True, False, True]), [3.0, 1.0, 2.0]) == 1.0


def test_auprc_average_precision_and_trapezoid_hand_computed():
    labels, scores = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    # thresholds 0.8, 0.4, 0.35: (P, R) = (1, .5), (.5, .5), (2/3, 1); AP = .5*1 + .5*(2/3)
    assert auprc(labels, scores) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # trapezoid over (R, P): (0,1)-(.5,1) = .5, (.5,.5)-(1,2/3) = .5*(.5+2/3)/2
    assert auprc(labels, scores, method="trapezoid") == pytest.approx(0.5 + 0.25 * (0.5 + 2 / 3))
    assert auprc(labels, scores, method=PRArea.TRAPEZOID) == auprc(labels, scores, method="trapezoid")
    assert auprc([1, 0, 1, 0], [0.9, 0.1, 0.8, 0.2]) == 1.0


def test_scores_are_checked():
    with pytest.raises(ConfigError, match="same length"):
        auroc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ConfigError, match="only class 1"):
        auroc([1, 1], [0.1, 0.2])
    with pytest.raises(ConfigError, match="0 .normal. or 1"):
        auprc([0, 2], [0.1, 0.2])
    with pytest.raises(ConfigError, match="non-finite"):
        auroc([0, 1], [np.nan, 0.2])
    with pytest.raises(ConfigError, match="method must be one of"):
        auprc([0, 1], [0.1, 0.2], method="interpolated")


def test_lazy_access_through_the_package():
    assert metrics.auroc is auroc
    assert metrics.PRArea is PRArea
