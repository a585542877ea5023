"""Exactly balanced k-means in pure PyTorch, on CPU or CUDA.

Stage 1 ("split") cuts every FFN into ``k`` experts of equal size by clustering the rows of
``up_proj``. Sizes must be exactly balanced: ``r = n % k`` clusters get ``ceil(n / k)`` rows, the
other ``k - r`` get ``floor(n / k)``. This is what MoEfication gets from ``k-means-constrained``
(Lloyd iterations whose assignment step is a min-cost flow); here the same optimisation runs as
batched tensor code, so it scales to 7B-class layers on a GPU.

Method
------
1. **Init**: greedy k-means++ (as scikit-learn: ``2 + ln k`` candidates per step, keep the one
   that lowers the potential most). The random numbers come from an explicitly seeded CPU
   ``torch.Generator`` and are consumed the same way on every device.
2. **Lloyd iterations** whose assignment step solves the capacity-constrained transportation
   problem exactly::

       minimise  sum_i cost[i, label_i]
       s.t.      every cluster holds floor(n/k) or ceil(n/k) points,

   with ``cost[i, j] = |mu_j|^2 - 2 <x_i, mu_j>`` (the squared distance minus ``|x_i|^2``, which
   does not depend on the assignment). The update step sets each centroid to its cluster mean.
   Inertia never increases, and the loop stops when the labels stop changing or the relative
   inertia improvement drops below ``tol``.
3. **Assignment, part 1 -- auction** (Bertsekas' auction with epsilon-scaling for transportation
   problems, Jacobi form, fully vectorised). Every cluster owns ``s = ceil(n/k)`` slots, each with
   its own price. When ``r > 0`` one slot per cluster is *optional*, and ``k - r`` identical
   *dummy* bidders (cost 0, allowed only on optional slots) make the problem square, so a
   complete assignment is always exactly balanced and epsilon-scaling stays valid. In a round
   every unassigned point bids for the cheapest slot of its best cluster, raising that slot's
   price by (second-best - best + eps); each cluster matches its bids (highest first) to its
   slots (cheapest first). Prices are warm-started across Lloyd iterations, so late iterations
   need only a few rounds. The result is exactly balanced and within ``n * eps`` of optimal.
4. **Assignment, part 2 -- exact polish by negative-cycle cancelling** on the ``k``-node cluster
   graph: edge ``j -> l`` costs ``min over points i in j of cost[i, l] - cost[i, j]`` (the
   cheapest move of one point from j to l); with ``r > 0`` a slack node allows a path from a
   large cluster to a small one. A point set is optimal iff this graph has no negative cycle.
   Bellman-Ford (batched over all nodes, one ``[k, k]`` min per step) finds cycles in its
   predecessor graph; all vertex-disjoint cycles found are applied at once, until none is left
   (up to a float tolerance). Because the auction ends near the optimum this takes few passes.

Everything is ``O(n k)`` memory; each auction round and Bellman-Ford step is a handful of batched
kernels, so the algorithm runs the same way on CPU and GPU.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from babelmoe.errors import BabelmoeError

__all__ = ["KMeansResult", "balanced_assignment", "balanced_kmeans"]

log = logging.getLogger(__name__)

_INF = float("inf")
_DUMMY = -2  # holder id of a dummy bidder (they are identical, so they need no own ids)


@dataclass
class KMeansResult:
    """The outcome of :func:`balanced_kmeans`.

    Attributes:
        labels: ``[n]`` int64 cluster of every row, in ``[0, k)``, canonically numbered: the
            ``n % k`` larger clusters first, then by smallest member index within each size.
        centroids: ``[k, d]`` float32 cluster means, in label order.
        inertia: sum over rows of the squared Euclidean distance to their centroid.
        n_iter: Lloyd iterations run.
    """

    labels: torch.Tensor
    centroids: torch.Tensor
    inertia: float
    n_iter: int


# --------------------------------------------------------------------------------------------
# Assignment step: auction (near-optimal, exactly balanced) + negative-cycle polish (exact)
# --------------------------------------------------------------------------------------------


@dataclass
class _AuctionState:
    """Slots and prices of the auction, kept between Lloyd iterations (warm start).

    ``price``, ``holder`` and ``optional`` are ``[k, s]``; every row is kept sorted by price.
    Holders are ``0..n-1`` for points, ``_DUMMY`` for a dummy, ``-1`` for an empty slot.
    """

    price: torch.Tensor  # [k, s] float32
    holder: torch.Tensor  # [k, s] int64
    optional: torch.Tensor  # [k, s] bool, exactly one True per row when r > 0


def _sizes(n: int, k: int) -> tuple[int, int]:
    """(floor(n/k), n % k)."""
    return n // k, n % k


def _new_state(n: int, k: int, device: torch.device) -> _AuctionState:
    f, r = _sizes(n, k)
    s = f + (1 if r else 0)
    optional = torch.zeros(k, s, dtype=torch.bool, device=device)
    if r:
        optional[:, -1] = True
    return _AuctionState(
        price=torch.zeros(k, s, device=device),
        holder=torch.full((k, s), -1, dtype=torch.int64, device=device),
        optional=optional,
    )


def _sort_rows(st: _AuctionState) -> None:
    """Restore the invariant: each cluster's slots sorted by ascending price."""
    st.price, order = st.price.sort(dim=1, stable=True)
    st.holder = st.holder.gather(1, order)
    st.optional = st.optional.gather(1, order)


