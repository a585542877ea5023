"""Steering generation: amplify language A's experts while the model continues a prompt in B.

Prompts: the first sentence of each held-out document of B (``first_sentence``), plus a few
language-neutral prompts (``NEUTRAL_PROMPTS``, language ``neutral``). Each prompt is continued
greedily (``GenerationConfig``; sampling optional and seeded) under one of the conditions:

* ``dense``: the unmodified model (factor 1 of every target is this one run);
* ``own`` (A, factor): A's experts multiplied by ``factor``;
* ``random`` (A, factor, seed): as many random experts per layer, multiplied by ``factor``;

each optionally with the prompt language's own experts silenced (``silence_source``). A batch
mixes conditions: every row carries its own [L, E] factors (``experts.masks``).

Every continuation gets its language (``langid.identify``), the unmodified model's mean
log-likelihood per token given the prompt (the fluency cost; higher is more fluent) and its
repetition rate (share of repeated token 3-grams).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from babelmoe.errors import BabelmoeError, setting
from babelmoe.evaluate.encoding import encode, eval_mode, input_device, pad_token_id
from babelmoe.evaluate.scoring import score_tails
from babelmoe.experts.masks import scaled_experts
from babelmoe.experts.partition import Partition
from babelmoe.interventions.langid import identify
from babelmoe.interventions.stats import bootstrap_mean, repetition_rate

logger = logging.getLogger(__name__)

DENSE, OWN, RANDOM = "dense", "own", "random"
NEUTRAL = "neutral"
# prompts that belong to no language: numbers, punctuation, a list marker

_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；।॥۔؟])\s+|(?<=[。！？；।॥۔؟])")


def first_sentence(text: str, max_chars: int = 200) -> str:
    """The text's first sentence (ends at . ! ? and the CJK, Devanagari and Arabic stops), at
    most ``max_chars`` characters (cut at a space where there is one)."""
    text = " ".join(text.split())
    head = _SENTENCE_END.split(text, maxsplit=1)[0].strip()
    if len(head) > max_chars:
        cut = head[:max_chars]
        head = cut.rsplit(" ", 1)[0] if " " in cut[max_chars // 2 :] else cut
    return head


@dataclass(frozen=True)
class Prompt:
    """One prompt: ``id`` unique over the run, ``lang`` a language name or ``neutral``."""

    id: str
    lang: str
    text: str


def steering_prompts(
    documents: dict[str, Sequence[Any]], per_language: int, neutral: Sequence[str]
) -> list[Prompt]:
    """The first sentence of the first ``per_language`` held-out documents of every language
    (``documents``: {name: [Document]}), then the neutral prompts."""
    prompts = []
    for lang, docs in documents.items():
        for doc in list(docs)[:per_language]:
            text = first_sentence(doc.text)
            if text:
                prompts.append(Prompt(f"{lang}:{doc.id}", lang, text))
    prompts += [Prompt(f"{NEUTRAL}:{i}", NEUTRAL, t) for i, t in enumerate(neutral) if t.strip()]
    if not prompts:
        raise BabelmoeError(
            "no steering prompt (no held-out document and no neutral prompt)",
            f"raise {setting('prompts')} or keep the neutral prompts",
        )
    return prompts


@dataclass(frozen=True)
class GenerationConfig:
    """How continuations are generated."""

    max_new_tokens: int = 16
    """Tokens generated per prompt (fewer when the model ends the text)."""
    max_prompt_tokens: int = 48
    """Prompts are cut to their first this many tokens (BOS included)."""
    batch_size: int = 64
    """Sequences per generate call (decoding reads the whole vocabulary projection each step:
    wide batches amortise it)."""
    sample: bool = False
    """Sample (seeded) instead of greedy decoding."""
    temperature: float = 1.0
    """Sampling temperature (with ``sample``)."""
    seed: int = 0
    """Seed of sampling."""
    chat: bool = False
    """Send each prompt as a user turn through the tokenizer's chat template (instruction
    models); the prompt is cut to ``max_prompt_tokens`` before the template is applied."""

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "max_prompt_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise BabelmoeError(f"{name} must be at least 1", "pass a positive number")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise BabelmoeError("temperature must be a finite positive number", "pass e.g. 0.7")


@dataclass(frozen=True)
class Item:
    """One continuation to generate: a prompt under a condition."""

    condition: str
    target: str | None
    factor: float
    seed: int | None
    prompt: Prompt
    silence_source: bool = False

    @property
    def key(self) -> str:
        return (
            f"steer|{self.condition}|{self.target}|{self.factor:g}|{self.seed}|"
            f"{int(self.silence_source)}|{self.prompt.id}"
        )


def plan_items(
    prompts: Sequence[Prompt],
    targets: Sequence[str],
    factors: Sequence[float],
    seeds: Sequence[int],
    groups: dict[str, str] | None = None,
    silence_source: bool = False,
    keep_language: bool = False,
) -> list[Item]:
    """Every continuation of the steering grid: the dense one per prompt; per factor != 1, A's
    experts on every prompt not in A, and each seed's random set of every null group
    (``groups``: target -> group, default one per target) on every prompt not in all of the
    group's languages; with ``silence_source``, the same again with the prompt language's
    experts off. ``keep_language``: instead, amplify each prompt language's own experts (and
    its random set) on its own prompts: does the answer stay in the prompt's language?"""
    groups = groups or {a: f"random~{a}" for a in targets}
    members: dict[str, list[str]] = {}
    for a in targets:
        members.setdefault(groups[a], []).append(a)
    flags = (False, True) if silence_source else (False,)
    items = [Item(DENSE, None, 1.0, None, p) for p in prompts]
    if keep_language:  # amplify the prompt language's own experts (and its null group's)
        for factor in [f for f in factors if f != 1.0]:
            for p in prompts:
                if p.lang in groups:
                    items.append(Item(OWN, p.lang, factor, None, p))
                    items += [Item(RANDOM, groups[p.lang], factor, s, p) for s in seeds]
        return items
    for factor in factors:
        if factor == 1.0:
            continue
        for flag in flags:
            for p in prompts:
                if flag and p.lang == NEUTRAL:
                    continue
                items += [Item(OWN, a, factor, None, p, flag) for a in targets if a != p.lang]
                for group, langs in members.items():
                    if any(a != p.lang for a in langs):
                        items += [Item(RANDOM, group, factor, s, p, flag) for s in seeds]
    return items


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    partition: Partition,
    prompts: Sequence[list[int]],
    scales: Sequence[torch.Tensor | None],
    config: GenerationConfig,
    batch_seed: int = 0,
) -> list[list[int]]:
    """New token ids of each prompt (token ids, BOS included), each row under its own expert
    factors ``scales[i]`` ([L, E], None = unchanged), in one left-padded batch. A continuation
    ends before the first EOS."""
    device = input_device(model)
    pad = pad_token_id(tokenizer)
    longest = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), longest), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, longest - len(p) :] = torch.as_tensor(p)
        mask[row, longest - len(p) :] = 1
    shape = (partition.n_layers, partition.n_experts)
    if all(s is None for s in scales):
        rows = None
    else:
        rows = torch.stack([torch.ones(shape) if s is None else s.float() for s in scales])
    eos = tokenizer.eos_token_id
    kwargs: dict[str, Any] = {
        "max_new_tokens": config.max_new_tokens,
        "do_sample": config.sample,
        "pad_token_id": pad,
        "eos_token_id": eos,
    }
    if config.sample:
        kwargs.update(temperature=config.temperature, top_k=0, top_p=1.0)
    else:
        kwargs.update(temperature=None, top_k=None, top_p=None)
    with (
        eval_mode(model),
        torch.no_grad(),
        scaled_experts(model, partition, rows),
        _seeded(config.seed + batch_seed),
    ):
        out = model.generate(
            input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs
        )  # [B, longest + new]
    new = out[:, longest:].tolist()
    result = []
    for tokens in new:
        if eos is not None and eos in tokens:
            tokens = tokens[: tokens.index(eos)]
        result.append([t for t in tokens if t != pad or pad == eos])
    return result


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase, text: str, config: GenerationConfig
) -> list[int]:
    """Token ids of a prompt: BOS + the text cut to ``max_prompt_tokens``; with ``chat``, the
    cut text as a user turn of the tokenizer's chat template, ready for the answer."""
    if not config.chat:
        return encode(tokenizer, text)[: config.max_prompt_tokens]
    if not getattr(tokenizer, "chat_template", None):
        raise BabelmoeError(
            f"{setting('chat')} needs a tokenizer with a chat template; this model's has none",
            f"leave {setting('chat')} off for a base model",
        )
    ids = encode(tokenizer, text, add_bos=False)[: config.max_prompt_tokens]
    turn = [{"role": "user", "content": tokenizer.decode(ids)}]
    out = tokenizer.apply_chat_template(turn, add_generation_prompt=True, tokenize=True)
    if isinstance(out, dict) or hasattr(out, "keys"):
        out = out["input_ids"]
    return [int(t) for t in out]


