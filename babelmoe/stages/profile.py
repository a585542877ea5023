"""The profile stage's runner: corpus -> batches -> counts -> ``profile`` artifact, resumable.

State is checkpointed atomically into ``RUN/.profile_state/`` every ``checkpoint_minutes`` (or every
``checkpoint_every`` batches when given);
re-running the same command continues from there (the batches are deterministic, the sums are
exact integers, so the result is bit-identical to an uninterrupted run). Under ``torchrun`` each
rank profiles a round-robin shard of the batches and the counts are all-reduced; rank 0 writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from babelmoe import artifacts
from babelmoe.errors import BabelmoeError, setting
from babelmoe.experts.partition import check_partition_fits, load_partition
from babelmoe.models.loading import LoadedModel, ModelSpec, as_loaded
from babelmoe.profile.accumulate import Accumulator
from babelmoe.profile.artifact import KIND, ProfileData, save_profile
from babelmoe.profile.batches import Batch, budget_documents, corpus_batches
from babelmoe.profile.core import profile_batches
from babelmoe.profile.scoring import from_fixed_point, selected_per_token
from babelmoe.stages.config import ProfileConfig

logger = logging.getLogger(__name__)


STATE_DIR = ".profile_state"
# Settings that only decide when checkpoints are written: a re-run may change them and resume.
RESUME_ONLY = frozenset({"checkpoint_every", "checkpoint_minutes"})
STATE_SLOTS = ("state-a", "state-b")  # checkpoints alternate between these artifacts


def _nonempty(docs: list[Any], encoded: Any, read: list[str]) -> Any:
    """The non-empty token lists of ``encoded`` (lazily), appending each one's document id to
    ``read`` as it is taken."""
    for doc, ids in zip(docs, encoded, strict=False):
        if ids:
            read.append(doc.id)
            yield ids


def tokenized_corpus(
    config: ProfileConfig,
    tokenizer: Any,
    corpus: Any = None,
    document_ids: list[list[str]] | None = None,
) -> tuple[list[dict], list[list[list[int]]], dict]:
    """Language metadata, per language the profiling documents' token ids (no BOS, within the
    budget), and the corpus identity (``corpus``: the loaded corpus, else loaded here).
    ``document_ids``: a list that receives, per language, the ids of those documents."""
    from babelmoe.corpus import heldout_split, load_corpus
    from babelmoe.evaluate.encoding import encode_texts

    corpus = corpus if corpus is not None else load_corpus(config.corpus, config.languages)
    languages, documents = [], []
    for entry in corpus.languages:
        profile_docs, _ = heldout_split(entry.documents, config.heldout_frac, config.heldout_seed)
        encoded = encode_texts(tokenizer, [doc.text for doc in profile_docs])
        read: list[str] = []  # ids of the documents the budget read (lazily: see budget_documents)
        tokens = budget_documents(_nonempty(profile_docs, encoded, read), config.token_budget)
        if document_ids is not None:
            document_ids.append(read[: len(tokens)])
        if not tokens:
            raise BabelmoeError(
                f"language {entry.lang.code} has no text to profile in {config.corpus}",
                "check the corpus file or drop the language",
            )
        languages.append(asdict(entry.lang))
        documents.append(tokens)
    return languages, documents, corpus.identity()


def config_batches(
    config: ProfileConfig, documents: list[list[list[int]]], tokenizer: Any
) -> list[Batch]:
    """The batches ``run_profile`` runs for ``documents`` (from ``tokenized_corpus``)."""
    from babelmoe.evaluate.encoding import pad_token_id

    return corpus_batches(
        documents,
        config.n_units,
        tokenizer.bos_token_id,
        pad_token_id(tokenizer),
        config.max_length,
        config.packing,
        config.batch_size,
        config.batch_tokens,
    )


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def run_profile(
    config: ProfileConfig,
    run_dir: Path,
    *,
    model: LoadedModel | ModelSpec,
    force: bool = False,
) -> Path:
    """Profile ``config.languages`` with ``run_dir``'s partition; write ``run_dir/profile.*``.

    The run lock is taken first and every input (partition, corpus files) is read and checked
    before ``model`` loads (a spec): a second writer or a bad input is refused at once.
    """
    from babelmoe.corpus import load_corpus

    stage_began = time.perf_counter()
    rank, world_size = _distributed()
    lock = artifacts.run_lock(run_dir) if rank == 0 else contextlib.nullcontext()
    with lock:
        partition = load_partition(run_dir)
        corpus = load_corpus(config.corpus, config.languages)
        began = time.perf_counter()
        loaded = as_loaded(model)
        load_s = time.perf_counter() - began
        began = time.perf_counter()
        check_partition_fits(partition, loaded.model)
        check_s = time.perf_counter() - began
        began = time.perf_counter()
        document_ids: list[list[str]] = []
        languages, documents, corpus_identity = tokenized_corpus(
            config, loaded.tokenizer, corpus, document_ids
        )
        tokenize_s = time.perf_counter() - began
        identity = profile_identity(
            loaded.identity, partition.sha256, corpus_identity, config, tokens_sha256(documents)
        )
        # Every rank decides alike (a rank that went on alone would wait forever in all_reduce).
        if not artifacts.check_can_write(run_dir, artifacts.PROFILE, KIND, identity, force):
            logger.info("%s already holds this profile; keeping it", run_dir)
            if rank == 0:  # a run killed after its final write left its checkpoints
                shutil.rmtree(run_dir / STATE_DIR, ignore_errors=True)
            return run_dir / f"{artifacts.PROFILE}.json"

        n_lang, n_units = len(languages), config.n_units
        began = time.perf_counter()
        batches = config_batches(config, documents, loaded.tokenizer)
        batches_s = time.perf_counter() - began
        state_dir = run_dir / STATE_DIR / f"rank{rank}-of{world_size}"
        if not force:
            _check_world_size(run_dir / STATE_DIR, world_size, identity)
        start, state, slot = _resume(state_dir, identity, force)

        def checkpoint(next_batch: int, accumulator: Accumulator) -> None:
            # Alternate between two slots: a kill while one is written leaves the other intact.
            nonlocal slot
            slot = STATE_SLOTS[1] if slot == STATE_SLOTS[0] else STATE_SLOTS[0]
            artifacts.save_artifact(
                state_dir,
                slot,
                accumulator.state(),
                {**identity, "next_batch": next_batch},
                kind="profile_state",
            )

        accumulator = profile_batches(
            loaded.model,
            partition,
            batches,
            n_lang,
            n_units,
            config.scoring,
            start=start,
            state=state,
            rank=rank,
            world_size=world_size,
            sync_every=config.checkpoint_every,
            sync_seconds=None if config.checkpoint_every else 60.0 * config.checkpoint_minutes,
            on_sync=checkpoint,
        )
        if world_size > 1:
            accumulator.all_reduce()
        if rank != 0:
            return run_dir / f"{artifacts.PROFILE}.json"
        totals = accumulator.totals()
        data = ProfileData(
            counts=totals.unit_counts.sum(1),
            tokens=totals.unit_tokens.sum(1),
            score_sums=from_fixed_point(totals.unit_score_sums.sum(1)),
            unit_counts=totals.unit_counts,
            unit_tokens=totals.unit_tokens,
            languages=languages,
            meta={
                **identity,
                "n_layers": partition.n_layers,
                "n_experts": partition.n_experts,
                "selected_per_token": selected_per_token(
                    partition.n_layers, partition.n_experts, config.top_frac, config.selection
                ),
                # per language, per unit: the ids of its documents (aligns units across languages)
                "unit_documents": [
                    [ids[u::n_units] for u in range(n_units)] for ids in document_ids
                ],
            },  # type: ignore[arg-type]
        )
        path = save_profile(run_dir, data)
        artifacts.atomic_write_json(
            run_dir / artifacts.PROFILE_TIMINGS_FILE,
            {
                "load_s": load_s,
                "check_s": check_s,  # the partition's weights digest
                "tokenize_s": tokenize_s,
                "batches_s": batches_s,
                "stage_s": time.perf_counter() - stage_began,  # run_profile up to this write
                "world_size": world_size,
                **accumulator.timings.as_dict(),
            },
        )
        shutil.rmtree(run_dir / STATE_DIR, ignore_errors=True)
        logger.info(
            "profiled %s: %s tokens -> %s",
            ", ".join(d["code"] for d in languages),
            data.tokens.tolist(),
            path,
        )
        return path


def profile_identity(
    model: dict,
    partition_sha256: str,
    corpus: dict,
    config: ProfileConfig,
    tokens: str,
) -> dict[str, Any]:
    """What makes two profiles the same (when checkpoints are taken does not change the counts).

    ``tokens``: the digest of the profiled token ids (``tokens_sha256``). The same model files
    can tokenise differently (another transformers version converting a GGUF tokenizer, an
    edited tokenizer file): a profile or checkpoint made from other tokens is never resumed or
    kept as this one."""
    settings = {k: v for k, v in asdict(config).items() if k not in RESUME_ONLY}
    return {
        "model": model,
        "partition_sha256": partition_sha256,
        "corpus": corpus,
        "config": settings,
        "tokens_sha256": tokens,
    }


def tokens_sha256(documents: list[list[list[int]]]) -> str:
    """sha256 of the token ids per language and document (lengths included), as int64."""
    digest = hashlib.sha256()
    for language in documents:
        lengths = [len(doc) for doc in language]
        ids = itertools.chain.from_iterable(language)
        digest.update(np.asarray(lengths, dtype=np.int64).tobytes())
        digest.update(np.fromiter(ids, dtype=np.int64, count=sum(lengths)).tobytes())
    return digest.hexdigest()


def _check_world_size(state_root: Path, world_size: int, identity: dict) -> None:
    """Refuse to start over when checkpoints of this profile were written by another number of
    ranks: each rank's state covers its own round-robin share of the batches, so they resume
    only on as many ranks (or are dropped with ``--force``)."""
    if not state_root.is_dir():
        return
    for folder in sorted(state_root.glob("rank*-of*")):
        other = folder.name.rsplit("-of", 1)[-1]
        if other == str(world_size):
            continue
        usable = any(
            artifacts.load_checkpoint(folder, slot, "profile_state", identity) is not None
            for slot in STATE_SLOTS
        )
        if usable:
            launch = "babelmoe profile" if other == "1" else f"torchrun --nproc_per_node {other}"
            raise BabelmoeError(
                f"{state_root} holds checkpoints of this profile written by {other} rank(s), "
                f"and this run has {world_size}",
                f"resume with {other} rank(s) ({launch} ...), or pass {setting('force')} to start "
                "over "
                "and drop them",
            )


def _resume(state_dir: Path, identity: dict, force: bool) -> tuple[int, dict | None, str | None]:
    """The batch to start from, the saved state and its slot, from this run's latest checkpoint.

    Checkpoints that are unreadable (a kill while writing) or of another configuration are
    skipped; when none is usable the state folder is cleared and the run starts over.
    """
    best: tuple[int, dict, str] | None = None
    for slot in STATE_SLOTS if not force else ():
        checkpoint = artifacts.load_checkpoint(state_dir, slot, "profile_state", identity)
        if checkpoint is None:
            continue
        tensors, meta = checkpoint
        if best is None or int(meta["next_batch"]) > best[0]:
            best = (int(meta["next_batch"]), tensors, slot)
    if best is None:
        shutil.rmtree(state_dir, ignore_errors=True)
        return 0, None, None
    artifacts.remove_stale_temps(state_dir)
    logger.info("resuming from batch %d (checkpoint in %s)", best[0], state_dir)
    return best