def _real_round(cost: torch.Tensor, st: _AuctionState, bidders: torch.Tensor, eps: float) -> None:
    """One Jacobi round: every unassigned point in ``bidders`` [u] bids for one slot."""
    k, s = st.price.shape
    u = bidders.numel()
    c = cost[bidders]  # [u, k]
    qmin = st.price[:, 0]  # [k] cheapest slot per cluster
    q2 = st.price[:, 1] if s > 1 else torch.full_like(qmin, _INF)  # [k] second cheapest
    val = c + qmin  # [u, k] what each cluster costs the bidder now
    if k > 1:
        top = val.topk(2, dim=1, largest=False, sorted=True)
        best_j = top.indices[:, 0]  # [u]
        second = top.values[:, 1]  # [u] best other cluster
    else:
        best_j = torch.zeros(u, dtype=torch.int64, device=cost.device)
        second = torch.full((u,), _INF, device=cost.device)
    c_best = c.gather(1, best_j[:, None]).squeeze(1)  # [u]
    second = torch.minimum(second, c_best + q2[best_j])  # or the next slot of the same cluster
    # New price of the slot: the bidder ends up paying its second-best total + eps. When the
    # bidder has no alternative at all (k == 1 and s == 1), any finite raise is fine.
    bid = torch.where(torch.isfinite(second), second - c_best, qmin[best_j]) + eps  # [u]

    # Group bids by cluster, highest first: rank t within its cluster goes to slot t.
    order = torch.argsort(bid, descending=True, stable=True)
    order = order[torch.argsort(best_j[order], stable=True)]
    j_sorted = best_j[order]
    counts = torch.bincount(j_sorted, minlength=k)  # [k]
    starts = torch.cumsum(counts, 0) - counts  # [k]
    rank = torch.arange(u, device=cost.device) - starts[j_sorted]  # [u]
    keep = rank < s
    bids = torch.full((k, s), -_INF, device=cost.device)  # [k, s] descending per row
    who = torch.full((k, s), -1, dtype=torch.int64, device=cost.device)
    bids[j_sorted[keep], rank[keep]] = bid[order][keep]
    who[j_sorted[keep], rank[keep]] = bidders[order][keep]
    accept = bids > st.price  # [k, s] a prefix of each row (bids fall, prices rise)
    st.price = torch.where(accept, bids, st.price)
    st.holder = torch.where(accept, who, st.holder)
    _sort_rows(st)