def run_items(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    partition: Partition,
    items: Sequence[Item],
    scales_of: Callable[[Item], torch.Tensor | None],
    config: GenerationConfig,
    on_rows: Callable[[list[dict[str, Any]]], None],
    score_batch_size: int = 16,
) -> None:
    """Generate, identify and score every item, ``config.batch_size`` at a time (prompts of
    similar length together; the fluency forwards ``score_batch_size`` at a time); ``on_rows``
    gets each batch's finished rows."""
    encoded = {item.prompt.id: encode_prompt(tokenizer, item.prompt.text, config) for item in items}
    order = sorted(range(len(items)), key=lambda i: (len(encoded[items[i].prompt.id]), i))
    batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    pad = pad_token_id(tokenizer)
    for b, batch in enumerate(tqdm(batches, desc="steer", unit="batch", disable=None)):
        chosen = [items[i] for i in batch]
        prompts = [encoded[it.prompt.id] for it in chosen]
        start = time.perf_counter()
        new = generate(
            model, tokenizer, partition, prompts, [scales_of(it) for it in chosen], config, b
        )
        generated = time.perf_counter()
        texts = [tokenizer.decode(t, skip_special_tokens=True) for t in new]
        scored = [i for i, t in enumerate(new) if t]
        fluency = score_tails(
            model,
            [(prompts[i] + new[i], len(new[i])) for i in scored],
            batch_size=score_batch_size,
            pad_id=pad,
            desc="fluency",
        )
        loglik: list[float | None] = [None] * len(new)
        for i, score in zip(scored, fluency, strict=True):
            loglik[i] = score.logprob / score.n_tokens
        scored_at = time.perf_counter()
        labels = identify(texts)
        logger.debug(
            "batch %d: %d rows, generate %.3f s, fluency %.3f s, identification %.3f s",
            b,
            len(chosen),
            generated - start,
            scored_at - generated,
            time.perf_counter() - scored_at,
        )
        rows = []
        for it, tokens, text, ll, (label, prob) in zip(
            chosen, new, texts, loglik, labels, strict=True
        ):
            rows.append(
                {
                    "key": it.key,
                    "condition": it.condition,
                    "target": it.target,
                    "factor": it.factor,
                    "seed": it.seed,
                    "silence_source": it.silence_source,
                    "prompt_id": it.prompt.id,
                    "prompt_lang": it.prompt.lang,
                    "prompt": it.prompt.text,
                    "continuation": text,
                    "n_tokens": len(tokens),
                    "lid": label,
                    "lid_prob": prob,
                    "line_lid": [lab for lab, _ in identify(_lines(text))],
                    "loglik_per_token": ll,
                    "repetition": repetition_rate(tokens),
                }
            )
        on_rows(rows)


