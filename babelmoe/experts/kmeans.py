"""Exactly balanced k-means in pure PyTorch, on CPU or CUDA.

Stage 1 ("split") cuts every FFN into ``k`` experts of equal size by clustering the rows of
``up_proj``. Sizes must be exactly balanced: ``r = n % k`` clusters get ``ceil(n / k)`` rows, the
other ``k - r`` get ``floor(n / k)``. MoEfication gets this from ``k-means-constrained`` (Lloyd
iterations whose assignment step is a min-cost flow, on CPU); here the same optimisation runs
as batched tensor code, so it scales to 7B-class layers on a GPU, and a swap refinement goes
past Lloyd's fixed points.

Method (shapes: ``x`` [n, d], ``cost`` [n, k])
----------------------------------------------
1. **Init**: greedy k-means++ (as scikit-learn: ``2 + ln k`` candidates per step, keep the one
   that lowers the potential most). The uniforms come from an explicitly seeded CPU
   ``torch.Generator`` and are used the same way on every device; the global RNG is untouched.
2. **Lloyd iterations** whose assignment step solves the balanced transportation problem
   exactly (:func:`balanced_assignment`)::

       minimise  sum_i cost[i, label_i]      cost[i, j] = |mu_j|^2 - 2 <x_i, mu_j>
       s.t.      every cluster holds floor(n/k) or ceil(n/k) points

   (``cost`` is the squared distance minus ``|x_i|^2``, which does not depend on the
   assignment; which clusters get the extra point is part of the optimisation). The update
   step sets each centroid to its cluster mean, so the inertia never increases. Lloyd stops
   when no label changes or the inertia falls by less than ``tol`` (relative).
3. **Swap refinement** (Hartigan-style, exact): from Lloyd's fixed point, swap pairs of points
   between clusters when that lowers the inertia *with* the centroids moving::

       delta(i in A <-> i' in B) = u_i(B) + u_i'(A) - |x_i - x_i'|^2 (1/|A| + 1/|B|)
       u_i(B) = 2 <x_i, mu_A - mu_B>

   Lloyd sees only the first two terms. The candidates for each point are the members of its
   8 most promising other clusters ([n, 8 * s] deltas per pass); each pass applies the best
   swaps greedily, one per cluster, so their deltas add up exactly. Then Lloyd runs again,
   and so on until neither changes anything. On FFN rows (nearly orthogonal, 8 to 43 rows a
   cluster) this lowers the inertia by about 2% below the best of k-means-constrained's 10
   inits.

The exact assignment step, in three parts:

a. **Auction** (cold start only: the first Lloyd iteration). Bertsekas' auction for
   transportation problems with epsilon-scaling, Jacobi form, vectorised over bidders: every
   cluster owns ``s = ceil(n/k)`` slots with their own prices ([k, s], rows kept sorted). When
   ``r > 0`` one slot per cluster is *optional* and ``k - r`` identical *dummy* bidders (cost
   0, optional slots only) make the problem square, so a complete assignment is exactly
   balanced and epsilon-scaling stays valid. In a round every unassigned point bids for the
   cheapest slot of its best cluster, raising its price by (second best - best + eps); each
   cluster matches its bids (highest first) to its slots (cheapest first). A phase stops once
   at most n/16 points are unassigned: the rest of a Jacobi auction is long displacement
   chains, one bid per round, which part c resolves in batched passes.
b. **Completion**: the few unassigned points take free slots greedily (exactly balanced).
c. **Polish by negative-cycle cancelling** on the k-node cluster graph ([k, k]): edge
   ``j -> l`` costs ``min over i in j of cost[i, l] - cost[i, j]``; with ``r > 0`` a slack
   node lets a large cluster pass its extra point to a small one. An assignment is optimal iff
   this graph has no negative cycle. Bellman-Ford from potentials (minus the auction prices, or
   the last iteration's labels), one batched [k, k] min per step, finds cycles in its
   predecessor graph; all of them (vertex-disjoint) are applied at once, until none is left
   (float64 weights, relative tolerance 1e-9). Later Lloyd iterations skip a and b: the
   previous labels are a feasible start a few cycles from the new optimum.

Memory is ``O(n k)`` plus an [n, n] Gram matrix when ``n**2 <= 2**28`` (up to 16384 rows).
Above that the swap refinement keeps only the ``[n, 8 s]`` dot products it needs: computed once
per swap phase by one batched product per cluster (the points that consider a cluster times its
members) and updated after each pass from the ``x @ x[swapped].T`` columns that the centroid
update needs anyway. (Until 2026-11-30 they were recomputed every pass by gathering
``[n, 8 s, d]`` rows: 40x slower, the "cliff" above 16384 rows. Same method; only float
rounding differs: a Qwen2.5-7B-shaped layer on an H200 ends 0.005% higher.) Every step is a
handful of batched kernels, with a host sync per auction round, Bellman-Ford step or swap pass,
so CPU and GPU run the same code. On one H200 a Llama-3-70B layer (28672 x 8192, k = 256)
takes 2.4-3.3 s, a Llama-2-7B layer (11008 x 4096) 0.5-0.7 s.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from babelmoe.errors import BabelmoeError

__all__ = ["KMeansResult", "balanced_assignment", "balanced_kmeans"]

logger = logging.getLogger(__name__)

_INF = float("inf")
_GRAM_MAX = 1 << 28  # keep an [n, n] Gram matrix (1 GiB in float32) up to this many entries
_CHUNK = 1 << 26  # entries of a temporary [clusters, P + s, d] block without a Gram matrix
_EPS_FIRST = 1 / 16  # first epsilon of a cold start, as a fraction of the cost spread
_EPS_FINAL = 1e-3  # last epsilon, as a fraction of the cost spread
_EPS_FACTOR = 4.0  # epsilon shrinks by this factor per phase
_STOP_FRACTION = 16  # an auction phase ends with at most n / this many points unassigned
_SERIAL_MAX_FLOP = 1 << 32  # on CPU, layers with n * n * d up to this run on one thread
_SWAP_CLUSTERS = 8  # swap refinement pairs a point with the members of this many clusters
_SWAP_TOL = 1e-6  # a swap must lower the inertia by this fraction of the mean squared norm
_SWAP_PASSES = 1000  # at most this many swap passes between two Lloyd phases
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
# Assignment step: auction (near-optimal, balanced) + completion + negative-cycle polish (exact)
# --------------------------------------------------------------------------------------------


@dataclass
class _AuctionState:
    """Slots and prices of the auction.

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
    val = c + qmin  # [u, k] what each cluster costs the bidder now (k >= 2 here)
    top = val.topk(2, dim=1, largest=False, sorted=True)
    best_j = top.indices[:, 0]  # [u]
    c_best = c.gather(1, best_j[:, None]).squeeze(1)  # [u]
    # Second best: the best other cluster, or the next slot of the same cluster.
    second = torch.minimum(top.values[:, 1], c_best + q2[best_j])  # [u]
    # New price of the slot: the bidder ends up paying its second-best total + eps.
    bid = second - c_best + eps  # [u]

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
    cost: torch.Tensor, st: _AuctionState, eps_list: list[float], stop_at: int
) -> tuple[_AuctionState, int]:
    """Run epsilon-scaling phases on ``cost`` [n, k]; returns the state and the rounds used.

    A phase ends once at most ``stop_at`` points are unassigned: the last few bids of a Jacobi
    auction form long displacement chains, one bid per round, which the cycle-cancelling
    polish resolves in a few batched passes instead. All dummies are always placed.
    """
    n, k = cost.shape
    r = _sizes(n, k)[1]
    n_dummy = k - r if r else 0
    dev = cost.device
    rounds = 0
    # Prices only matter up to a common shift; keep them near zero.
    st.price = st.price - st.price[:, 0].min()
    rows = torch.arange(k, device=dev)[:, None].expand_as(st.holder)  # [k, s]
    for eps in eps_list:
        # Drop every holder that violates eps-complementary slackness under the new costs.
        is_real = (st.holder >= 0) & (st.holder < n)  # [k, s]
        h = st.holder.clamp(0, n - 1)  # [k, s]
        best = (cost + st.price[:, 0]).min(dim=1).values  # [n] cheapest total per point
        paid = cost[h, rows] + st.price  # [k, s] what each holder pays
        drop = is_real & (paid > best[h] + eps)
        if n_dummy:
            q_opt_min = st.price[st.optional].min()
            drop |= (st.holder == _DUMMY) & (st.price > q_opt_min + eps)
        st.holder = torch.where(drop, torch.full_like(st.holder, -1), st.holder)
        while True:
            placed = torch.zeros(n, dtype=torch.bool, device=dev)
            placed[st.holder[(st.holder >= 0) & (st.holder < n)]] = True
            bidders = (~placed).nonzero().squeeze(1)  # [u]
            free_dummies = n_dummy - int((st.holder == _DUMMY).sum())
            if free_dummies:
                _dummy_round(st, free_dummies, eps)
                continue
            if bidders.numel() <= stop_at:
                break
            rounds += 1
            _real_round(cost, st, bidders, eps)
    return st, rounds