def _dummy_round(st: _AuctionState, n_free: int, eps: float) -> None:
    """Place ``n_free`` unassigned (identical) dummies on the cheapest optional slots at once.

    They all pay the price of the cheapest optional slot left over, plus eps: for identical
    bidders this is the Gauss-Seidel auction done in one step, and it keeps eps-CS.
    """
    k = st.price.shape[0]
    opt_col = st.optional.to(torch.int64).argmax(dim=1)  # [k] the optional slot of each row
    rows = torch.arange(k, device=st.price.device)
    q_opt = st.price[rows, opt_col]  # [k]
    q_sorted, order = q_opt.sort(stable=True)
    take = order[:n_free]  # [n_free] clusters whose optional slot the dummies take
    new_price = q_sorted[n_free] + eps
    st.price[take, opt_col[take]] = new_price
    st.holder[take, opt_col[take]] = _DUMMY
    _sort_rows(st)


def _auction(
    cost: torch.Tensor, st: _AuctionState, eps_list: list[float]
) -> tuple[_AuctionState, int]:
    """Run epsilon-scaling phases; returns the state (every point placed) and rounds used."""
    n, k = cost.shape
    f, r = _sizes(n, k)
    n_dummy = k - r if r else 0
    rounds = 0
    # Prices only matter up to a common shift; keep them near zero.
    st.price = st.price - st.price[:, 0].min()
    for eps in eps_list:
        # Drop every holder that violates eps-complementary slackness under the new costs.
        is_real = (st.holder >= 0) & (st.holder < n)  # [k, s]
        is_dummy = st.holder == _DUMMY
        qmin = st.price[:, 0]
        best = (cost + qmin).min(dim=1).values  # [n] cheapest total per point
        h = st.holder.clamp(0, n - 1)
        rows = torch.arange(k, device=cost.device)[:, None].expand_as(h)
        paid = cost[h, rows] + st.price  # [k, s] what each holder pays
        bad_real = is_real & (paid > best[h] + eps)
        if n_dummy:
            opt_price = st.price[st.optional]  # [k] (row order)
            bad_dummy = is_dummy & (st.price > opt_price.min() + eps)
        else:
            bad_dummy = torch.zeros_like(is_dummy)
        st.holder = torch.where(bad_real | bad_dummy, torch.full_like(st.holder, -1), st.holder)
        while True:
            placed = torch.zeros(n, dtype=torch.bool, device=cost.device)
            held = st.holder[(st.holder >= 0) & (st.holder < n)]
            placed[held] = True
            bidders = (~placed).nonzero().squeeze(1)
            free_dummies = n_dummy - int((st.holder == _DUMMY).sum())
            if bidders.numel() == 0 and free_dummies == 0:
                break
            rounds += 1
            if bidders.numel():
                _real_round(cost, st, bidders, eps)
            free_dummies = n_dummy - int((st.holder == _DUMMY).sum())
            if free_dummies:
                _dummy_round(st, free_dummies, eps)
    return st, rounds


def _labels_from_state(st: _AuctionState, n: int) -> torch.Tensor:
    k, s = st.holder.shape
    labels = torch.empty(n, dtype=torch.int64, device=st.holder.device)
    rows = torch.arange(k, device=st.holder.device)[:, None].expand(k, s)
    real = (st.holder >= 0) & (st.holder < n)
    labels[st.holder[real]] = rows[real]
    return labels


