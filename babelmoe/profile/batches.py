"""From tokenised documents to padded batches whose every token knows its (language, unit) group.

Each sequence holds text of one language only. Without packing, a sequence is one chunk of at most
``max_length`` tokens of one document, BOS first. With packing, a language's documents are
concatenated (each starting with BOS) and cut into rows of ``max_length``. BOS and padding get
group -1 and are never counted. Sequences are sorted by length (longest first) so batches carry
little padding; the order is deterministic, so a resumed run sees the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Sequence:
    """One row of a batch: token ids and, per token, its group (-1: not counted)."""

    ids: tuple[int, ...]
    groups: tuple[int, ...]


@dataclass(frozen=True)
class Batch:
    """Model inputs and the flattened group of every position."""

    input_ids: torch.Tensor  # [B, S] int64
    attention_mask: torch.Tensor  # [B, S] int64
    group: torch.Tensor  # [B*S] int64, -1 for BOS and padding

    @property
    def n_counted(self) -> int:
        """Tokens of the batch that count (neither BOS nor padding)."""
        return int((self.group >= 0).sum())

    @property
    def full(self) -> bool:
        """No padding: the model can run without an attention mask (fast causal kernels)."""
        return bool(self.attention_mask.all())


def budget_documents(docs: list[list[int]], budget: int) -> list[list[int]]:
    """The documents' tokens (no BOS) in order, the last one cut so the total is ``budget``."""
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
) -> list[Sequence]:
    """Sequences of one language; document j counts towards group lang * n_units + j % n_units."""
    prefix = [] if bos_id is None else [bos_id]
    room = max_length - len(prefix)
    if packing:
        ids: list[int] = []
        groups: list[int] = []
        for j, doc in enumerate(docs):
            ids += prefix + doc
            groups += [-1] * len(prefix) + [lang * n_units + j % n_units] * len(doc)
        return [
            Sequence(tuple(ids[s : s + max_length]), tuple(groups[s : s + max_length]))
            for s in range(0, len(ids), max_length)
        ]
    sequences = []
    for j, doc in enumerate(docs):
        group = lang * n_units + j % n_units
        for start in range(0, len(doc), room):
            chunk = doc[start : start + room]
            sequences.append(
                Sequence(tuple(prefix + chunk), tuple([-1] * len(prefix) + [group] * len(chunk)))
            )
    return sequences


def make_batches(sequences: list[Sequence], batch_size: int, pad_id: int) -> list[Batch]:
    """Right-padded batches of ``batch_size`` sequences, longest first (deterministic)."""
    order = sorted(range(len(sequences)), key=lambda i: (-len(sequences[i].ids), i))
    batches = []
    for start in range(0, len(order), batch_size):
        rows = [sequences[i] for i in order[start : start + batch_size]]
        width = max(len(r.ids) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.int64)
        mask = torch.zeros((len(rows), width), dtype=torch.int64)
        group = torch.full((len(rows), width), -1, dtype=torch.int64)
        for b, row in enumerate(rows):
            n = len(row.ids)
            ids[b, :n] = torch.tensor(row.ids)
            mask[b, :n] = 1
            group[b, :n] = torch.tensor(row.groups)
        batches.append(Batch(ids, mask, group.reshape(-1)))
    return batches


def shard(batches: list[Batch], rank: int, world_size: int) -> Iterator[tuple[int, Batch]]:
    """The (index, batch) pairs rank ``rank`` of ``world_size`` processes takes (round robin)."""
    for index, batch in enumerate(batches):
        if index % world_size == rank:
            yield index, batch