def _complete(cost: torch.Tensor, st: _AuctionState) -> torch.Tensor:
    """Labels [n] from the auction state, placing unassigned points greedily in free slots.

    All dummies are placed, so the empty slots are exactly as many as the unassigned points
    and every cluster ends with floor(n/k) or ceil(n/k) points.
    """
    n, k = cost.shape
    dev = cost.device
    s = st.holder.shape[1]
    rows = torch.arange(k, device=dev)[:, None].expand(k, s)
    real = (st.holder >= 0) & (st.holder < n)
    labels = torch.full((n,), -1, dtype=torch.int64, device=dev)
    labels[st.holder[real]] = rows[real]
    free = (st.holder == -1).sum(dim=1)  # [k] empty slots per cluster
    todo = (labels < 0).nonzero().squeeze(1)  # [u]
    if todo.numel():
        # Few points (at most n / 16), in order, each to its cheapest cluster with a free slot:
        # plain Python over each point's clusters sorted by cost (ties: lower cluster first).
        free_list = free.tolist()
        ranked = cost[todo].sort(dim=1, stable=True).indices.tolist()  # [u, k]
        chosen = []
        for row in ranked:
            j = next(j for j in row if free_list[j] > 0)
            free_list[j] -= 1
            chosen.append(j)
        labels[todo] = torch.tensor(chosen, dtype=torch.int64, device=dev)
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
    found: list[list[int]] = []
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
        found.append(cyc)
    # All edge weights in one gather (one host sync, not one per edge), summed per cycle.
    src = [j for cyc in found for j in cyc]
    dst = [cyc[(t + 1) % len(cyc)] for cyc in found for t in range(len(cyc))]
    idx = torch.tensor([src, dst], dtype=torch.int64, device=w.device)  # [2, edges]
    weights = w[idx[0], idx[1]].tolist()
    cycles: list[list[int]] = []
    at = 0
    for cyc in found:
        weight = sum(weights[at : at + len(cyc)])
        at += len(cyc)
        if weight < -tol:
            cycles.append(cyc)
    return cycles