def _per_prompt(rows: Sequence[dict], label: str) -> dict[str, float]:
    return {r["prompt_id"]: float(r["lid"] == label) for r in rows}


def steering_summary(
    rows: Sequence[dict[str, Any]],
    targets: Sequence[str],
    labels: dict[str, str],
    factors: Sequence[float],
    seeds: Sequence[int],
    groups: dict[str, str] | None = None,
    silence_source: bool = False,
    n_boot: int = 2000,
) -> dict[str, Any]:
    """Per (A, prompt language B, factor): the share of continuations identified as A under A's
    experts, the unmodified model and random experts (mean over seeds per prompt), bootstrap
    intervals over prompts of the share and of the paired differences; fluency (mean per-token
    log-likelihood under the unmodified model) and repetition. Plus the same pooled over every
    B != A per (A, factor), and over all A per factor (``by_factor``, the figure's points).
    ``groups``: each target's null group (the ``target`` of its random rows)."""
    groups = groups or {a: f"random~{a}" for a in targets}
    dense = {r["prompt_id"]: r for r in rows if r["condition"] == DENSE}
    prompt_langs = sorted({r["prompt_lang"] for r in dense.values()}, key=str)
    cells, pooled, by_factor = [], [], []
    for flag in (False, True) if silence_source else (False,):
        for factor in [f for f in factors if f != 1.0]:
            every: dict[str, list[np.ndarray]] = {}
            for a in targets:
                own_rows = [
                    r
                    for r in rows
                    if r["condition"] == OWN
                    and r["target"] == a
                    and r["factor"] == factor
                    and r["silence_source"] == flag
                ]
                rand_rows = [
                    r
                    for r in rows
                    if r["condition"] == RANDOM
                    and r["target"] == groups[a]
                    and r["factor"] == factor
                    and r["silence_source"] == flag
                ]
                a_pooled: dict[str, list[np.ndarray]] = {}
                for b in prompt_langs:
                    if b == a:
                        continue
                    block = _cell(a, b, labels[a], own_rows, rand_rows, dense, seeds)
                    if block is None:
                        continue
                    arrays, cell = block
                    cell.update(factor=factor, silence_source=flag)
                    cells.append(_finish(cell, arrays, n_boot))
                    for name, values in arrays.items():
                        a_pooled.setdefault(name, []).append(values)
                        every.setdefault(name, []).append(values)
                if a_pooled:
                    joined = {k: np.concatenate(v) for k, v in a_pooled.items()}
                    cell = {"target": a, "factor": factor, "silence_source": flag}
                    pooled.append(_finish(cell, joined, n_boot))
            if every:
                joined = {k: np.concatenate(v) for k, v in every.items()}
                by_factor.append(
                    _finish({"factor": factor, "silence_source": flag}, joined, n_boot)
                )
    dense_rows = list(dense.values())
    base = {
        "dense_loglik": _mean([r["loglik_per_token"] for r in dense_rows]),
        "dense_repetition": _mean([r["repetition"] for r in dense_rows]),
        "dense_identified_as_prompt_language": _mean(
            [
                float(r["lid"] == labels.get(r["prompt_lang"]))
                for r in dense_rows
                if r["prompt_lang"] != NEUTRAL
            ]
        ),
    }
    return {
        "targets": list(targets),
        "prompt_languages": prompt_langs,
        "factors": list(factors),
        "labels": labels,
        **base,
        "cells": cells,
        "pooled": pooled,
        "by_factor": by_factor,
    }


