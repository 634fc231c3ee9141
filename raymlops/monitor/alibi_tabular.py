"""alibi-detect's TabularDrift with its numeric columns tested together (imports alibi-detect).

TabularDrift scores a batch column by column: ``ks_2samp`` for each numeric feature, which sorts
the reference again on every window and costs three quarters of a window check. This subclass
scores the numeric columns in one pass against the reference sorted once
(:class:`raymlops.monitor.ks.KSReference`: scipy's two-sided ``asymp`` statistic and p-value,
bit for bit) and leaves the categorical columns, the correction and the decision to alibi-detect.
"""

from __future__ import annotations

import numpy as np
from alibi_detect.cd import TabularDrift

from raymlops.monitor.ks import KSReference


class SortedTabularDrift(TabularDrift):
    """TabularDrift whose numeric feature scores come from a reference sorted once."""

    def __init__(self, x_ref: np.ndarray, **kwargs) -> None:
        super().__init__(x_ref, **kwargs)
        self._numeric = [f for f in range(self.n_features) if f not in self.cat_vars]
        categories = {i: None for i, f in enumerate(self.cat_vars)}
        self._categorical = (TabularDrift(self.x_ref[:, self.cat_vars], p_val=self.p_val,
                                         categories_per_feature=categories) if self.cat_vars else None)
        self._sorted_of: np.ndarray | None = None
        self._sorted: KSReference | None = None

    def feature_score(self, x_ref: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """K-S (numeric) or Chi-squared (categorical) statistics and p-values per feature, as
        TabularDrift's own (two-sided only; other alternatives take its path)."""
        if self.alternative != "two-sided" or not self._numeric:
            return super().feature_score(x_ref, x)
        if self._sorted is None or self._sorted_of is not x_ref:  # alibi passes its x_ref (update_x_ref replaces it)
            self._sorted_of = x_ref
            self._sorted = KSReference(x_ref.reshape(x_ref.shape[0], -1)[:, self._numeric])
        x_ref = x_ref.reshape(x_ref.shape[0], -1)
        x = x.reshape(x.shape[0], -1)
        p_val = np.zeros(self.n_features, dtype=np.float32)
        dist = np.zeros_like(p_val)
        dist[self._numeric], p_val[self._numeric] = self._sorted.test(x[:, self._numeric])
        if self._categorical is not None:
            p_val[self.cat_vars], dist[self.cat_vars] = self._categorical.feature_score(x_ref[:, self.cat_vars],
                                                                                    x[:, self.cat_vars])
        return p_val, dist
