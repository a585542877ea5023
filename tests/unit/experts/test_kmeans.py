"""Balanced k-means: exact balance, canonical labels, determinism, optimality, quality."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from babelmoe.errors import BabelmoeError
from babelmoe.experts import kmeans as km
from babelmoe.experts.kmeans import KMeansResult, balanced_assignment, balanced_kmeans


@pytest.fixture(autouse=True)
def one_cpu_thread() -> Iterator[None]:
    """Many small ops: one thread is faster and far steadier on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def unit_rows(n: int, d: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, d, generator=gen), dim=1)


def blobs(n: int, d: int, centers: int, spread: float, seed: int = 0) -> torch.Tensor:
    """L2-normalised Gaussian blobs: like FFN rows with some cluster structure."""
    gen = torch.Generator().manual_seed(seed)
    mu = torch.randn(centers, d, generator=gen)
    which = torch.randint(0, centers, (n,), generator=gen)
    x = mu[which] + spread * torch.randn(n, d, generator=gen)
    return torch.nn.functional.normalize(x, dim=1)


def inertia_of(x: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    x = x.double()
    size = torch.bincount(labels, minlength=k).double()
    mu = torch.zeros(k, x.shape[1], dtype=torch.float64).index_add_(0, labels, x) / size[:, None]
    return float(((x - mu[labels]) ** 2).sum())


def optimal_balanced_cost(cost: np.ndarray) -> float:
    """Optimum of the balanced assignment by scipy's Hungarian solver on the expanded problem.

    Every bin gets floor(n/k) slots plus, when r = n % k > 0, one optional slot; k - r dummy
    rows (cost 0 on optional slots, forbidden elsewhere) fill the optional slots left over.
    """
    n, k = cost.shape
    f, r = divmod(n, k)
    s = f + (1 if r else 0)
    slot_bin = np.repeat(np.arange(k), s)  # [k*s]
    big = cost[:, slot_bin]  # [n, k*s]
    if r:
        optional = np.zeros(k * s, dtype=bool)
        optional[np.arange(k) * s + f] = True
        dummies = np.where(optional, 0.0, 1e12)[None, :].repeat(k - r, axis=0)
        big = np.vstack([big, dummies])
    rows, cols = linear_sum_assignment(big)
    real = rows < n
    return float(cost[rows[real], slot_bin[cols[real]]].sum())


def check_balanced(labels: torch.Tensor, n: int, k: int) -> None:
    assert labels.dtype == torch.int64
    assert labels.shape == (n,)
    assert int(labels.min()) >= 0 and int(labels.max()) < k
    size = torch.bincount(labels, minlength=k)
    f, r = divmod(n, k)
    assert int((size == f + 1).sum()) == r
    assert int((size == f).sum()) == k - r


# ------------------------------------------------------------------------------ balance, labels


@pytest.mark.parametrize(
    ("n", "k"), [(96, 8), (100, 7), (103, 10), (50, 50), (51, 50), (40, 1), (9, 2), (257, 16)]
)
def test_sizes_are_exactly_balanced(n: int, k: int) -> None:
    res = balanced_kmeans(unit_rows(n, 12, seed=n + k), k, seed=3)
    assert isinstance(res, KMeansResult)
    check_balanced(res.labels, n, k)
    assert res.centroids.shape == (k, 12) and res.centroids.dtype == torch.float32
    assert res.n_iter >= 1


@pytest.mark.parametrize(("n", "k"), [(103, 10), (96, 8), (31, 4)])
def test_labels_are_canonical(n: int, k: int) -> None:
    res = balanced_kmeans(unit_rows(n, 8, seed=1), k)
    labels = res.labels
    size = torch.bincount(labels, minlength=k)
    r = n % k
    assert bool((size[:r] == n // k + 1).all()) and bool((size[r:] == n // k).all())
    first = [int((labels == j).nonzero()[0]) for j in range(k)]
    assert first[:r] == sorted(first[:r])
    assert first[r:] == sorted(first[r:])
    assert labels[0] == (0 if r == 0 or size[labels[0]] > n // k else r)


def test_centroids_and_inertia_match_the_labels() -> None:
    x = blobs(120, 16, 6, 0.5, seed=2)
    res = balanced_kmeans(x, 9)
    for j in range(9):
        torch.testing.assert_close(res.centroids[j], x[res.labels == j].mean(0), atol=1e-5, rtol=0)
    assert res.inertia == pytest.approx(inertia_of(x, res.labels, 9), rel=1e-6)


def test_deterministic_for_a_seed() -> None:
    x = blobs(300, 24, 10, 0.8, seed=4)
    a = balanced_kmeans(x, 12, seed=7)
    b = balanced_kmeans(x, 12, seed=7)
    assert torch.equal(a.labels, b.labels)
    assert torch.equal(a.centroids, b.centroids)
    assert a.inertia == b.inertia
    state = torch.random.get_rng_state()
    balanced_kmeans(x, 12, seed=8)
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is left alone


def test_cpu_thread_setting_is_restored() -> None:
    torch.set_num_threads(2)  # the autouse fixture restores the original afterwards
    balanced_kmeans(unit_rows(200, 16), 10)
    assert torch.get_num_threads() == 2


def test_golden_obvious_clusters() -> None:
    # Four tight groups of 5 points around the axes, interleaved: point i is in group i % 4.
    gen = torch.Generator().manual_seed(0)
    axes = torch.eye(4, 6) * 10
    x = axes[torch.arange(20) % 4] + 0.01 * torch.randn(20, 6, generator=gen)
    res = balanced_kmeans(x, 4)
    assert res.labels.tolist() == [i % 4 for i in range(20)]  # canonical: group of point 0 first
    expected = torch.stack([x[g::4].mean(0) for g in range(4)])
    torch.testing.assert_close(res.centroids, expected, atol=1e-5, rtol=0)
    assert res.inertia == pytest.approx(inertia_of(x, res.labels, 4), rel=1e-5)
    assert res.inertia < 20 * 6 * 0.01**2 * 2


def test_balance_wins_over_geometry() -> None:
    # 8 points at one spot and 2 far away: k=2 must still cut 5/5.
    x = torch.cat([torch.zeros(8, 3), torch.full((2, 3), 5.0)])
    res = balanced_kmeans(x, 2)
    check_balanced(res.labels, 10, 2)
    assert res.labels[8] == res.labels[9]  # the far pair stays together


def test_duplicate_points_and_other_dtypes() -> None:
    x = torch.ones(30, 4, dtype=torch.float64)
    res = balanced_kmeans(x, 7)
    check_balanced(res.labels, 30, 7)
    assert res.inertia == pytest.approx(0.0, abs=1e-9)
    res16 = balanced_kmeans(unit_rows(64, 8).half(), 8)
    check_balanced(res16.labels, 64, 8)


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("x", "k"),
    [
        (torch.randn(10, 4), 0),
        (torch.randn(10, 4), -3),
        (torch.randn(10, 4), 11),
        (torch.randn(10), 2),
        (torch.randn(2, 5, 4), 2),
        (torch.randn(10, 0), 2),
        (torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [1.0, 1.0]]), 2),
        (torch.tensor([[0.0, 1.0], [float("inf"), 0.0], [1.0, 1.0]]), 2),
    ],
)
def test_bad_input_raises_babelmoe_error(x: torch.Tensor, k: int) -> None:
    with pytest.raises(BabelmoeError) as info:
        balanced_kmeans(x, k)
    assert info.value.fix


def test_max_iter_must_be_positive() -> None:
    with pytest.raises(BabelmoeError):
        balanced_kmeans(torch.randn(10, 4), 2, max_iter=0)
    res = balanced_kmeans(torch.randn(40, 4), 4, max_iter=1)
    check_balanced(res.labels, 40, 4)
    assert res.n_iter == 1


def test_assignment_rejects_bad_costs() -> None:
    with pytest.raises(BabelmoeError):
        balanced_assignment(torch.zeros(3, 4))
    with pytest.raises(BabelmoeError):
        balanced_assignment(torch.tensor([[0.0, float("nan")], [1.0, 2.0]]))


# ------------------------------------------------------------------------------ assignment step


@pytest.mark.parametrize("trial", range(60))
def test_assignment_is_optimal_against_hungarian(trial: int) -> None:
    gen = torch.Generator().manual_seed(trial)
    n = int(torch.randint(2, 48, (1,), generator=gen))
    k = int(torch.randint(1, n + 1, (1,), generator=gen))
    cost = torch.rand(n, k, generator=gen)
    if trial % 3 == 0:
        cost = torch.round(cost * 4) / 4  # many ties
    labels = balanced_assignment(cost)
    check_balanced(labels, n, k)
    ours = float(cost.double()[torch.arange(n), labels].sum())
    assert ours == pytest.approx(optimal_balanced_cost(cost.double().numpy()), abs=1e-5)


@pytest.mark.parametrize(("n", "k"), [(120, 12), (130, 12), (200, 40)])
def test_assignment_optimal_on_kmeans_like_costs(n: int, k: int) -> None:
    # Costs |mu|^2 - 2<x, mu> with the centroids far from balanced: the greedy answer is poor.
    x = blobs(n, 10, 3, 0.4, seed=n)
    mu = x[:k] * 0.7
    cost = (mu * mu).sum(1)[None, :] - 2 * x @ mu.T
    labels = balanced_assignment(cost)
    check_balanced(labels, n, k)
    ours = float(cost.double()[torch.arange(n), labels].sum())
    assert ours == pytest.approx(optimal_balanced_cost(cost.double().numpy()), abs=1e-4)


def test_swap_phase_lowers_inertia_and_keeps_sizes() -> None:
    x = unit_rows(160, 32, seed=5)
    labels = torch.arange(160) % 20
    before = inertia_of(x, labels, 20)
    sq = (x * x).sum(1)
    p = x @ km._means(x, labels, 20).T
    new, swaps, gain = km._swap_phase(x, sq, x @ x.T, labels, p, before, 1e-9)
    assert swaps > 0
    assert torch.equal(torch.bincount(new, minlength=20), torch.bincount(labels, minlength=20))
    after = inertia_of(x, new, 20)
    assert after < before
    assert before - after == pytest.approx(gain, rel=1e-3)  # the swap formula is exact
    # The same without a Gram matrix (the path for very large layers).
    new2, swaps2, _ = km._swap_phase(x, sq, None, labels, p, before, 1e-9)
    assert swaps2 == swaps and torch.equal(new, new2)


@pytest.mark.parametrize(("n", "k"), [(203, 10), (160, 20), (97, 7)])
def test_candidate_dots_match_the_gram_matrix(n: int, k: int) -> None:
    x = unit_rows(n, 24, seed=n)
    labels = torch.arange(n) % k
    members = km._members(labels, k)  # [k, s], padded with -1 when n % k > 0
    gen = torch.Generator().manual_seed(1)
    near = torch.stack([torch.randperm(k, generator=gen)[:3] for _ in range(n)])  # [n, 3]
    got = km._candidate_dots(x, near, members)  # [n, 3 * s]
    partner = members[near].reshape(n, -1)
    want = (x @ x.T).gather(1, partner.clamp_min(0))
    filled = partner >= 0
    torch.testing.assert_close(got[filled], want[filled], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("n", "k"), [(203, 10), (330, 16)])
def test_swap_phase_without_gram_keeps_its_dots_up_to_date(n: int, k: int) -> None:
    # Several passes with unequal sizes (n % k > 0): the incrementally updated dot products
    # must lead to the same swaps as reading them from the Gram matrix.
    x = unit_rows(n, 16, seed=n)
    labels = torch.arange(n) % k
    before = inertia_of(x, labels, k)
    sq = (x * x).sum(1)
    p = x @ km._means(x, labels, k).T
    new, swaps, gain = km._swap_phase(x, sq, x @ x.T, labels, p, before, 1e-9)
    new2, swaps2, gain2 = km._swap_phase(x, sq, None, labels, p, before, 1e-9)
    assert swaps > k  # more than one pass
    assert swaps2 == swaps and torch.equal(new, new2)
    assert gain2 == pytest.approx(gain, rel=1e-6)
    assert before - inertia_of(x, new2, k) == pytest.approx(gain2, rel=1e-3)


# Inertia of the code before the change (commit 55a6d98, both of its paths gave this) for
# unit_rows(1100, 16, seed=0), k = 16, seed 0: 68-69 rows a cluster, like the 74 of a
# Qwen2.5-7B layer where that code's path without a Gram matrix was 40x slower.
OLD_INERTIA_1100x16 = 806.7577335731892


def test_layers_above_the_gram_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    x, k = unit_rows(1100, 16, seed=0), 16
    with_gram = balanced_kmeans(x, k)
    calls = []
    real = km._candidate_dots
    monkeypatch.setattr(km, "_GRAM_MAX", 1100 * 1100 - 1)  # as a layer just above the limit
    monkeypatch.setattr(km, "_candidate_dots", lambda *a: (calls.append(1), real(*a))[1])
    res = balanced_kmeans(x, k)
    assert calls  # the path without a Gram matrix ran
    check_balanced(res.labels, 1100, k)
    assert res.inertia == pytest.approx(inertia_of(x, res.labels, k), rel=1e-6)
    assert res.inertia <= 1.005 * OLD_INERTIA_1100x16
    assert res.inertia <= 1.005 * with_gram.inertia
    again = balanced_kmeans(x, k)
    assert torch.equal(res.labels, again.labels)  # deterministic on this path too


# ------------------------------------------------------------------------------ quality


@pytest.mark.parametrize(
    "case",
    [
        "random 515x64 k=32",  # like FFN rows: high-dimensional, little structure, n % k = 3
        "blobs 600x32 k=20",  # as many true clusters as k
        "blobs 420x64 k=30",  # many loose clusters
    ],
)
def test_inertia_within_one_percent_of_k_means_constrained(case: str) -> None:
    kmc = pytest.importorskip("k_means_constrained")
    x, k = {
        "random 515x64 k=32": (unit_rows(515, 64, seed=1), 32),
        "blobs 600x32 k=20": (blobs(600, 32, 20, 0.3, seed=1), 20),
        "blobs 420x64 k=30": (blobs(420, 64, 200, 1.0, seed=1), 30),
    }[case]
    n = x.shape[0]
    ref = kmc.KMeansConstrained(  # MoEfication's reference: min-cost flow, best of 10 inits
        n_clusters=k, size_min=n // k, size_max=math.ceil(n / k), random_state=0
    ).fit(x.numpy())
    ref_inertia = inertia_of(x, torch.from_numpy(np.asarray(ref.labels_)).long(), k)
    res = balanced_kmeans(x, k)
    check_balanced(res.labels, n, k)
    assert res.inertia <= 1.01 * ref_inertia


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_quality_and_is_repeatable() -> None:
    x = blobs(2048, 64, 50, 0.7, seed=9)
    cpu = balanced_kmeans(x, 64)
    gpu = balanced_kmeans(x.cuda(), 64)
    assert gpu.labels.device.type == "cuda"
    check_balanced(gpu.labels.cpu(), 2048, 64)
    assert gpu.inertia == pytest.approx(cpu.inertia, rel=0.01)
    again = balanced_kmeans(x.cuda(), 64)
    assert torch.equal(gpu.labels, again.labels)  # no float atomics: repeatable on GPU too