def _negative_cycles(
    w: torch.Tensor, d0: torch.Tensor, tol: float
) -> tuple[list[list[int]], torch.Tensor]:
    """Vertex-disjoint negative cycles of the dense graph ``w`` [m, m] (inf: no edge).

    ``d0`` [m] are the starting labels (a virtual source reaches node v at cost d0[v]); good
    potentials (minus the auction prices, or the last call's labels) make Bellman-Ford settle
    in a few steps. Returns the cycles ([] if none) and the labels reached.
    """
    m = w.shape[0]
    d = d0.clone()
    pred = torch.full((m,), -1, dtype=torch.int64, device=w.device)
    for it in range(4 * m + 8):
        cand, arg = (d[:, None] + w).min(dim=0)  # [m] best one-edge extension into each node
        better = cand < d - tol
        if not bool(better.any()):
            return [], d
        d = torch.where(better, cand, d)
        pred = torch.where(better, arg, pred)
        if it >= 1:
            cycles = _pred_cycles(pred, w, tol)
            if cycles:
                return cycles, d
    raise RuntimeError("Bellman-Ford did not settle; this is a bug in balanced k-means")


def _polish(
    cost: torch.Tensor, labels: torch.Tensor, potential: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Make a balanced assignment exactly optimal by cancelling negative cycles.

    Args:
        cost: [n, k] assignment costs.
        labels: [n] a feasible (exactly balanced) assignment.
        potential: [k] starting Bellman-Ford labels: minus a price per cluster.

    Returns:
        The optimal labels [n], the final potentials [k] (float64) and the number of cycles
        cancelled.
    """
    n, k = cost.shape
    f, r = _sizes(n, k)
    dev = cost.device
    cost64 = cost.double()  # differences of float32 values are exact in float64
    tol = 1e-9 * max(1.0, float(cost64.abs().max()))
    m = k + 1 if r else k
    cancelled = 0
    d = torch.zeros(m, dtype=torch.float64, device=dev)  # [m] Bellman-Ford labels
    d[:k] = potential.double()
    if r:
        d[k] = d[:k].min()
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
        cycles, d = _negative_cycles(w, d, tol)
        if not cycles:
            return labels, d[:k], cancelled
        src, dst = [], []
        for cyc in cycles:
            for t, j in enumerate(cyc):
                to = cyc[(t + 1) % len(cyc)]
                if j < k and to < k:  # edges through the slack node move nothing
                    src.append(j)
                    dst.append(to)
        src_t = torch.tensor(src, dtype=torch.int64, device=dev)  # [E]
        dst_t = torch.tensor(dst, dtype=torch.int64, device=dev)  # [E]
        # For each edge j -> l move the member of j that is cheapest to move to l.
        g = gain[:, dst_t].T  # [E, n]
        g = torch.where(labels[None, :] == src_t[:, None], g, torch.full_like(g, _INF))
        movers = g.argmin(dim=1)  # [E], distinct: each cluster is the source of one edge
        labels = labels.clone()
        labels[movers] = dst_t
        cancelled += len(cycles)


def _eps_schedule(cost: torch.Tensor) -> list[float]:
    """Epsilon-scaling phases, relative to the typical spread of a row's costs.

    The final epsilon need not be tiny: the polish makes the result exact.
    """
    spread = float((cost.max(dim=1).values - cost.min(dim=1).values).mean())
    # Flat costs (all rows alike) still need an epsilon well above float32 resolution.
    spread = max(spread, 1e-4 * (1.0 + float(cost.abs().max())))
    final = spread * _EPS_FINAL
    eps = final / _EPS_FINAL * _EPS_FIRST
    out = []
    while eps > final:
        out.append(eps)
        eps /= _EPS_FACTOR
    out.append(final)
    return out


def _assign(
    cost: torch.Tensor, warm: tuple[torch.Tensor, torch.Tensor] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimal balanced labels [n] for ``cost`` [n, k], and their potentials [k].

    ``warm`` is (labels, potentials) of the previous Lloyd iteration: a feasible start that is
    usually a few cycles away from the new optimum, so only the polish runs. Without it the
    auction builds a near-optimal start first.
    """
    n, k = cost.shape
    if k == 1:
        zeros = torch.zeros(n, dtype=torch.int64, device=cost.device)
        return zeros, torch.zeros(1, dtype=torch.float64, device=cost.device)
    if warm is None:
        st = _new_state(n, k, cost.device)
        st, rounds = _auction(cost, st, _eps_schedule(cost), stop_at=max(4, n // _STOP_FRACTION))
        labels, potential = _complete(cost, st), -st.price[:, 0]
    else:
        (labels, potential), rounds = warm, 0
    labels, potential, cancelled = _polish(cost, labels, potential)
    logger.debug("balanced assignment: %d auction rounds, %d cycles cancelled", rounds, cancelled)
    return labels, potential


def balanced_assignment(cost: torch.Tensor) -> torch.Tensor:
    """Exactly optimal balanced assignment of ``n`` items to ``k`` bins.

    Minimises ``sum_i cost[i, labels[i]]`` subject to every bin holding ``floor(n/k)`` or
    ``ceil(n/k)`` items (which bins are the larger ones is part of the optimisation). Exact up
    to a relative tolerance of about 1e-9 on the float32 costs.

    Args:
        cost: [n, k] finite costs with ``1 <= k <= n``; computed in float32 on its device.

    Returns:
        labels [n] int64 in ``[0, k)``.
    """
    if cost.dim() != 2 or not 1 <= cost.shape[1] <= cost.shape[0]:
        raise BabelmoeError(
            f"balanced assignment needs an [n, k] cost matrix with 1 <= k <= n, got "
            f"{tuple(cost.shape)}",
            "pass one row per item and one column per bin",
        )
    if not bool(torch.isfinite(cost).all()):
        raise BabelmoeError("balanced assignment got NaN or infinite costs", "pass finite costs")
    return _assign(cost.float(), None)[0]


# --------------------------------------------------------------------------------------------
# Lloyd iterations
# --------------------------------------------------------------------------------------------


def _check_input(x: torch.Tensor, k: int, max_iter: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise BabelmoeError(
            f"balanced k-means needs a 2-D [n, d] tensor, got {shape}",
            "pass one weight matrix with one row per item to cluster",
        )
    n = x.shape[0]
    if max_iter < 1:
        raise BabelmoeError(f"max_iter must be >= 1, got {max_iter}", "use e.g. max_iter=50")
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


def _kmeans_pp(
    x: torch.Tensor, k: int, gen: torch.Generator, gram: torch.Tensor | None
) -> torch.Tensor:
    """Greedy k-means++ seeding: [n, d] -> [k, d] centroids (rows of x).

    ``gram`` is ``x @ x.T`` [n, n] if the caller keeps one (row gathers instead of k skinny
    matrix products).

    The uniforms come from ``gen`` on the CPU and are mapped to rows by inverse-CDF search on
    x's device, so the choice depends only on the seed (and float rounding), not on the device.
    """
    n, _ = x.shape
    trials = 2 + int(math.log(k))
    u = torch.rand(k * trials + 1, generator=gen, dtype=torch.float64).to(x.device)
    sq = (x * x).sum(dim=1)  # [n]

    def sq_dist(rows: torch.Tensor) -> torch.Tensor:  # [t] row ids -> [t, n]
        dots = gram[rows] if gram is not None else (x @ x[rows].T).T
        return (sq[None, :] - 2 * dots + sq[rows, None]).clamp_min(0)

    first = torch.clamp((u[:1] * n).long(), max=n - 1)  # [1]
    idx = torch.empty(k, dtype=torch.int64, device=x.device)
    idx[0] = first[0]
    d2 = sq_dist(first)[0]  # [n] squared distance to the nearest chosen centroid
    for c in range(1, k):
        cdf = torch.cumsum(d2.double(), 0)  # [n]
        r = u[1 + (c - 1) * trials : 1 + c * trials] * cdf[-1]  # [trials]
        cand = torch.searchsorted(cdf, r).clamp_max(n - 1)  # [trials] candidate rows
        dc = sq_dist(cand)  # [trials, n]
        pot = torch.minimum(dc, d2[None, :]).double().sum(dim=1)  # [trials] potential after
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


def _means(x: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """[n, d], [n] -> [k, d] cluster means (every cluster is non-empty).

    On GPU a one-hot matrix product instead of ``index_add_``, whose float atomics would make
    the sums, and so the labels, vary from run to run.
    """
    size = torch.bincount(labels, minlength=k).to(x.dtype)  # [k]
    if x.device.type == "cpu":
        sums = torch.zeros(k, x.shape[1], dtype=x.dtype).index_add_(0, labels, x)  # [k, d]
    else:
        one_hot = labels[None, :] == torch.arange(k, device=x.device)[:, None]  # [k, n]
        sums = one_hot.to(x.dtype) @ x  # [k, d]
    return sums / size[:, None]


def _members(labels: torch.Tensor, k: int) -> torch.Tensor:
    """[n] labels -> [k, s] member table (row j: the points of cluster j, padded with -1)."""
    n = labels.numel()
    order = torch.argsort(labels, stable=True)  # [n] points grouped by cluster
    size = torch.bincount(labels, minlength=k)  # [k]
    starts = torch.cumsum(size, 0) - size  # [k]
    pos = torch.arange(n, device=labels.device) - starts[labels[order]]  # [n] slot in its row
    table = torch.full((k, int(size.max())), -1, dtype=torch.int64, device=labels.device)
    table[labels[order], pos] = order
    return table


def _candidate_dots(x: torch.Tensor, near: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
    """``<x_i, x_m>`` for every point i and every slot m of its candidate clusters: [n, t * s].

    ``near`` [n, t] are the candidate clusters of each point, ``members`` [k, s] the member
    table (-1: an empty slot; its entry is garbage, the caller masks it). Without a Gram matrix
    the work is grouped by cluster: the points that nominate a cluster B are multiplied with
    B's members in one batched product, so every row of x is read about ``t`` times, not
    ``t * s`` times as a per-point gather of the partners would (that read was what made
    layers above 2**14 rows 40-100x slower than those below).
    """
    n, t = near.shape
    k, s = members.shape
    d = x.shape[1]
    flat = near.reshape(-1)  # [n*t] the cluster of pair (i, b), pair index i * t + b
    order = torch.argsort(flat, stable=True)  # [n*t] pairs grouped by cluster
    counts = torch.bincount(flat, minlength=k)  # [k]
    starts = torch.cumsum(counts, 0) - counts  # [k]
    rank = torch.arange(n * t, device=x.device) - starts[flat[order]]  # [n*t] place in group
    width = int(counts.max())
    who = torch.zeros(k, width, dtype=torch.int64, device=x.device)  # [k, P], padded with 0
    who[flat[order], rank] = order // t
    out = torch.empty(n * t, s, dtype=x.dtype, device=x.device)
    per = max(1, _CHUNK // max(1, (width + s) * d))  # clusters per chunk: [per, P + s, d]
    first = [*starts.tolist(), n * t]
    for c0 in range(0, k, per):
        c1 = min(k, c0 + per)
        block = torch.bmm(x[who[c0:c1]], x[members[c0:c1].clamp_min(0)].transpose(1, 2))
        sel = order[first[c0] : first[c1]]  # [pairs] the pairs of clusters c0..c1-1
        out[sel] = block[flat[sel] - c0, rank[first[c0] : first[c1]]]  # [pairs, s]
    return out.view(n, t * s)


def _swap_phase(
    x: torch.Tensor,
    sq: torch.Tensor,
    gram: torch.Tensor | None,
    labels: torch.Tensor,
    p: torch.Tensor,
    inertia: float,
    tol: float,
) -> tuple[torch.Tensor, int, float]:
    """Hartigan-style pair swaps from a Lloyd fixed point.

    ``p`` [n, k] holds ``<x_i, mu_j>`` for the means of ``labels``. Returns the new labels, the
    number of swaps and the inertia they removed (>= 0).

    Swapping point i (cluster A) with point i' (cluster B) keeps the sizes and changes the
    inertia *exactly* (the centroids move with the swap) by::

        delta = u_i(B) + u_i'(A) - |x_i - x_i'|^2 (1/|A| + 1/|B|),   u_i(B) = 2 <x_i, mu_A - mu_B>

    A Lloyd step with fixed centroids sees only the first two terms; the last one lets swaps
    escape Lloyd's fixed points (it matters most when clusters are small). Each point is
    paired with the members of its ``_SWAP_CLUSTERS`` most promising other clusters (chosen
    once per phase); per pass the best swaps are taken greedily, at most one per cluster, so
    that their changes add up exactly. Passes repeat until a pass gains less than ``tol``.

    The dot products ``<x_i, x_i'>`` come from ``gram`` when there is one. Otherwise they are
    computed once per phase for all candidate pairs (:func:`_candidate_dots`) and kept up to
    date: a swap trades the slots of the two points in the member table, so only one slot per
    touched cluster changes, and its column comes from the ``x @ x[moved].T`` product that the
    centroid update needs anyway.
    """
    n, k = p.shape
    dev = x.device
    size = torch.bincount(labels, minlength=k).to(x.dtype)  # [k], fixed: swaps keep sizes
    p = p.clone()  # [n, k] <x_i, mu_j> for the current means, kept up to date after each pass
    t = min(_SWAP_CLUSTERS, k - 1)
    u = 2 * (p.gather(1, labels[:, None]) - p)  # [n, k] u_i(B)
    u.scatter_(1, labels[:, None], _INF)
    near = u.topk(t, dim=1, largest=False).indices  # [n, t] candidate clusters B per point
    members = _members(labels, k)  # [k, s]; from here on a swap trades the two points' slots
    s = members.shape[1]
    slot = torch.empty(n, dtype=torch.int64, device=dev)  # [n] slot of each point in its row
    filled = members >= 0
    slot[members[filled]] = torch.arange(s, device=dev).expand(k, s)[filled]
    near_s = near[:, :, None].expand(n, t, s).reshape(n, t * s)  # [n, t*s] B per partner
    dots = _candidate_dots(x, near, members) if gram is None else None  # [n, t*s]
    threshold = _SWAP_TOL * float(sq.mean())
    swaps, start = 0, inertia
    for _ in range(_SWAP_PASSES):
        p_own = p.gather(1, labels[:, None])  # [n, 1] <x_i, mu_A>
        partner = members[near].reshape(n, t * s)  # [n, t*s] candidate partners i' in B
        valid = (partner >= 0) & (near_s != labels[:, None])
        partner = partner.clamp_min(0)
        pair = gram.gather(1, partner) if gram is not None else dots  # [n, t*s] <x_i, x_i'>
        u_i = 2 * (p_own - p.gather(1, near_s))  # [n, t*s] u_i(B)
        u_partner = 2 * (p_own[partner, 0] - p[partner, labels[:, None].expand(n, t * s)])
        dist = (sq[:, None] + sq[partner] - 2 * pair).clamp_min(0)
        inv = (1 / size[labels])[:, None] + 1 / size[near_s]  # [n, t*s]
        delta = (u_i + u_partner - dist * inv).masked_fill(~valid, _INF)  # [n, t*s]
        best, j = delta.min(dim=1)  # [n] best swap of each point
        cand = (best < -threshold).nonzero().squeeze(1)
        if cand.numel() == 0:
            break
        cand = cand[torch.argsort(best[cand], stable=True)]
        mates = partner.gather(1, j[:, None]).squeeze(1)[cand]
        lab = labels.tolist()
        used: set[int] = set()
        first, second, change = [], [], 0.0
        for i, i2, g in zip(cand.tolist(), mates.tolist(), best[cand].tolist(), strict=True):
            if lab[i] in used or lab[i2] in used:
                continue
            used.update((lab[i], lab[i2]))
            first.append(i)
            second.append(i2)
            change += g
        fi = torch.tensor(first, dtype=torch.int64, device=dev)  # [m] points leaving A
        se = torch.tensor(second, dtype=torch.int64, device=dev)  # [m] points leaving B
        m = fi.numel()
        a, b = labels[fi], labels[se]  # [m] distinct clusters
        qa, qb = slot[fi], slot[se]  # [m] their slots
        labels = labels.clone()
        labels[fi], labels[se] = b, a
        members[a, qa], members[b, qb] = se, fi
        slot[fi], slot[se] = qb, qa
        # mu_A gains (x_i' - x_i) / |A|, mu_B loses it / |B|: update <x, mu> for those columns.
        if gram is not None:
            moved = gram[:, se] - gram[:, fi]  # [n, m]
        else:
            cols = x @ x[torch.cat([se, fi])].T  # [n, 2m] <x, x_i'> then <x, x_i>
            moved = cols[:, :m] - cols[:, m:]
            # The one changed slot of each touched cluster: A's slot qa now holds i' (column
            # c of cols), B's slot qb holds i (column m + c); copy them into every point that
            # has A or B among its candidate clusters.
            changed = torch.full((k,), -1, dtype=torch.int64, device=dev)  # [k] slot or -1
            column = torch.zeros(k, dtype=torch.int64, device=dev)  # [k] column of cols
            changed[a], changed[b] = qa, qb
            column[a] = torch.arange(m, device=dev)
            column[b] = torch.arange(m, 2 * m, device=dev)
            ii, bb = (changed[near] >= 0).nonzero(as_tuple=True)  # pairs to refresh
            cl = near[ii, bb]
            dots.view(n, t, s)[ii, bb, changed[cl]] = cols[ii, column[cl]]
        p[:, a] += moved / size[a]
        p[:, b] -= moved / size[b]
        swaps += m
        inertia += change
        if -change <= tol * abs(inertia):
            break
    return labels, swaps, start - inertia


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run the many small steps on one CPU thread, then restore ``torch.get_num_threads()``.

    Auction rounds, Bellman-Ford steps and swap passes are long chains of small kernels. With
    two or more OpenMP threads each of them waits for all threads; on a busy 2-core machine
    that made a Gemma layer 18x slower (14.7 s against 0.8 s on one thread). Large matrix
    products stay outside, on all threads. ``torch.set_num_threads`` is process-wide, so
    other threads running torch CPU work meanwhile also run on one thread.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def balanced_kmeans(
    x: torch.Tensor, k: int, *, seed: int = 0, max_iter: int = 50, tol: float = 1e-6
) -> KMeansResult:
    """Cluster the rows of ``x`` into ``k`` clusters of exactly balanced size.

    Every cluster gets ``floor(n/k)`` or ``ceil(n/k)`` rows; see the module docstring for the
    method. Runs in float32 on x's device and is deterministic for a seed on a given device.
    On CPU a small layer (``n * n * d <= 2**32``, e.g. Gemma 3 270M's 2048 x 640) runs on one
    thread, a larger one only its matrix products on all of ``torch.get_num_threads()``; the
    setting is restored on return.

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
        BabelmoeError: k < 1, k > n, x not 2-D, x not finite, or max_iter < 1.
    """
    _check_input(x, k, max_iter)
    x = x.detach().float()
    n, d = x.shape
    small = n * n * d <= _SERIAL_MAX_FLOP
    with _one_cpu_thread(x.device) if small else contextlib.nullcontext():
        return _balanced_kmeans(x, k, seed, max_iter, tol)


def _balanced_kmeans(x: torch.Tensor, k: int, seed: int, max_iter: int, tol: float) -> KMeansResult:
    """:func:`balanced_kmeans` on validated float32 input."""
    n, _ = x.shape
    gen = torch.Generator(device="cpu").manual_seed(seed)
    sq = (x * x).sum(dim=1)  # [n]
    gram = x @ x.T if n * n <= _GRAM_MAX else None  # [n, n] for seeding and swaps
    with _one_cpu_thread(x.device):
        centroids = _kmeans_pp(x, k, gen, gram)  # [k, d]
    warm: tuple[torch.Tensor, torch.Tensor] | None = None  # labels and potentials
    labels = torch.full((n,), -1, dtype=torch.int64, device=x.device)
    inertia = _INF
    n_iter = swaps = 0
    while True:
        # Lloyd iterations with an exact balanced assignment step.
        while n_iter < max_iter:
            n_iter += 1
            cost = (centroids * centroids).sum(dim=1)[None, :] - 2 * (x @ centroids.T)  # [n, k]
            with _one_cpu_thread(x.device):
                new_labels, potential = _assign(cost, warm)
            warm = (new_labels, potential)
            new_inertia = float((sq + cost.gather(1, new_labels[:, None])[:, 0]).double().sum())
            changed = int((new_labels != labels).sum())
            labels = new_labels
            centroids = _means(x, labels, k)
            logger.debug(
                "balanced k-means iter %d: inertia %.6g, %d labels changed",
                n_iter,
                new_inertia,
                changed,
            )
            converged = changed == 0 or inertia - new_inertia <= tol * abs(new_inertia)
            inertia = new_inertia
            if converged:
                break
        if k == 1 or (n_iter >= max_iter and not converged):
            break
        # Pair swaps from Lloyd's fixed point, until none helps; then Lloyd again.
        inertia = float(((x - centroids[labels]) ** 2).sum(dtype=torch.float64))
        p = x @ centroids.T  # [n, k]
        with _one_cpu_thread(x.device):
            labels, made, gain = _swap_phase(x, sq, gram, labels, p, inertia, tol)
        swaps += made
        logger.debug("balanced k-means: %d swaps, inertia %.6g", made, inertia - gain)
        if gain <= tol * abs(inertia) or n_iter >= max_iter:
            break
        centroids = _means(x, labels, k)
        warm = (labels, potential)  # the swapped labels are feasible too
    logger.debug("balanced k-means: %d Lloyd iterations, %d swaps", n_iter, swaps)
    new_of_old = _canonical(labels, k)
    labels = new_of_old[labels]
    centroids = _means(x, labels, k)
    inertia = float(((x - centroids[labels]) ** 2).sum(dtype=torch.float64))
    return KMeansResult(labels=labels, centroids=centroids, inertia=inertia, n_iter=n_iter)
