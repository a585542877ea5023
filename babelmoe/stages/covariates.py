"""The covariates stage: measure a run's language covariates and write ``RUN/covariates/``.

``run_covariates(config, run_dir, model=None)`` reads the run's profile (its languages, corpus,
held-out split and model identity), reloads the corpus and measures, per language:

- with the tokenizer, on the profiled documents: tokens per UTF-8 byte of the documents whose ids
  every language has (for UDHR the same articles in every language: the parallel text), and the
  input token-id distribution of exactly the tokens the profile read (``tokens_sha256`` checks
  that they are the same);
- with the model, on the held-out documents (the same whole documents in every language, as
  many as the median language needs to reach ``heldout_tokens`` tokens; see
  :func:`heldout_selection`): bits per byte, BOS prepended
  (:func:`babelmoe.evaluate.perplexity.perplexity`);
- from metadata: Glottolog lineages and coordinates (``urielplus``), UDHR coordinates where
  Glottolog has none, the script shares of the letters.

It then writes :func:`babelmoe.analysis.covariates.save_covariates`'s artifact plus
``languages.csv``. Without ``model`` it loads the model the profile records; when that
cannot be loaded (a GGUF file or a folder that moved, a hub id offline) it keeps what needs no
model and says in the artifact's ``notes`` what is missing. An identical artifact is kept (the
identity: the profile's model, corpus and tokens, the settings, and which parts were measured); a
different one is refused unless ``force``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from babelmoe import artifacts
from babelmoe.analysis import covariates as cv
from babelmoe.errors import BabelmoeError
from babelmoe.models.loading import LoadedModel, ModelSpec, as_loaded

logger = logging.getLogger(__name__)

BUNDLED_SUFFIX = " (bundled)"  # how model_identity names the default model
SECTION_ORDER = 55  # in the report: after the analysis, before family against script


@dataclass(frozen=True)
class CovariatesConfig:
    """How the covariates are measured.

    Attributes:
        heldout_tokens: bits per byte reads whole held-out documents, the same ones in every
            language of a parallel corpus, until the median language has this many tokens
            (see :func:`heldout_selection`). The model's forward pass is the stage's whole
            cost: with 128 (3 UDHR articles) the 69-language study took 155 CPU-seconds on one
            thread (``benchmarks/bench_covariates.py``).
        max_length: tokens per window of the bits-per-byte forward passes.
        batch_size: windows per forward pass.
    """

    heldout_tokens: int = 128
    max_length: int = 512
    batch_size: int = 4

    def __post_init__(self) -> None:
        if self.heldout_tokens < 1:
            raise BabelmoeError(
                f"heldout_tokens must be >= 1, got {self.heldout_tokens}", "pass e.g. 1024"
            )
        if self.max_length < 2 or self.batch_size < 1:
            raise BabelmoeError(
                "max_length must be >= 2 and batch_size >= 1", "pass e.g. 512 and 4"
            )


def _labels(meta: dict[str, Any], languages: list[dict[str, Any]]) -> list[str]:
    labels = (meta.get("corpus") or {}).get("labels")
    if isinstance(labels, list) and len(labels) == len(languages):
        return [str(x) for x in labels]
    return [str(lang["code"]) for lang in languages]


def recorded_model(meta: dict[str, Any]) -> str | None:
    """The ``--model`` source a profile's model identity names, or None when it names none that
    can be loaded again (a GGUF file name without its folder, a synthetic model)."""
    name = str((meta.get("model") or {}).get("name") or "")
    if name.endswith(BUNDLED_SUFFIX):
        from babelmoe.models.loading import DEFAULT_MODEL

        return DEFAULT_MODEL
    if not name or (name.endswith(".gguf") and not Path(name).is_file()):
        return None
    return name


def _load_recorded(meta: dict[str, Any]) -> tuple[LoadedModel | None, str | None]:
    """(the model the profile records, or None; why not)."""
    from babelmoe.models.loading import ModelSpec, load_model

    source = recorded_model(meta)
    if source is None:
        return None, "the profile records no model that can be loaded again"
    try:
        loaded = load_model(ModelSpec(source=source))
    except (BabelmoeError, OSError, ValueError) as exc:
        return None, f"the profile's model {source!r} cannot be loaded ({exc})"
    if artifacts.jsonable(loaded.identity) != artifacts.jsonable(meta.get("model")):
        return None, f"the model at {source!r} is no longer the one the profile was made with"
    return loaded, None


def _coordinates(
    languages: list[dict[str, Any]], corpus: Any
) -> tuple[list[tuple[float, float] | None], list[str]]:
    """Glottolog coordinates, else the UDHR package's, per language; and notes."""
    from babelmoe.corpus.languages import glottolog_coordinates

    out: list[tuple[float, float] | None] = []
    udhr: dict[str, tuple[float, float]] = {}
    if corpus is not None and corpus.source == "udhr":
        try:
            from babelmoe.corpus import list_udhr

            udhr = {
                v.code: (v.latitude, v.longitude)
                for v in list_udhr(install=False)
                if v.latitude is not None and v.longitude is not None
            }
        except BabelmoeError as exc:
            logger.warning("no UDHR coordinates: %s", exc.one_line())
    variants = [lc.variant for lc in corpus.languages] if corpus is not None else []
    from_udhr = []
    for i, lang in enumerate(languages):
        point = glottolog_coordinates(str(lang.get("code")), lang.get("glottocode"))
        if point is None and i < len(variants) and variants[i] in udhr:
            point = udhr[variants[i]]
            from_udhr.append(str(lang.get("code")))
        out.append(point)
    notes = [f"geography: UDHR coordinates for {', '.join(from_udhr)}"] if from_udhr else []
    return out, notes