def _pred_cycles(pred: torch.Tensor, w: torch.Tensor, tol: float) -> list[list[int]]:
    """Negative cycles of the Bellman-Ford predecessor graph ``pred`` [m] (-1: none).

    ``pred[v] = u`` stands for the edge ``u -> v``. The predecessor graph is functional, so its
    cycles are vertex-disjoint; each is returned as its nodes in edge order.
    """
    m = pred.numel()
    sink = m
    p = torch.where(pred < 0, torch.full_like(pred, sink), pred)
    p = torch.cat([p, p.new_tensor([sink])])  # [m + 1], the sink points to itself
    for _ in range(max(1, math.ceil(math.log2(m + 1)))):
        p = p[p]  # p = pred^(2^t): after the loop every node has walked >= m steps
    on_cycle = p[:m][p[:m] != sink].unique().tolist()
    if not on_cycle:
        return []
    pred_list = pred.tolist()
    seen: set[int] = set()
    cycles: list[list[int]] = []
    for start in on_cycle:
        if start in seen:
            continue
        cyc = [start]
        v = pred_list[start]
        while v != start:
            cyc.append(v)
            v = pred_list[v]
        seen.update(cyc)
        cyc.reverse()  # now in edge order: cyc[t] -> cyc[t + 1]
        weight = sum(float(w[cyc[t], cyc[(t + 1) % len(cyc)]]) for t in range(len(cyc)))
        if weight < -tol:
            cycles.append(cyc)
    return cycles


def _negative_cycles(w: torch.Tensor, tol: float) -> list[list[int]]:
    """Vertex-disjoint negative cycles of the dense graph ``w`` [m, m] (inf: no edge), or []."""
    m = w.shape[0]
    d = torch.zeros(m, dtype=w.dtype, device=w.device)  # a virtual source reaches all nodes at 0
    pred = torch.full((m,), -1, dtype=torch.int64, device=w.device)
    for it in range(4 * m + 8):
        cand, arg = (d[:, None] + w).min(dim=0)  # [m] best one-edge extension into each node
        better = cand < d - tol
        if not bool(better.any()):
            return []
        d = torch.where(better, cand, d)
        pred = torch.where(better, arg, pred)
        if it >= 1:
            cycles = _pred_cycles(pred, w, tol)
            if cycles:
                return cycles
    raise RuntimeError("Bellman-Ford did not settle; this is a bug in balanced k-means")


