"""Builders shared by the prune / evaluate / sweep tests (no tests here): a character-level
tokenizer, a tiny model folder, a run folder with a real partition, a synthetic profile and a
folder corpus. Everything is offline and takes well under a second."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from babelmoe import testing
from babelmoe.experts.partition import Partition, SplitConfig, save_partition, split_model
from babelmoe.models.loading import LoadedModel, model_identity
from babelmoe.models.shapes import tiny_model
from babelmoe.profile.artifact import ProfileData, save_profile

ALPHABET = "abcdefghijklmnopqrstuvwxyzàéèêçñõãü .,;:!?'-\n"
TEXTS = {
    "en": [
        "all human beings are born free and equal in dignity and rights.",
        "everyone has the right to life, liberty and security of person.",
        "no one shall be held in slavery or servitude in any form at all.",
        "everyone has the right to recognition everywhere as a person.",
        "all are equal before the law and are entitled to protection.",
        "everyone has the right to an effective remedy by the tribunals.",
        "no one shall be subjected to arbitrary arrest, detention or exile.",
        "everyone is entitled in full equality to a fair and public hearing.",
    ],
    "fr": [
        "tous les êtres humains naissent libres et égaux en dignité et en droits.",
        "tout individu a droit à la vie, à la liberté et à la sûreté de sa personne.",
        "nul ne sera tenu en esclavage ni en servitude sous toutes leurs formes.",
        "chacun a le droit à la reconnaissance en tous lieux de sa personnalité.",
        "tous sont égaux devant la loi et ont droit à une égale protection.",
        "toute personne a droit à un recours effectif devant les juridictions.",
        "nul ne peut être arbitrairement arrêté, détenu ni exilé de son pays.",
        "toute personne a droit, en pleine égalité, à ce que sa cause soit entendue.",
    ],
}


def char_tokenizer():
    """A real (saveable) ``PreTrainedTokenizerFast``: one token per character, BOS=1, EOS=2."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2, "<unk>": 3}
    for ch in ALPHABET:
        vocab.setdefault(ch, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


def tiny_loaded(model_type: str = "llama", seed: int = 0, **overrides) -> LoadedModel:
    """A tiny random model (vocabulary large enough for the tokenizer) with the tokenizer."""
    model = tiny_model(model_type, seed=seed, **overrides)
    return LoadedModel(model, char_tokenizer(), model_identity(model, f"tiny-{model_type}"))


def save_model_folder(loaded: LoadedModel, folder: Path) -> Path:
    """The tiny model as a local checkpoint folder that ``load_model`` reads."""
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    return folder


def write_corpus(folder: Path, texts: dict[str, list[str]] = TEXTS) -> Path:
    """``<lang>.txt`` files of ``texts`` (default: the short UDHR-like sentences above)."""
    return testing.write_corpus(folder, texts)


def random_partition(n_layers: int, width: int, n_experts: int, seed: int = 0) -> Partition:
    """Balanced random labels (sizes differ by at most one)."""
    meta = {"weights_sha256": f"random-{seed}"}
    return testing.balanced_partition(n_layers, width, n_experts, seed, meta)


def synthetic_profile(
    frequency: torch.Tensor,
    partition: Partition,
    languages: list[dict],
    requested: list[str],
    corpus: str = "udhr",
    mean_score: torch.Tensor | None = None,
    heldout_frac: float = 0.5,
) -> ProfileData:
    """A profile whose frequency is ``frequency`` [n_lang, L, E] (over 1000 tokens each)."""
    n_lang, n_layers, n_experts = frequency.shape
    tokens = torch.full((n_lang,), 1000, dtype=torch.long)
    counts = (frequency * 1000).round().long()
    scores = mean_score if mean_score is not None else torch.rand(n_lang, n_layers, n_experts)
    return ProfileData(
        counts=counts,
        tokens=tokens,
        score_sums=scores.double() * 1000,
        unit_counts=counts[:, None].clone(),
        unit_tokens=tokens[:, None].clone(),
        languages=languages,
        meta={
            "partition_sha256": partition.sha256,
            "config": {
                "languages": requested,
                "corpus": corpus,
                "heldout_frac": heldout_frac,
                "heldout_seed": 0,
            },
            "corpus": {"labels": [lang["code"] for lang in languages]},
        },
    )


def make_run(
    tmp: Path, model_type: str = "llama", n_experts: int = 8
) -> tuple[Path, Path, LoadedModel]:
    """(run folder, model folder, loaded model): a real partition of the tiny model, a
    synthetic profile over the folder corpus of ``TEXTS`` (en, fr; half held out)."""
    from babelmoe.corpus import load_corpus
    from babelmoe.profile.artifact import load_profile  # noqa: F401  (artifact round trip)

    loaded = tiny_loaded(model_type)
    model_dir = save_model_folder(loaded, tmp / "model")
    corpus_dir = write_corpus(tmp / "corpus")
    run = tmp / "run"
    partition = split_model(loaded.model, SplitConfig(n_experts=n_experts, max_iter=5))
    save_partition(run, partition, loaded.identity)
    corpus = load_corpus(str(corpus_dir), ["en", "fr"])
    generator = torch.Generator().manual_seed(1)
    freq = torch.rand(2, partition.n_layers, n_experts, generator=generator, dtype=torch.float64)
    profile = synthetic_profile(
        freq, partition, [asdict(lc.lang) for lc in corpus], ["en", "fr"], corpus=str(corpus_dir)
    )
    profile.meta["model"] = loaded.identity
    profile.meta["corpus"] = corpus.identity()
    save_profile(run, profile)
    return run, model_dir, loaded