def _common_ids(parts: list[list[Any]]) -> set[str]:
    ids = [{doc.id for doc in docs} for docs in parts]
    return set.intersection(*ids) if ids else set()


def measure(
    meta: dict[str, Any],
    corpus: Any,
    tokenizer: Any,
    model: Any,
    config: CovariatesConfig,
) -> dict[str, Any]:
    """Tokens per byte, token distributions and bits per byte of the profile's languages
    (``corpus``: the profile's corpus reloaded; ``model`` None: no bits per byte)."""
    from babelmoe.evaluate.encoding import encode_texts
    from babelmoe.evaluate.perplexity import PerplexityConfig, perplexity
    from babelmoe.stages.profile import ProfileConfig, tokenized_corpus, tokens_sha256

    settings = meta.get("config") or {}
    fields = set(ProfileConfig.__dataclass_fields__)
    profile_cfg = ProfileConfig(**{k: v for k, v in settings.items() if k in fields})
    notes: list[str] = []
    _, documents, _ = tokenized_corpus(profile_cfg, tokenizer, corpus)
    if meta.get("tokens_sha256") and tokens_sha256(documents) != meta["tokens_sha256"]:
        notes.append("token distributions: the tokenizer now gives other tokens than profiling")
    counts = [cv.TokenCounts.from_ids([t for doc in docs for t in doc]) for docs in documents]
    profiled, held = corpus.split_heldout(profile_cfg.heldout_frac, profile_cfg.heldout_seed)
    parts = [lc.documents for lc in profiled.languages]
    common = _common_ids(parts)
    if not common:
        notes.append("tokens/byte: no document id in every language (not a parallel corpus)")
    n_tokens, n_bytes = [], []
    for docs in parts:
        chosen = [d.text for d in docs if d.id in common] if common else [d.text for d in docs]
        n_tokens.append(sum(len(ids) for ids in encode_texts(tokenizer, chosen)))
        n_bytes.append(sum(len(text.encode("utf-8")) for text in chosen))
    out: dict[str, Any] = {
        "token_counts": counts,
        "tokens_per_byte": np.asarray(n_tokens, dtype=np.float64)
        / np.maximum(np.asarray(n_bytes, dtype=np.float64), 1.0),
        "extra_features": {
            "parallel_tokens": np.asarray(n_tokens, dtype=np.float64),
            "parallel_bytes": np.asarray(n_bytes, dtype=np.float64),
        },
        "parallel_tokens": np.asarray(n_tokens, dtype=np.float64) if common else None,
        "n_parallel_documents": len(common),
        "notes": notes,
    }
    if model is None:
        return out
    held_parts = [lc.documents for lc in held.languages]
    chosen_texts, parallel = heldout_selection(held_parts, tokenizer, config.heldout_tokens)
    ppl_cfg = PerplexityConfig(max_length=config.max_length, batch_size=config.batch_size)
    bpb, bpb_bytes, bits = [], [], []
    for lc, chosen in zip(held.languages, chosen_texts, strict=True):
        if not chosen:
            bpb.append(float("nan"))
            bpb_bytes.append(0.0)
            bits.append(float("nan"))
            continue
        result = perplexity(model, tokenizer, chosen, ppl_cfg, desc=f"bits/byte {lc.lang.code}")
        bpb.append(result.bits_per_byte)
        bpb_bytes.append(float(result.n_bytes))
        bits.append(result.nll_sum / math.log(2))
    if not parallel:
        notes.append("bits/byte: held-out documents differ between languages (no common ids)")
    out["bits_per_byte"] = np.asarray(bpb, dtype=np.float64)
    out["extra_features"]["heldout_bytes"] = np.asarray(bpb_bytes, dtype=np.float64)
    out["extra_features"]["heldout_bits"] = np.asarray(bits, dtype=np.float64)
    out["parallel_bits"] = np.asarray(bits, dtype=np.float64) if parallel else None
    out["n_heldout_documents"] = max((len(c) for c in chosen_texts), default=0)
    return out


