"""The insider-threat domain metric: detection rate at investigation budgets.

An analyst investigates the highest-scored share ``b`` of the instances (user-days, user-weeks
or sessions). As in the CERT example of Le & Zincir-Heywood's feature-extraction code, the
threshold is the ``100 - 100 b`` percentile of the scores (linear interpolation) and an instance
is flagged when its score is strictly above it; the **instance-based** detection rate is the share
of anomalous instances flagged. With ``groups`` (one user id per instance) the **user-based**
rate is the share of insiders (users with an anomalous instance) of whom at least one anomalous
instance is flagged.

>>> rates = detection_rate_at_budgets([0, 0, 0, 0, 0, 0, 0, 0, 1, 1],
...                                   [.1, .2, .3, .4, .5, .6, .7, .8, .95, .75], budgets=(0.1, 0.3))
>>> rates[0.1], rates[0.3]
(0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from .classification import auroc, check_binary_scores

__all__ = ["DEFAULT_BUDGETS", "detection_rate_at_budgets", "evaluate_insider"]

#: budgets of the reference CERT example (0.1 % to 20 %), plus 0.5 %
DEFAULT_BUDGETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.2)


def detection_rate_at_budgets(labels: Any, scores: Any, *, budgets: Sequence[float] = DEFAULT_BUDGETS,
                              groups: Any = None) -> dict[float, float]:
    """Detection rate per budget (a share of instances in (0, 1]); user-based with ``groups``."""
    y, s = check_binary_scores(labels, scores)
    for budget in budgets:
        if not 0.0 < float(budget) <= 1.0:
            raise ConfigError(f"budgets must lie in (0, 1], got {budget}")
    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        if groups.shape != y.shape:
            raise ConfigError(f"groups ({groups.size} values) must have one entry per instance ({y.size})")
        insiders = np.unique(groups[y == 1])
    rates = {}
    for budget in budgets:
        flagged = s > np.percentile(s, 100.0 - 100.0 * float(budget))
        caught = flagged & (y == 1)
        if groups is None:
            rates[float(budget)] = float(caught.sum() / (y == 1).sum())
        else:
            rates[float(budget)] = float(np.isin(insiders, groups[caught]).mean())
    return rates


def evaluate_insider(samples: Sequence[Any], scores: Any, *,
                     budgets: Sequence[float] = DEFAULT_BUDGETS) -> dict[str, Any]:
    """AUROC and instance- and user-based detection rates of per-sample ``scores`` on CERT samples
    (``label`` per instance, ``meta["user"]`` as the user)."""
    labels = np.array([s.label for s in samples])
    users = np.array([str((s.meta or {}).get("user", s.key)) for s in samples])
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if values.size != labels.size:
        raise ConfigError(f"evaluate_insider: {values.size} scores for {labels.size} samples")
    known = labels >= 0
    labels, users, values = labels[known], users[known], values[known]
    return {
        "auroc": auroc(labels, values),
        "detection_rate": detection_rate_at_budgets(labels, values, budgets=budgets),
        "user_detection_rate": detection_rate_at_budgets(labels, values, budgets=budgets, groups=users),
        "instances": int(labels.size),
        "anomalous": int(labels.sum()),
        "insiders": int(np.unique(users[labels == 1]).size),
    }
