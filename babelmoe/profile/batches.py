"""From tokenised documents to batches whose every token knows its (language, unit) group.

Each sequence holds text of one language only and every document chunk starts with BOS: a
document longer than ``max_length`` is cut into chunks of at most ``max_length`` tokens, BOS
first. Without packing a row is one chunk; with packing (``pack_rows``) several chunks share a
row, each with position ids starting again at 0, so the model's packed-sequence mask keeps every
chunk attending only to itself: the same context per token as without packing. BOS and padding
get group -1 and are never counted.

``make_batches`` sorts rows by length (longest first, deterministic, so a resumed run sees the
same batches) and fills each batch up to a token budget, so short documents make wide batches
and long ones narrow batches of about the same cost, with little padding. Rows are right-padded:
under causal attention padding at the end of a row cannot reach a real token, so no attention
mask is needed and the fast causal attention kernels run.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class TokenRow:
    """One row of a batch: token ids, per token its group (-1: not counted) and, in packed rows,
    its position in its own chunk."""

    ids: tuple[int, ...]
    groups: tuple[int, ...]
    positions: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Batch:
    """Model inputs and the flattened group of every position."""

    input_ids: torch.Tensor  # [B, S] int64, rows right-padded
    attention_mask: torch.Tensor  # [B, S] int64, 1 for tokens, 0 for padding
    group: torch.Tensor  # [B*S] int64, -1 for BOS and padding
    position_ids: torch.Tensor | None = None  # [B, S] int64 for packed rows (restart per chunk)

    @property
    def n_counted(self) -> int:
        """Tokens of the batch that count (neither BOS nor padding)."""
        return int((self.group >= 0).sum())

    @property
    def n_positions(self) -> int:
        """Positions the model computes (B x S)."""
        return self.input_ids.numel()

    @property
    def n_padding(self) -> int:
        """Padding positions."""
        return int((self.attention_mask == 0).sum())

    @property
    def full(self) -> bool:
        """No padding."""
        return bool(self.attention_mask.all())


def budget_documents(docs: Iterable[list[int]], budget: int) -> list[list[int]]:
    """The documents' tokens (no BOS) in order, the last one cut so the total is ``budget``
    (``docs`` is read no further than the budget: it may be a lazy encoder)."""
    kept, total = [], 0
    for doc in docs:
        if total >= budget:
            break
        take = doc[: budget - total]
        if take:
            kept.append(take)
            total += len(take)
    return kept


def language_sequences(
    docs: list[list[int]],
    lang: int,
    n_units: int,
    bos_id: int | None,
    max_length: int,
    packing: bool,
) -> list[TokenRow]:
    """Sequences of one language; document j counts towards group lang * n_units + j % n_units.

    Each document is cut into chunks of at most ``max_length`` tokens, BOS first; with
    ``packing`` the chunks are then packed into rows of ``max_length`` (``pack_rows``).
    """
    prefix = [] if bos_id is None else [bos_id]
    room = max_length - len(prefix)
    chunks = []
    for j, doc in enumerate(docs):
        group = lang * n_units + j % n_units
        for start in range(0, len(doc), room):
            chunk = doc[start : start + room]
            chunks.append(
                TokenRow(tuple(prefix + chunk), tuple([-1] * len(prefix) + [group] * len(chunk)))
            )
    return pack_rows(chunks, max_length) if packing else chunks


def pack_rows(chunks: list[TokenRow], max_length: int) -> list[TokenRow]:
    """Chunks packed into rows of at most ``max_length`` tokens (best fit, longest first;
    deterministic), each chunk's positions starting at 0."""
    order = sorted(range(len(chunks)), key=lambda i: (-len(chunks[i].ids), i))
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, row) sorted
    for i in order:
        n = len(chunks[i].ids)
        at = bisect.bisect_left(free, (n, -1))
        if at < len(free):
            room, row = free.pop(at)
        else:
            room, row = max_length, len(rows)
            rows.append([])
        rows[row].append(i)
        if room - n > 0:
            bisect.insort(free, (room - n, row))
    packed = []
    for members in rows:
        ids: list[int] = []
        groups: list[int] = []
        positions: list[int] = []
        for i in members:
            ids += chunks[i].ids
            groups += chunks[i].groups
            positions += range(len(chunks[i].ids))
        packed.append(TokenRow(tuple(ids), tuple(groups), tuple(positions)))
    return packed


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