def _mean(values: Sequence[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else math.nan


def _cell(a, b, label, own_rows, rand_rows, dense, seeds):
    own = {r["prompt_id"]: r for r in own_rows if r["prompt_lang"] == b}
    if not own:
        return None
    ids = sorted(own)
    rand: dict[str, list[dict]] = {}
    for r in rand_rows:
        if r["prompt_lang"] == b:
            rand.setdefault(r["prompt_id"], []).append(r)
    arrays = {
        "own": np.array([float(own[i]["lid"] == label) for i in ids]),
        "dense": np.array([float(dense[i]["lid"] == label) for i in ids]),
        "own_loglik": np.array([_nan(own[i]["loglik_per_token"]) for i in ids]),
        "own_repetition": np.array([own[i]["repetition"] for i in ids]),
    }
    if seeds and all(i in rand for i in ids):
        arrays["random"] = np.array([np.mean([r["lid"] == label for r in rand[i]]) for i in ids])
        arrays["random_loglik"] = np.array(
            [np.nanmean([_nan(r["loglik_per_token"]) for r in rand[i]]) for i in ids]
        )
    return arrays, {"target": a, "prompt_lang": b}


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _finish(cell: dict[str, Any], arrays: dict[str, np.ndarray], n_boot: int) -> dict[str, Any]:
    cell = dict(cell)
    cell["n_prompts"] = int(arrays["own"].size)
    for name in ("own", "dense", "random"):
        if name in arrays:
            mean, lo, hi = bootstrap_mean(arrays[name], n_boot)
            cell[f"share_{name}"], cell[f"share_{name}_lo"], cell[f"share_{name}_hi"] = mean, lo, hi
    for other in ("dense", "random"):
        if other in arrays:
            mean, lo, hi = bootstrap_mean(arrays["own"] - arrays[other], n_boot)
            cell[f"own_minus_{other}"] = mean
            cell[f"own_minus_{other}_lo"], cell[f"own_minus_{other}_hi"] = lo, hi
    ll = arrays["own_loglik"][np.isfinite(arrays["own_loglik"])]
    cell["loglik"] = float(ll.mean()) if ll.size else math.nan
    if "random_loglik" in arrays:
        rl = arrays["random_loglik"][np.isfinite(arrays["random_loglik"])]
        cell["random_loglik"] = float(rl.mean()) if rl.size else math.nan
    cell["repetition"] = float(arrays["own_repetition"].mean())
    return cell


def _lines(text: str) -> list[str]:
    """The non-blank lines of a continuation (language-confusion benchmarks judge each line)."""
    return [line for line in text.splitlines() if line.strip()]


def fidelity_summary(
    rows: Sequence[dict[str, Any]],
    targets: Sequence[str],
    labels: dict[str, str],
    factors: Sequence[float],
    groups: dict[str, str],
    n_boot: int = 2000,
) -> dict[str, Any]:
    """Does the answer stay in the prompt's language X? Per factor (1 = the unmodified model)
    and condition (X's own experts amplified, or X's random set): the line-level pass rate
    (share of answers whose every non-blank line is identified as X; an empty answer fails) and
    the share of lines identified as X, over the prompts of every target language, with
    bootstrap intervals over prompts and the paired difference to the unmodified model."""

    def passes(r: dict) -> tuple[float, float]:
        lines = r.get("line_lid") or []
        label = labels[r["prompt_lang"]]
        ok = [lab == label for lab in lines]
        return float(bool(ok) and all(ok)), (float(np.mean(ok)) if ok else 0.0)

    dense = {
        r["prompt_id"]: passes(r)
        for r in rows
        if r["condition"] == DENSE and r["prompt_lang"] in targets
    }
    ids = sorted(dense)
    out: dict[str, Any] = {"n_prompts": len(ids), "points": []}
    base = np.array([dense[i][0] for i in ids])
    mean, lo, hi = bootstrap_mean(base, n_boot)
    out["points"].append(
        {
            "condition": DENSE,
            "factor": 1.0,
            "pass_rate": mean,
            "pass_lo": lo,
            "pass_hi": hi,
            "line_share": float(np.mean([dense[i][1] for i in ids])) if ids else math.nan,
        }
    )
    for factor in [f for f in factors if f != 1.0]:
        for condition in (OWN, RANDOM):
            got: dict[str, list[tuple[float, float]]] = {}
            for r in rows:
                if r["condition"] != condition or r["factor"] != factor:
                    continue
                x = r["prompt_lang"]
                want = x if condition == OWN else groups.get(x)
                if x in targets and r["target"] == want:
                    got.setdefault(r["prompt_id"], []).append(passes(r))
            common = [i for i in ids if i in got]
            if not common:
                continue
            value = np.array([np.mean([g[0] for g in got[i]]) for i in common])
            mean, lo, hi = bootstrap_mean(value, n_boot)
            d_mean, d_lo, d_hi = bootstrap_mean(
                value - np.array([dense[i][0] for i in common]), n_boot
            )
            out["points"].append(
                {
                    "condition": condition,
                    "factor": factor,
                    "pass_rate": mean,
                    "pass_lo": lo,
                    "pass_hi": hi,
                    "minus_unmodified": d_mean,
                    "minus_unmodified_lo": d_lo,
                    "minus_unmodified_hi": d_hi,
                    "line_share": float(np.mean([np.mean([g[1] for g in got[i]]) for i in common])),
                }
            )
    return out