def heldout_selection(
    parts: list[list[Any]], tokenizer: Any, cap: int
) -> tuple[list[list[str]], bool]:
    """The held-out texts bits per byte reads, per language, and whether they are parallel.

    When every language has some document ids in common (a parallel corpus), all languages read
    the same documents: the first k common ones (in the first language's order), k the fewest
    whose tokens reach ``cap`` for the median language (the cost is about ``cap`` tokens per
    language on average, and every language is scored on the same content). Otherwise each
    language reads its own documents, in order, until it has ``cap`` tokens.
    """
    from babelmoe.evaluate.encoding import encode_texts

    common = _common_ids(parts) if parts and all(parts) else set()
    if common:
        order = [d.id for d in parts[0] if d.id in common]
        texts = [{d.id: d.text for d in docs} for docs in parts]
        lengths = np.array(
            [[len(ids) for ids in encode_texts(tokenizer, [t[i] for i in order])] for t in texts]
        )  # [n_lang, k]
        median = np.median(np.cumsum(lengths, axis=1), axis=0)  # [k]
        k = int(np.searchsorted(median, cap) + 1) if len(order) else 0
        chosen = order[: min(k, len(order))]
        return [[t[i] for i in chosen] for t in texts], True
    out = []
    for docs in parts:
        pool, chosen_texts, total = [d.text for d in docs], [], 0
        for text, ids in zip(pool, encode_texts(tokenizer, pool), strict=True):
            if total >= cap:
                break
            chosen_texts.append(text)
            total += len(ids)
        out.append(chosen_texts)
    return out, False


def run_covariates(
    config: CovariatesConfig | None,
    run_dir: Path,
    *,
    model: LoadedModel | ModelSpec | None = None,
    force: bool = False,
    load: bool = True,
) -> Path:
    """Measure the covariates of ``run_dir``'s profile; write ``RUN/covariates/``; return its
    JSON path. ``model``: the profile's model (a spec loads only when the covariates are not
    there yet; none: it is loaded from the profile's record when ``load``; without a model,
    only what needs none is written)."""
    from babelmoe.corpus import load_corpus

    config = config or CovariatesConfig()
    run_dir = Path(run_dir)
    began = time.perf_counter()
    meta = artifacts.load_meta(run_dir, artifacts.PROFILE, "profile")
    languages = list(meta["languages"])
    labels = _labels(meta, languages)
    notes: list[str] = []
    settings = meta.get("config") or {}
    corpus = None
    try:
        corpus = load_corpus(settings["corpus"], list(settings["languages"]))
        recorded = (meta.get("corpus") or {}).get("sha256")
        if recorded and corpus.identity()["sha256"] != recorded:
            notes.append(f"the corpus {settings['corpus']} changed since profiling")
        if [lc.lang.code for lc in corpus.languages] != [lang["code"] for lang in languages]:
            raise BabelmoeError("the corpus gives other languages than the profile", "")
    except (BabelmoeError, KeyError, TypeError) as exc:
        why = exc.one_line() if isinstance(exc, BabelmoeError) else f"no {exc}"
        notes.append(f"the profile's corpus cannot be read again ({why}): nothing measured")
        corpus = None

    loaded, why = model, None
    if loaded is None and corpus is not None:
        if load:
            loaded, why = _load_recorded(meta)
        else:
            why = "no model given"
        if why:
            notes.append(f"{why}: tokens/byte, token overlap and bits/byte not measured")
    measured = {"model": loaded is not None and corpus is not None}
    identity = {
        "model": meta.get("model"),
        "corpus": meta.get("corpus"),
        "profile_tokens_sha256": meta.get("tokens_sha256"),
        "covariates_config": asdict(config),
        "measured": measured,
    }
    with artifacts.run_lock(run_dir):
        return _write(run_dir, meta, labels, corpus, loaded, config, identity, notes, force, began)


