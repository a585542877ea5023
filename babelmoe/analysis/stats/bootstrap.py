"""Bootstrap over documents: resample each language's profile units and recompute frequencies.

The profile splits every language's counts into U units of whole documents
(``unit_counts`` [n, U, L, E], ``unit_tokens`` [n, U]). One bootstrap resample draws, for each
language, as many units as it has non-empty ones, uniformly with replacement among them, and sums
their counts and tokens; frequency = counts / tokens. With ``paired`` the same draw (over the
units that are non-empty in some language) is used for every language, which suits parallel
corpora whose j-th unit holds the same content in every language. With ``paired`` and the units'
articles (``articles`` [n, U], see ``analysis.units``) the draw is over articles instead, and
every language's units holding a drawn article get its weight: a Bayesian bootstrap (Rubin
1981; weights Dirichlet(1, ..., 1) x the number of articles), because a language profiled on a
few articles of many would receive none of them in some multinomial draws ((1 - k/A)^A: 1.3%
for 4 of 25) and have no tokens. Intervals are percentile intervals of a statistic over the
resamples.

They describe the sampling spread of the plug-in estimate, not its bias: resampling adds noise,
so distances between languages come out slightly larger, and threshold counts (shared experts,
where the minimum over languages must reach 0.05) slightly smaller, than on the full data. With a
few thousand tokens per language the shift is small next to the interval for the distances and
the group statistic (a difference of distances, where it largely cancels), but visible for the
counts; the summary says so when an observed count lies outside its interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from babelmoe.threads import usable_cores

logger = logging.getLogger(__name__)

Statistic = Callable[[np.ndarray], dict[str, np.ndarray]]


def unit_weights(
    rng: np.random.Generator,
    unit_tokens: np.ndarray,
    batch: int,
    paired: bool,
    articles: np.ndarray | None = None,
) -> np.ndarray:
    """[B, n, U] how often each unit is drawn in each of ``batch`` resamples.

    ``articles`` [n, U] int (-1: none): with ``paired``, the article weights of the module
    docstring; each language's resample then holds every article it has, weighted alike."""
    n, n_units = unit_tokens.shape
    nonempty = unit_tokens > 0  # [n, U]
    if paired and articles is not None:
        articles = np.asarray(articles)
        n_articles = int(articles.max()) + 1 if articles.size and articles.max() >= 0 else 0
        if n_articles:
            weights = rng.dirichlet(np.ones(n_articles), size=batch) * n_articles  # [B, A]
            padded = np.concatenate([weights, np.zeros((batch, 1))], axis=1)  # -1 -> weight 0
            return padded[:, np.where(nonempty, articles, -1)]  # [B, n, U]
    if paired:
        mask = nonempty.any(axis=0)
        probs = mask / mask.sum()
        draws = rng.multinomial(int(mask.sum()), probs, size=batch)  # [B, U]
        return np.repeat(draws[:, None, :], n, axis=1).astype(np.float64)
    out = np.zeros((batch, n, n_units))
    for lang in range(n):
        m = int(nonempty[lang].sum())
        if m == 0:
            continue
        out[:, lang, :] = rng.multinomial(m, nonempty[lang] / m, size=batch)
    return out


def resampled_frequency(
    unit_counts: np.ndarray, unit_tokens: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """[n, U, L, E] counts, [n, U] tokens, [B, n, U] weights -> [B, n, L, E] frequencies."""
    n, n_units, n_layers, n_experts = unit_counts.shape
    flat = unit_counts.reshape(n, n_units, n_layers * n_experts)
    counts = np.einsum("bnu,nuk->bnk", weights, flat, optimize=True)  # [B, n, L*E]
    tokens = np.einsum("bnu,nu->bn", weights, unit_tokens)  # [B, n]
    freq = counts / np.maximum(tokens, 1.0)[..., None]
    return freq.reshape(weights.shape[0], n, n_layers, n_experts)


def check_units(unit_counts: np.ndarray, unit_tokens: np.ndarray, codes: list[str]) -> None:
    """Log a warning for languages whose intervals will be degenerate."""
    for code, row in zip(codes, unit_tokens, strict=True):
        if int((row > 0).sum()) < 2:
            logger.warning(
                "language %s has fewer than 2 non-empty bootstrap units: its intervals "
                "have zero width (profile more documents or more units)",
                code,
            )


def default_workers() -> int:
    """Threads for the bootstrap: the CPU cores this process may use, at most 4."""
    return min(4, usable_cores())


def run_bootstrap(
    unit_counts: np.ndarray,
    unit_tokens: np.ndarray,
    statistic: Statistic,
    n_resamples: int,
    seed: int,
    batch_size: int = 50,
    paired: bool = False,
    workers: int | None = None,
    articles: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Apply ``statistic`` ([B, n, L, E] -> named arrays [B, ...]) to resampled frequencies.

    Returns the named arrays concatenated over all ``n_resamples`` (float32 to bound memory).
    ``articles``: the units' articles [n, U] for a paired draw over articles (``unit_weights``).
    Every resample is drawn first, in order, from one generator; the batches are then evaluated
    by ``workers`` threads (numpy releases the GIL), so the result does not depend on them.
    """
    rng = np.random.default_rng(seed)
    counts = np.asarray(unit_counts, dtype=np.float64)
    tokens = np.asarray(unit_tokens, dtype=np.float64)
    sizes = [min(batch_size, n_resamples - s) for s in range(0, n_resamples, batch_size)]
    draws = [unit_weights(rng, tokens, size, paired, articles) for size in sizes]

    def evaluate(weights: np.ndarray) -> dict[str, np.ndarray]:
        freq = resampled_frequency(counts, tokens, weights)
        return {k: np.asarray(v, dtype=np.float32) for k, v in statistic(freq).items()}

    workers = min(workers or default_workers(), len(draws))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(evaluate, draws))
    else:
        results = [evaluate(weights) for weights in draws]
    logger.debug(
        "bootstrap: %d resamples in %d batches, %d threads", n_resamples, len(draws), workers
    )
    if not results:
        return {}
    return {name: np.concatenate([r[name] for r in results]) for name in results[0]}


def percentile_interval(samples: np.ndarray, level: float) -> np.ndarray:
    """[B, ...] -> [2, ...] lower and upper percentile bounds (NaN where all samples are NaN)."""
    tail = 100.0 * (1.0 - level) / 2.0
    samples = np.asarray(samples, dtype=np.float64)
    shape = samples.shape[1:]
    flat = samples.reshape(samples.shape[0], -1)  # [B, K]
    out = np.full((2, flat.shape[1]), np.nan)
    finite = ~np.all(np.isnan(flat), axis=0) if flat.shape[0] else np.zeros(flat.shape[1], bool)
    if finite.all() and not np.isnan(flat).any():
        # what nanpercentile does without NaN, skipping its scan; with NaN it goes column by column
        out[:] = np.percentile(flat, [tail, 100.0 - tail], axis=0)
    elif finite.any():
        out[:, finite] = np.nanpercentile(flat[:, finite], [tail, 100.0 - tail], axis=0)
    return out.reshape(2, *shape)
