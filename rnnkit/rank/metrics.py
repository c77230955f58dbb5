"""Recall@k for response selection, with bootstrap intervals.

Each example ranks its candidates — the true response first among them — by score. Recall@k in
1-of-n is the share of examples whose true response is among the k best of n. Ties are broken at
random, in expectation: when the true response shares its score with t others and a candidates
score higher, it is among the k best with probability clip((k − a) / (t + 1), 0, 1). (Breaking
ties by position instead would favour the true response, which comes first.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

KS = (1, 2, 5)


def recall_values(scores: np.ndarray, k: int) -> np.ndarray:
    """Per example (rows of ``scores``, the true response in column 0): P(true response in the top k)."""
    truth = scores[:, :1]
    above = (scores[:, 1:] > truth).sum(axis=1)
    tied = (scores[:, 1:] == truth).sum(axis=1)
    return np.clip((k - above) / (tied + 1), 0.0, 1.0)


def truth_first(block: np.ndarray) -> np.ndarray:
    """A square block of scores, each context (row) against every context's true response (the
    truth on the diagonal), as rows of 1-of-n: the truth first, then the others in order."""
    n = len(block)
    others = block[~np.eye(n, dtype=bool)].reshape(n, n - 1)
    return np.concatenate([np.diagonal(block)[:, None], others], axis=1)


def per_example(scores: np.ndarray) -> dict[str, np.ndarray]:
    """R@1, R@2, R@5 in 1-of-10 and R@1 in 1-of-2 (the true response against the first distractor)."""
    values = {f"R@{k}": recall_values(scores, k) for k in KS}
    values["R@1_of_2"] = recall_values(scores[:, :2], 1)
    return values


def recall_report(scores: np.ndarray, *, bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The recalls, each with a 95% bootstrap interval (examples resampled ``bootstrap`` times), and
    the number of examples."""
    values = per_example(scores)
    rng = np.random.default_rng(seed)
    n = len(scores)
    resamples = rng.integers(0, n, size=(bootstrap, n))
    report: dict[str, Any] = {name: float(v.mean()) for name, v in values.items()}
    report["intervals"] = {name: [float(x) for x in np.percentile(v[resamples].mean(axis=1), [2.5, 97.5])]
                           for name, v in values.items()}
    report["examples"] = n
    return report