def _write(
    run_dir: Path,
    meta: dict[str, Any],
    labels: list[str],
    corpus: Any,
    loaded: LoadedModel | ModelSpec | None,
    config: CovariatesConfig,
    identity: dict[str, Any],
    notes: list[str],
    force: bool,
    began: float,
) -> Path:
    folder = cv.covariates_dir(run_dir)
    force = force or _only_more_measured(folder, identity)
    if not artifacts.check_can_write(folder, artifacts.COVARIATES, cv.KIND, identity, force):
        logger.info("%s already holds these covariates; keeping them", folder)
        return folder / f"{artifacts.COVARIATES}.json"
    languages = list(meta["languages"])
    values: dict[str, Any] = {}
    if loaded is not None and corpus is not None:
        loaded = as_loaded(loaded)
        values = measure(meta, corpus, loaded.tokenizer, loaded.model, config)
        notes += values.pop("notes")
    coordinates, coord_notes = _coordinates(languages, corpus)
    cov = cv.compute_covariates(
        languages,
        labels,
        tokens_per_byte=values.get("tokens_per_byte"),
        parallel_tokens=values.get("parallel_tokens"),
        parallel_bits=values.get("parallel_bits"),
        bits_per_byte=values.get("bits_per_byte"),
        token_counts=values.get("token_counts"),
        coordinates=coordinates,
        extra_features=values.get("extra_features"),
        notes=[*notes, *coord_notes],
    )
    identity["n_parallel_documents"] = values.get("n_parallel_documents")
    identity["n_heldout_documents"] = values.get("n_heldout_documents")
    path = cv.save_covariates(run_dir, cov, identity)
    artifacts.atomic_write_json(folder / artifacts.SECTION_FILE, report_section(cov))
    for note in cov.notes:
        logger.warning("covariates: %s", note)
    logger.info(
        "covariates of %d languages (%s) -> %s in %.1fs",
        len(labels),
        ", ".join(cov.distances),
        path.parent,
        time.perf_counter() - began,
    )
    return path


def _only_more_measured(folder: Path, identity: dict[str, Any]) -> bool:
    """Whether the covariates in ``folder`` were made without a model and differ from
    ``identity`` only in what that left unmeasured: derived data, replaced without ``force``."""
    if not artifacts.artifact_exists(folder, artifacts.COVARIATES):
        return False
    try:
        meta = artifacts.load_meta(folder, artifacts.COVARIATES, cv.KIND)
    except BabelmoeError:
        return False
    differing = artifacts.differing_fields(meta, identity)
    before = (meta.get("measured") or {}).get("model")
    # without the model the settings measured nothing: they may differ too
    unused = {"measured", "covariates_config"}
    return bool(differing) and set(differing) <= unused and before is False


def report_section(cov: cv.Covariates) -> dict[str, Any]:
    """The report's section of the covariates: what each is and where it comes from, the notes,
    and the per-language table."""
    import html

    items = "".join(
        f"<li><b>{html.escape(name)}</b>: {html.escape(text)}</li>"
        for name, text in cov.sources.items()
    )
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in cov.notes)
    lead = (
        f"<p>Covariates of the {len(cov.languages)} languages: what else could make two "
        f"languages' activations alike. Defaults: script = <b>{cv.DEFAULT_SCRIPT}</b>, "
        f"genealogy = <b>{cv.DEFAULT_GENEALOGY}</b>.</p>"
    )
    return {
        "schema_version": artifacts.SCHEMA_VERSION,
        "title": "Covariates: fertility, familiarity, token overlap, geography, graded references",
        "order": SECTION_ORDER,
        "html": lead + f"<ul>{items}</ul>" + notes,
        "figures": [],
        "tables": [
            {"path": artifacts.COVARIATES_TABLE, "title": "Covariates per language", "max_rows": 80}
        ],
    }


def ensure_covariates(run_dir: Path, model: LoadedModel | ModelSpec | None = None) -> None:
    """Write ``RUN/covariates/`` when the run has none (loading the profile's model)."""
    if not artifacts.artifact_exists(cv.covariates_dir(Path(run_dir)), artifacts.COVARIATES):
        run_covariates(None, run_dir, model=model)
