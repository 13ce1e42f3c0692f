"""Inner products of paired real and generated features, from which the FID and KID of any
weighting of the faces (a bootstrap resample, the set with a face left out) cost one small SVD:
the low-rank algebra of fid_from_features, computed once per evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Grams:
    """Inner products of the real (r) and generated (f) features of the same faces, and the
    KID kernels: what every resample's FID and KID are computed from."""

    rr: np.ndarray
    ff: np.ndarray
    rf: np.ndarray
    k_rr: np.ndarray
    k_ff: np.ndarray
    k_rf: np.ndarray

    @classmethod
    def of(cls, real: np.ndarray, fake: np.ndarray) -> Grams:
        rr, ff, rf = real @ real.T, fake @ fake.T, real @ fake.T
        dims = real.shape[1]
        cubic = lambda g: (g / dims + 1) ** 3  # noqa: E731  KID's polynomial kernel
        return cls(rr, ff, rf, cubic(rr), cubic(ff), cubic(rf))

    def fid(self, counts: np.ndarray) -> float:
        """FID of the faces drawn `counts` times each (all ones: the whole set, as
        fid_from_features computes it)."""
        keep = np.flatnonzero(counts)
        c = counts[keep].astype(float)
        n = c.sum()
        if n < 2:
            return float("nan")
        w = c / n
        rr, ff, rf = (g[np.ix_(keep, keep)] for g in (self.rr, self.ff, self.rf))
        mean_term = w @ (rr + ff - rf - rf.T) @ w
        trace_r = n / (n - 1) * (w @ np.diag(rr) - w @ rr @ w)
        trace_f = n / (n - 1) * (w @ np.diag(ff) - w @ ff @ w)
        # A B^T with A, B the weighted centred features (rows scaled by sqrt(n/(n-1) w)), from rf alone
        centred = rf - (w @ rf)[None, :] - (rf @ w)[:, None] + w @ rf @ w
        scale = np.sqrt(n / (n - 1) * w)
        trace_sqrt = np.linalg.svd(scale[:, None] * centred * scale[None, :], compute_uv=False).sum()
        return float(mean_term + trace_r + trace_f - 2 * trace_sqrt)

    def kid(self, counts: np.ndarray) -> float:
        """Unbiased KID of the faces drawn `counts` times each: pairs of a face with a copy of
        itself are left out of the real-real and generated-generated terms, as the unbiased
        estimator leaves out a face with itself (all ones: kid_from_features on the whole set)."""
        c = counts.astype(float)
        n, same = c.sum(), (c * c).sum()
        if n * n - same <= 0:
            return float("nan")
        within = lambda k: (c @ k @ c - (c * c) @ np.diag(k)) / (n * n - same)  # noqa: E731
        return float(within(self.k_ff) + within(self.k_rr) - 2 * (c @ self.k_rf @ c) / (n * n))