def _polish(cost: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Make a balanced assignment exactly optimal by cancelling negative cycles.

    Args:
        cost: [n, k] assignment costs.
        labels: [n] a feasible (exactly balanced) assignment.

    Returns:
        The optimal labels [n] and the number of cycles cancelled.
    """
    n, k = cost.shape
    f, r = _sizes(n, k)
    dev = cost.device
    cost64 = cost.double()  # differences of float32 values are exact in float64
    tol = 1e-9 * max(1.0, float(cost64.abs().max()))
    m = k + 1 if r else k
    cancelled = 0
    while True:
        gain = cost64 - cost64.gather(1, labels[:, None])  # [n, k] cost of moving i to l
        w = torch.full((m, m), _INF, dtype=torch.float64, device=dev)  # [m, m] edge weights
        w[:k, :k] = w[:k, :k].scatter_reduce(
            0, labels[:, None].expand(n, k), gain, reduce="amin", include_self=True
        )
        w.diagonal().fill_(_INF)
        if r:  # slack node k: path from a large cluster A to a small cluster B, closed via k
            size = torch.bincount(labels, minlength=k)  # [k]
            zero, inf = torch.zeros(k, dtype=w.dtype, device=dev), torch.full_like(w[k, :k], _INF)
            w[:k, k] = torch.where(size == f, zero, inf)  # B -> slack: B may grow
            w[k, :k] = torch.where(size == f + 1, zero, inf)  # slack -> A: A may shrink
        cycles = _negative_cycles(w, tol)
        if not cycles:
            return labels, cancelled
        src, dst = [], []
        for cyc in cycles:
            for t, j in enumerate(cyc):
                l = cyc[(t + 1) % len(cyc)]
                if j < k and l < k:
                    src.append(j)
                    dst.append(l)
        src_t = torch.tensor(src, dtype=torch.int64, device=dev)  # [E]
        dst_t = torch.tensor(dst, dtype=torch.int64, device=dev)  # [E]
        # For each edge j -> l move the member of j that is cheapest to move to l.
        g = gain[:, dst_t].T  # [E, n]
        g = torch.where(labels[None, :] == src_t[:, None], g, torch.full_like(g, _INF))
        movers = g.argmin(dim=1)  # [E], distinct: each cluster is the source of one edge
        labels = labels.clone()
        labels[movers] = dst_t
        cancelled += len(cycles)


def _eps_schedule(cost: torch.Tensor, warm: bool) -> list[float]:
    """Epsilon-scaling phases, relative to the typical spread of a row's costs."""
    spread = float((cost.max(dim=1).values - cost.min(dim=1).values).mean())
    spread = max(spread, 1e-12)
    final = spread * 1e-4
    first = final * 4**2 if warm else spread / 4
    eps, out = first, []
    while eps > final:
        out.append(eps)
        eps /= 4
    out.append(final)
    return out


def balanced_assignment(
    cost: torch.Tensor, *, state: _AuctionState | None = None
) -> tuple[torch.Tensor, _AuctionState]:
    """Exactly optimal balanced assignment of ``n`` items to ``k`` bins.

    Minimises ``sum_i cost[i, labels[i]]`` subject to every bin holding ``floor(n/k)`` or
    ``ceil(n/k)`` items (which bins are larger is part of the optimisation).

    Args:
        cost: [n, k] finite costs, any float dtype; computed in float32 on its device.
        state: auction prices from a previous call with the same shape (warm start).

    Returns:
        labels [n] int64 and the auction state to pass to the next call.
    """
    n, k = cost.shape
    cost = cost.float()
    if k == 1:
        return torch.zeros(n, dtype=torch.int64, device=cost.device), _new_state(n, k, cost.device)
    warm = state is not None
    st = state if state is not None else _new_state(n, k, cost.device)
    st, rounds = _auction(cost, st, _eps_schedule(cost, warm))
    labels = _labels_from_state(st, n)
    labels, cancelled = _polish(cost, labels)
    log.debug("balanced assignment: %d auction rounds, %d cycles cancelled", rounds, cancelled)
    return labels, st


# --------------------------------------------------------------------------------------------
# Lloyd iterations
# --------------------------------------------------------------------------------------------


def _check_input(x: torch.Tensor, k: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise BabelmoeError(
            f"balanced k-means needs a 2-D [n, d] tensor, got {shape}",
            "pass one weight matrix with one row per item to cluster",
        )
    n = x.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise BabelmoeError(f"number of clusters must be an integer >= 1, got {k!r}", "use k >= 1")
    if k > n:
        raise BabelmoeError(
            f"cannot split {n} rows into {k} non-empty clusters",
            f"use at most {n} experts for this layer",
        )
    if x.shape[1] == 0:
        raise BabelmoeError("balanced k-means got rows of width 0", "pass a non-empty matrix")
    if not bool(torch.isfinite(x).all()):
        raise BabelmoeError(
            "balanced k-means got NaN or infinite values",
            "check the weights (a failed dequantisation or load) before splitting",
        )


def _kmeans_pp(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ seeding: [n, d] -> [k, d] centroids (rows of x).

    The uniforms come from ``gen`` on the CPU and are mapped to rows by inverse-CDF search on
    x's device, so the choice depends only on the seed (and float rounding), not on the device.
    """
    n, _ = x.shape
    trials = 2 + int(math.log(k))
    u = torch.rand(k * trials + 1, generator=gen, dtype=torch.float64).to(x.device)
    sq = (x * x).sum(dim=1)  # [n]
    first = min(int(u[0].item() * n), n - 1)
    idx = torch.empty(k, dtype=torch.int64, device=x.device)
    idx[0] = first
    d2 = (sq - 2 * x @ x[first] + sq[first]).clamp_min(0)  # [n] squared distance to nearest
    for c in range(1, k):
        cdf = torch.cumsum(d2.double(), 0)  # [n]
        total = cdf[-1]
        r = u[1 + (c - 1) * trials : 1 + c * trials] * total  # [trials]
        cand = torch.searchsorted(cdf, r).clamp_max(n - 1)  # [trials] candidate rows
        dc = (sq[None, :] - 2 * x[cand] @ x.T + sq[cand, None]).clamp_min(0)  # [trials, n]
        pot = torch.minimum(dc, d2[None, :]).double().sum(dim=1)  # [trials] resulting potential
        best = pot.argmin()
        idx[c] = cand[best]
        d2 = torch.minimum(dc[best], d2)
    return x[idx].clone()


def _canonical(labels: torch.Tensor, k: int) -> torch.Tensor:
    """Permutation ``new_of_old`` [k]: larger clusters first, then by smallest member index."""
    n = labels.numel()
    size = torch.bincount(labels, minlength=k)  # [k]
    first = torch.full((k,), n, dtype=torch.int64, device=labels.device)
    first = first.scatter_reduce(0, labels, torch.arange(n, device=labels.device), reduce="amin")
    key = (size.max() - size) * (n + 1) + first  # [k] size descending, then first member
    order = torch.argsort(key)  # old labels in new order
    new_of_old = torch.empty_like(order)
    new_of_old[order] = torch.arange(k, device=labels.device)
    return new_of_old


def balanced_kmeans(
    x: torch.Tensor, k: int, *, seed: int = 0, max_iter: int = 50, tol: float = 1e-6
) -> KMeansResult:
    """Cluster the rows of ``x`` into ``k`` clusters of exactly balanced size.

    Every cluster gets ``floor(n/k)`` or ``ceil(n/k)`` rows; see the module docstring for the
    method. Runs in float32 on x's device and is deterministic for a seed on a given device.

    Args:
        x: [n, d] rows to cluster (the caller normalises them if wanted).
        k: number of clusters, ``1 <= k <= n``.
        seed: seed of the k-means++ initialisation.
        max_iter: most Lloyd iterations.
        tol: stop when an iteration lowers the inertia by less than this fraction.

    Returns:
        A :class:`KMeansResult` with canonical labels (larger clusters first, then by smallest
        member index).

    Raises:
        BabelmoeError: k < 1, k > n, x not 2-D, or x not finite.
    """
    _check_input(x, k)
    x = x.detach().float()
    n, _ = x.shape
    gen = torch.Generator(device="cpu").manual_seed(seed)
    centroids = _kmeans_pp(x, k, gen)  # [k, d]
    sq = (x * x).sum(dim=1)  # [n]
    state: _AuctionState | None = None
    labels = torch.full((n,), -1, dtype=torch.int64, device=x.device)
    inertia = _INF
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (n_iter is reported)
        cost = (centroids * centroids).sum(dim=1)[None, :] - 2 * (x @ centroids.T)  # [n, k]
        new_labels, state = balanced_assignment(cost, state=state)
        # Update: each centroid is the mean of its members.
        size = torch.bincount(new_labels, minlength=k).to(x.dtype)  # [k]
        sums = torch.zeros_like(centroids).index_add_(0, new_labels, x)  # [k, d]
        centroids = sums / size[:, None]
        new_inertia = float((sq + cost.gather(1, new_labels[:, None]).squeeze(1)).double().sum())
        changed = int((new_labels != labels).sum())
        labels = new_labels
        log.debug(
            "balanced k-means iter %d: inertia %.6g, %d labels changed", n_iter, new_inertia, changed
        )
        if changed == 0 or (n_iter > 1 and inertia - new_inertia <= tol * abs(inertia)):
            inertia = new_inertia
            break
        inertia = new_inertia
    new_of_old = _canonical(labels, k)
    labels = new_of_old[labels]
    perm = torch.argsort(new_of_old)  # old label of every new label
    centroids = centroids[perm]
    inertia = float(((x - centroids[labels]) ** 2).sum(dtype=torch.float64))
    return KMeansResult(labels=labels, centroids=centroids, inertia=inertia, n_iter=n_iter)
