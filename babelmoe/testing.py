"""Builders for tests and demos, in one place: synthetic profiles with a known structure (to
try the analysis and the report without a GPU), balanced partitions, corpus folders. Tiny random
models and the byte tokenizer are in ``babelmoe.models.shapes``.

A language's true frequency of expert (l, e) is ``sigmoid(base + sum of offsets + own offset)``
scaled to the target mean: ``base`` is common to all languages, one random offset per node of the
classification lineage (family, genus, ...) is shared by the languages below that node, and each
language adds its own. Counts per bootstrap unit are binomial draws from those frequencies, so
the profile has real sampling noise and genealogy-shaped similarity when ``lineage_effect`` > 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from babelmoe.experts.partition import Partition
from babelmoe.profile.artifact import ProfileData


def balanced_partition(
    n_layers: int, width: int, n_experts: int, seed: int = 0, meta: dict | None = None
) -> Partition:
    """Random exactly balanced labels in the canonical order (experts ``0 .. width % E - 1``
    get the one extra neuron)."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.arange(width) % n_experts
    labels = torch.stack(
        [base[torch.randperm(width, generator=generator)] for _ in range(n_layers)]
    )
    return Partition(labels=labels, n_experts=n_experts, meta=dict(meta or {}))


def write_corpus(folder: Path, texts: Mapping[str, Sequence[str]]) -> Path:
    """A folder corpus: ``<lang>.txt`` per language, documents separated by blank lines."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for lang, docs in texts.items():
        (folder / f"{lang}.txt").write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return folder


def _lang(code, name, family, genus, script, lineage) -> dict[str, Any]:
    return {
        "code": code,
        "bcp47": code,
        "name": name,
        "family": family,
        "genus": genus,
        "script": script,
        "classification": lineage,
    }


IE = "Indo-European"
# The paper's nine languages with Glottolog-like lineages (family first).
PAPER_LANGUAGE_INFO: list[dict[str, Any]] = [  # codes as corpus.PAPER_LANGUAGES
    _lang("en", "English", IE, "Germanic", "Latn", [IE, "Germanic", "West Germanic"]),
    _lang("fr", "French", IE, "Romance", "Latn", [IE, "Italic", "Romance", "Gallo-Romance"]),
    _lang("es", "Spanish", IE, "Romance", "Latn", [IE, "Italic", "Romance", "Ibero-Romance"]),
    _lang("pt", "Portuguese", IE, "Romance", "Latn", [IE, "Italic", "Romance", "Ibero-Romance"]),
    _lang("zh", "Chinese", "Sino-Tibetan", "Chinese", "Hans", ["Sino-Tibetan", "Sinitic"]),
    _lang("ar", "Arabic", "Afro-Asiatic", "Semitic", "Arab", ["Afro-Asiatic", "Semitic"]),
    _lang("hi", "Hindi", IE, "Indic", "Deva", [IE, "Indo-Iranian", "Indo-Aryan", "Hindustani"]),
    _lang("bn", "Bengali", IE, "Indic", "Beng", [IE, "Indo-Iranian", "Indo-Aryan", "Eastern"]),
    _lang("ur", "Urdu", IE, "Indic", "Arab", [IE, "Indo-Iranian", "Indo-Aryan", "Hindustani"]),
]


def true_frequency(
    languages: Sequence[dict[str, Any]],
    n_layers: int,
    n_experts: int,
    lineage_effect: float = 1.0,
    language_effect: float = 0.5,
    mean_frequency: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """[n, L, E] frequencies in (0, 1) with the structure described in the module docstring."""
    rng = np.random.default_rng(seed)
    shape = (n_layers, n_experts)
    base = rng.normal(0.0, 1.0, shape)
    node_offsets: dict[tuple[str, ...], np.ndarray] = {}
    logits = []
    for lang in languages:
        path = tuple(lang.get("classification") or [lang.get("family") or lang["code"]])
        value = base + rng.normal(0.0, language_effect, shape)
        for depth in range(1, len(path) + 1):
            node = path[:depth]
            if node not in node_offsets:
                node_offsets[node] = rng.normal(0.0, lineage_effect, shape)
            value = value + node_offsets[node]
        logits.append(value)
    raw = 1.0 / (1.0 + np.exp(-(np.stack(logits) - 2.0)))
    return np.clip(raw * (mean_frequency / raw.mean()), 0.0, 1.0)


def make_profile(
    languages: Sequence[dict[str, Any]] | None = None,
    n_layers: int = 6,
    n_experts: int = 32,
    n_units: int = 10,
    tokens_per_unit: int = 200,
    frequency: np.ndarray | None = None,
    seed: int = 0,
    **structure: float,
) -> ProfileData:
    """A profile drawn from ``frequency`` [n, L, E] (default: ``true_frequency(**structure)``)."""
    languages = [dict(lang) for lang in (languages or PAPER_LANGUAGE_INFO)]
    if frequency is None:
        frequency = true_frequency(languages, n_layers, n_experts, seed=seed, **structure)
    rng = np.random.default_rng(seed + 1)
    n = frequency.shape[0]
    unit_tokens = np.full((n, n_units), tokens_per_unit, dtype=np.int64)
    unit_counts = rng.binomial(unit_tokens[:, :, None, None], frequency[:, None])  # [n, U, L, E]
    unit_counts = torch.from_numpy(unit_counts.astype(np.int64))
    unit_tokens_t = torch.from_numpy(unit_tokens)
    selected = round(float(frequency[0].sum()))
    return ProfileData(
        counts=unit_counts.sum(dim=1),
        tokens=unit_tokens_t.sum(dim=1),
        score_sums=unit_counts.sum(dim=1).double(),
        unit_counts=unit_counts,
        unit_tokens=unit_tokens_t,
        languages=languages,
        meta={
            "n_layers": frequency.shape[1],
            "n_experts": frequency.shape[2],
            "selected_per_token": selected,
            "partition_sha256": "synthetic",
            "model": {"name": "synthetic", "n_layers": frequency.shape[1]},
            "corpus": {"name": "synthetic", "units": n_units},
            "config": {"top_frac": 0.1, "score": "l2", "seed": seed},
        },
    )


def make_labels(n_layers: int, width: int, n_experts: int, seed: int) -> np.ndarray:
    """[L, width] int64 balanced random expert labels (a stand-in for a k-means partition)."""
    rng = np.random.default_rng(seed)
    base = np.arange(width) % n_experts
    return np.stack([rng.permutation(base) for _ in range(n_layers)]).astype(np.int64)


def tiny_llama(tokenizer: Any, seed: int = 0) -> torch.nn.Module:
    """A 2-layer random Llama in float64 (eval mode) sized for ``tokenizer``'s vocabulary, for
    exact comparisons of scoring paths."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).double().eval()
