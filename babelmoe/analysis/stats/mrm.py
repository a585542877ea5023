"""Multiple regression on distance matrices (MRM; Lichstein 2007, Legendre & Legendre 2012).

A response distance matrix Y [n, n] and k predictor distance matrices X_1..X_k [n, n] are
unfolded into their upper triangles (P = n(n-1)/2 pairs), each variable is turned into ranks
(``ranks=True``, the house default: Spearman-like, robust to the very different scales of the
references) or kept raw, and standardised (mean 0, population std 1). Ordinary least squares of
y on the standardised predictors then gives

- ``beta`` [k]: standardised partial regression coefficients, ``beta = R^-1 c`` with
  ``c = X^T y / P`` the predictor-response correlations and ``R = X^T X / P`` the predictor
  correlation matrix (no intercept is needed: everything is centred);
- ``r2``: ``c^T R^-1 c``, the share of the response's variance the predictors explain;
- ``unique`` [k]: the R^2 lost when predictor j is dropped, ``beta_j^2 / (R^-1)_jj`` (its
  squared semipartial correlation); ``joint = r2 - sum(unique)`` is the part the predictors
  explain only together (negative under suppression).

Significance is by relabeling languages (rows and columns together): pairs are not
independent, languages are the exchangeable unit. R^2 is tested by relabeling the response, as in
Legendre's MRM; a coefficient by default with Freedman-Lane (relabeling the residual of the
model without that predictor, :func:`coefficient_null`), since relabeling the whole response
tests only the joint null and is anti-conservative for a predictor that merely correlates with
one that matters. Relabeling the
response by a permutation equals relabeling the predictors by its inverse (the pairs are only
reordered, so ``R`` does not change); the relabelings used form a group (or are drawn uniformly
from one), so :func:`permutation_null` relabels the k predictor columns once per relabeling and
serves every response (the whole model and all layers) in one matrix product. Coefficients are
tested two-sided (share of relabelings with ``|beta| >= |observed|``), R^2 one-sided.

:func:`weighted_fit` is the same fit with a weight per pair: resampling languages (with
replacement, leaving one out, leaving a family out) gives each original pair (a, b) the weight
``w_a * w_b`` (``stats.language_resampling``), and the fit on the resampled matrices equals the
weighted fit on the original pairs, ranks included (a pair that appears w times takes the average
of w consecutive ranks). Pairs of a language with its own copy are not pairs of the original
matrix and so drop out, as they must (their zero distance says nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

_TOL = 1e-10
_CHUNK_CELLS = 4_000_000  # gathered cells (relabelings x pairs x predictors) per chunk


def upper(matrix: np.ndarray) -> np.ndarray:
    """[..., n, n] -> [..., P] upper triangle, row-major (the order of ``np.triu_indices``)."""
    n = matrix.shape[-1]
    rows, cols = np.triu_indices(n, 1)
    return np.asarray(matrix, dtype=np.float64)[..., rows, cols]


def standardise(values: np.ndarray, ranks: bool = True) -> np.ndarray:
    """[..., P] -> average ranks (``ranks``) or raw values, mean 0 and population std 1 along
    the last axis; NaN where the values are constant or not all finite."""
    v = np.asarray(values, dtype=np.float64)
    if ranks:
        bad = ~np.isfinite(v).all(axis=-1, keepdims=True)
        v = rankdata(np.where(np.isfinite(v), v, 0.0), axis=-1)
        v = np.where(bad, np.nan, v)
    v = v - v.mean(axis=-1, keepdims=True)
    std = v.std(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(std > 1e-12, v / np.where(std > 1e-12, std, 1.0), np.nan)


@dataclass
class Fit:
    """One or many MRM fits (leading axes ``...``: resamples, scopes)."""

    beta: np.ndarray  # [..., k] standardised coefficients
    r2: np.ndarray  # [...]
    unique: np.ndarray  # [..., k] R^2 only predictor j explains

    @property
    def joint(self) -> np.ndarray:
        """[...] the part of R^2 no single predictor explains alone."""
        return self.r2 - self.unique.sum(axis=-1)


def _solve(c: np.ndarray, corr: np.ndarray, dead: np.ndarray | None = None) -> Fit:
    """Coefficients from correlations ``c`` [..., k] and predictor correlations ``corr``
    [k, k] (or [..., k, k] broadcasting with ``c``). ``dead`` [..., k] marks predictors with no
    variance (their column of ``corr`` is 0): their coefficient and unique R^2 are NaN."""
    inv = np.linalg.pinv(corr, hermitian=True)  # [..., k, k]
    beta = np.einsum("...ij,...j->...i", inv, c)
    r2 = np.einsum("...i,...i->...", c, beta)
    diag = np.diagonal(inv, axis1=-2, axis2=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unique = np.where(diag > 1e-12, beta**2 / np.where(diag > 1e-12, diag, 1.0), np.nan)
    if dead is not None and dead.any():
        beta = np.where(dead, np.nan, beta)
        unique = np.where(dead, np.nan, unique)
    return Fit(beta=beta, r2=r2, unique=unique)


def fit(y: np.ndarray, x: np.ndarray) -> Fit:
    """OLS of standardised responses ``y`` [..., P] on standardised predictors ``x`` [P, k]."""
    n_pairs = x.shape[0]
    c = y @ x / n_pairs  # [..., k]
    return _solve(c, x.T @ x / n_pairs)


def condition(x: np.ndarray) -> float:
    """Condition number of the predictor correlation matrix (large: collinear predictors)."""
    return float(np.linalg.cond(x.T @ x / x.shape[0]))


def _null_chunks(
    y: np.ndarray, x: np.ndarray, pair_index: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(beta [c, K, k], r2 [c, K]) for consecutive chunks of the relabelings."""
    n_perm, n_pairs = pair_index.shape
    k = x.shape[1]
    inv = np.linalg.pinv(x.T @ x / n_pairs, hermitian=True)  # [k, k], fixed under relabeling
    yt = np.ascontiguousarray(y.T)  # [P, K]
    chunk = max(1, _CHUNK_CELLS // (n_pairs * max(k, y.shape[0] // 4)))
    for start in range(0, n_perm, chunk):
        xp = x[pair_index[start : start + chunk]]  # [c, P, k]: predictors relabeled
        c = np.swapaxes(xp, 1, 2) @ yt / n_pairs  # [c, k, K]
        beta = np.einsum("ij,cjk->cki", inv, c)  # [c, K, k]
        yield beta, np.einsum("cki,cik->ck", beta, c)


def permutation_null(
    y: np.ndarray, x: np.ndarray, pair_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and R^2 of every response under every relabeling of the response.

    Args:
        y: [K, P] standardised responses (e.g. the whole model and each layer).
        x: [P, k] standardised predictors.
        pair_index: [N, P] relabelings as pair indices (identity first; see
            ``stats.permutation.LabelPermutations`` and ``stats.language_resampling``).

    Returns:
        beta [N, K, k] and r2 [N, K]; row 0 is the observed fit.
    """
    betas, r2s = zip(*_null_chunks(y, x, pair_index), strict=True)
    return np.concatenate(betas), np.concatenate(r2s)


def reduced_residuals(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """[K, P] responses, [P, k] predictors -> [K, k, P]: each response's residual after OLS on
    every predictor but j (the reduced model of the Freedman-Lane test of coefficient j)."""
    k = x.shape[1]
    out = np.empty((y.shape[0], k, y.shape[1]))
    for j in range(k):
        rest = np.delete(x, j, axis=1)  # [P, k-1]
        if rest.shape[1] == 0:
            out[:, j] = y
            continue
        coef = y @ np.linalg.pinv(rest).T  # [K, k-1]
        out[:, j] = y - coef @ rest.T
    return out


def _coefficient_chunks(
    y: np.ndarray, x: np.ndarray, pair_index: np.ndarray, method: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    if method == "response":
        yield from _null_chunks(y, x, pair_index)
        return
    if method != "freedman_lane":
        raise ValueError(f"unknown method {method!r}")
    n_scopes, k = y.shape[0], x.shape[1]
    resid = reduced_residuals(y, x).reshape(n_scopes * k, -1)  # [(K k), P]
    for beta, r2 in _null_chunks(np.concatenate([y, resid]), x, pair_index):
        per = beta[:, n_scopes:].reshape(len(beta), n_scopes, k, k)  # [c, K, j (response), i]
        yield np.diagonal(per, axis1=2, axis2=3), r2[:, :n_scopes]


def coefficient_null(
    y: np.ndarray, x: np.ndarray, pair_index: np.ndarray, method: str = "freedman_lane"
) -> tuple[np.ndarray, np.ndarray]:
    """Null distributions of the coefficients and of R^2 under relabeled languages.

    ``method="response"`` relabels the response (Legendre's MRM: the null that the response
    follows none of the predictors). ``"freedman_lane"`` (Freedman & Lane 1983; Anderson &
    Legendre 1999) tests coefficient j by relabeling the languages of the residual of the
    reduced model (every predictor but j): the null that the response follows predictor j
    *beyond* the others, which stays valid when the predictors are correlated and another one
    matters. Row 0 is the observed fit either way (the reduced residual's coefficient j equals
    the full model's, by Frisch-Waugh-Lovell). R^2 is always tested by relabeling the response.

    Returns beta [N, K, k] and r2 [N, K] (see :func:`permutation_p_values` for the p-values
    without holding the whole null).
    """
    betas, r2s = zip(*_coefficient_chunks(y, x, pair_index, method), strict=True)
    return np.concatenate(betas), np.concatenate(r2s)


def permutation_p_values(
    y: np.ndarray, x: np.ndarray, pair_index: np.ndarray, method: str = "freedman_lane"
) -> tuple[np.ndarray, np.ndarray]:
    """p-values of the coefficients (two-sided) [K, k] and of R^2 (one-sided) [K], counted
    chunk by chunk (memory independent of the number of relabelings); equal to
    ``p_values`` of :func:`coefficient_null`'s output."""
    beta_hits = r2_hits = None
    total = 0
    for beta, r2 in _coefficient_chunks(y, x, pair_index, method):
        if beta_hits is None:
            obs_beta, obs_r2 = np.abs(beta[0]), r2[0]
            tol_b = _TOL * np.maximum(1.0, obs_beta)
            tol_r = _TOL * np.maximum(1.0, np.abs(obs_r2))
            beta_hits, r2_hits = np.zeros(obs_beta.shape), np.zeros(obs_r2.shape)
        with np.errstate(invalid="ignore"):
            beta_hits += (np.abs(beta) >= obs_beta - tol_b).sum(axis=0)
            r2_hits += (r2 >= obs_r2 - tol_r).sum(axis=0)
        total += len(beta)
    return (
        np.where(np.isfinite(obs_beta), beta_hits / total, np.nan),
        np.where(np.isfinite(obs_r2), r2_hits / total, np.nan),
    )


def p_values(null: np.ndarray, two_sided: bool) -> np.ndarray:
    """[N, ...] null with the observed value first -> [...] permutation p-values (never 0)."""
    observed = null[0]
    tol = _TOL * np.maximum(1.0, np.abs(observed))
    stat, obs = (np.abs(null), np.abs(observed)) if two_sided else (null, observed)
    with np.errstate(invalid="ignore"):
        hits = stat >= obs - tol
    p = hits.sum(axis=0) / null.shape[0]
    return np.where(np.isfinite(observed), p, np.nan)


# ---------------------------------------------------------------------------------------------
# Weighted fits: resampled languages as weights on the original pairs


@dataclass(frozen=True)
class RankPlan:
    """The sort of one variable over the pairs, reused for any weights."""

    order: np.ndarray  # [P] argsort of the values
    starts: np.ndarray  # [G] first sorted position of each run of tied values
    group: np.ndarray  # [P] run index of each sorted position

    @staticmethod
    def of(values: np.ndarray) -> RankPlan:
        order = np.argsort(values, kind="stable")
        ordered = values[order]
        new = np.ones(len(values), dtype=bool)
        new[1:] = ordered[1:] != ordered[:-1]
        return RankPlan(order, np.flatnonzero(new), np.cumsum(new) - 1)

    def ranks(self, weights: np.ndarray) -> np.ndarray:
        """[B, P] weights -> [B, P] average ranks of each pair in the weighted multiset (a pair
        of weight w stands for w tied copies; ties share their average rank)."""
        ws = weights[:, self.order]  # [B, P] in sorted order
        totals = np.add.reduceat(ws, self.starts, axis=1)  # [B, G]
        before = np.cumsum(totals, axis=1) - totals  # weight of all smaller values
        run_rank = before + (totals + 1.0) / 2.0  # [B, G]
        out = np.empty_like(ws)
        out[:, self.order] = run_rank[:, self.group]
        return out


def _weighted_z(
    values: np.ndarray, plan: RankPlan | None, weights: np.ndarray, total: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """[P] values, [B, P] weights -> [B, P] weighted-standardised values (0 where the weighted
    std is 0) and [B] whether the std was 0."""
    v = plan.ranks(weights) if plan is not None else np.broadcast_to(values, weights.shape)
    mean = (weights * v).sum(axis=1, keepdims=True) / total
    centred = v - mean
    std = np.sqrt((weights * centred**2).sum(axis=1, keepdims=True) / total)
    dead = std[:, 0] <= 1e-12
    return np.where(dead[:, None], 0.0, centred / np.where(dead[:, None], 1.0, std)), dead


def weighted_fit(
    y: np.ndarray,
    x: np.ndarray,
    weights: np.ndarray,
    ranks: bool = True,
    batch_size: int = 100,
) -> Fit:
    """MRM fits with a weight per pair, one per row of ``weights``.

    Args:
        y: [K, P] raw responses (not standardised: ranks and moments are taken under the
            weights).
        x: [P, k] raw predictors.
        weights: [B, P] non-negative pair weights (``language_resampling.pair_weights``).
        ranks: rank the variables (weighted average ranks) before standardising.
        batch_size: rows of ``weights`` processed at once (memory ~ batch x P x (K + k)).

    Returns:
        Fit with leading axes [B, K]. A response or predictor constant under a row's weights
        gives NaN there (fewer than 3 pairs of positive weight: all NaN).
    """
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    x = np.asarray(x, dtype=np.float64)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    n_resamples, k, n_scopes = weights.shape[0], x.shape[1], y.shape[0]
    plans_y = [RankPlan.of(v) if ranks else None for v in y]
    plans_x = [RankPlan.of(v) if ranks else None for v in x.T]
    beta = np.full((n_resamples, n_scopes, k), np.nan)
    r2 = np.full((n_resamples, n_scopes), np.nan)
    unique = np.full((n_resamples, n_scopes, k), np.nan)
    for start in range(0, n_resamples, batch_size):
        w = weights[start : start + batch_size]  # [b, P]
        total = w.sum(axis=1, keepdims=True)
        enough = (w > 0).sum(axis=1) >= 3
        total = np.where(total > 0, total, 1.0)
        zx, dead_x = zip(
            *(_weighted_z(v, p, w, total) for v, p in zip(x.T, plans_x, strict=True)),
            strict=True,
        )
        zx_t = np.stack(zx, axis=1)  # [b, k, P]
        zx_w = zx_t * (w / total)[:, None, :]  # weights folded in
        corr = zx_w @ np.swapaxes(zx_t, 1, 2)  # [b, k, k]
        dead = np.stack(dead_x, axis=1)  # [b, k]
        for s, (v, p) in enumerate(zip(y, plans_y, strict=True)):
            zy, dead_y = _weighted_z(v, p, w, total)
            c = (zx_w @ zy[:, :, None])[..., 0]  # [b, k]
            f = _solve(c, corr, dead)
            ok = enough & ~dead_y
            sl = slice(start, start + len(w))
            beta[sl, s] = np.where(ok[:, None], f.beta, np.nan)
            r2[sl, s] = np.where(ok, f.r2, np.nan)
            unique[sl, s] = np.where(ok[:, None], f.unique, np.nan)
    return Fit(beta=beta, r2=r2, unique=unique)