# Under a token budget, a batch stops taking rows at one shorter than this share of its width (its
# longest row): with a long tail of short documents, filling a batch of long rows with short ones
# padded most of it (48% of the positions on the UDHR's articles, 12% with this rule).
MIN_FILL = 0.75


def make_batches(
    sequences: list[TokenRow],
    batch_size: int | None,
    pad_id: int,
    batch_tokens: int | None = None,
    pad_multiple: int = 1,
) -> list[Batch]:
    """Right-padded batches, longest rows first (deterministic).

    A batch takes rows while it holds at most ``batch_size`` rows (None: no limit) and its padded
    size, rows x width, stays within ``batch_tokens`` (None: no limit); it always takes at least
    one row. The width is the longest row's length rounded up to ``pad_multiple`` (fewer distinct
    shapes), but never beyond the longest row of all. A batch left with a single row while others
    have several gets a row of padding: a lone row would make the compiled layers specialise (and
    compile again) for a batch of one.
    """
    if not sequences:
        return []
    lengths = [len(s.ids) for s in sequences]
    order = sorted(range(len(sequences)), key=lambda i: (-lengths[i], i))
    longest = lengths[order[0]]
    packed = any(s.positions is not None for s in sequences)
    groups_of_rows: list[tuple[int, list[TokenRow]]] = []
    at = 0
    while at < len(order):
        width = min(_round_up(lengths[order[at]], pad_multiple), longest)
        take = 1
        while (
            at + take < len(order)
            and (batch_size is None or take < batch_size)
            and (
                batch_tokens is None
                or (
                    (take + 1) * width <= batch_tokens
                    and lengths[order[at + take]] >= MIN_FILL * width
                )
            )
        ):
            take += 1
        groups_of_rows.append((width, [sequences[i] for i in order[at : at + take]]))
        at += take
    several = any(len(rows) > 1 for _, rows in groups_of_rows)
    batches = []
    for width, rows in groups_of_rows:
        n_rows = 2 if several and len(rows) == 1 else len(rows)
        sizes = np.array([len(row.ids) for row in rows] + [0] * (n_rows - len(rows)))
        real = np.arange(width) < sizes[:, None]  # [n_rows, width]: the rows' tokens, in order
        ids = np.full((n_rows, width), pad_id, dtype=np.int64)
        ids[real] = _flat(row.ids for row in rows)
        group = np.full((n_rows, width), -1, dtype=np.int64)
        group[real] = _flat(row.groups for row in rows)
        positions = None
        if packed:
            # padding continues the row's last chunk (causal: it cannot reach a real token)
            own = [range(len(r.ids)) if r.positions is None else r.positions for r in rows]
            last = np.array([p[-1] if len(p) else -1 for p in own] + [-1] * (n_rows - len(rows)))
            positions = np.arange(width) - sizes[:, None] + last[:, None] + 1
            positions[real] = _flat(own)
            positions = torch.from_numpy(positions)
        batches.append(
            Batch(
                torch.from_numpy(ids),
                torch.from_numpy(real.astype(np.int64)),
                torch.from_numpy(group.reshape(-1)),
                positions,
            )
        )
    return batches


def _flat(rows: Iterable[Iterable[int]]) -> np.ndarray:
    """The rows' integers one after another, as int64 (one pass, no per-row tensors)."""
    return np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64)


def corpus_batches(
    documents: list[list[list[int]]],
    n_units: int,
    bos_id: int | None,
    pad_id: int,
    max_length: int,
    packing: bool,
    batch_size: int | None,
    batch_tokens: int | None,
    pad_multiple: int = 1,
) -> list[Batch]:
    """The batches of a corpus: per language (in order) its documents' token ids, no BOS."""
    sequences = [
        s
        for lang, docs in enumerate(documents)
        for s in language_sequences(docs, lang, n_units, bos_id, max_length, packing)
    ]
    return make_batches(sequences, batch_size, pad_id, batch_tokens, pad_multiple)


def shard(batches: list[Batch], rank: int, world_size: int) -> Iterator[tuple[int, Batch]]:
    """The (index, batch) pairs rank ``rank`` of ``world_size`` processes takes (round robin)."""
    for index, batch in enumerate(batches):
        if index % world_size == rank:
            yield index, batch
