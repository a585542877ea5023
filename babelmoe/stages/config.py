"""The stages' configs: typed dataclasses with documented fields, validated in ``__post_init__``.

They live here, apart from their runners, so that this module imports without torch, numpy or
transformers: every command's ``--help`` shows these defaults and must not wait for the stacks
the stage itself needs (anything heavy is imported inside a method, when a config is built).
The runners re-export them (``from babelmoe.stages.profile import ProfileConfig`` still works).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from babelmoe.corpus.load import PAPER_LANGUAGES
from babelmoe.corpus.study import (
    REPLICATION_LANGUAGES,
    REPLICATION_RULE,
    STUDY50_BUDGET,
    STUDY50_LANGUAGES,
)
from babelmoe.errors import BabelmoeError, require, setting, unknown_name
from babelmoe.experts.config import SplitConfig
from babelmoe.interventions.prompts import NEUTRAL_PROMPTS

if TYPE_CHECKING:
    from babelmoe.analysis.config import AnalysisConfig
    from babelmoe.evaluate.perplexity import PerplexityConfig
    from babelmoe.interventions.selection import SelectionConfig
    from babelmoe.interventions.steering import GenerationConfig
    from babelmoe.profile.core import Scoring

NORMS = ("l2", "l1", "mean", "max")
STEER_CONTRASTS = ("profiled", "steered")
"""Languages ``babelmoe steer`` compares each language with when it picks its experts."""


@dataclass
class ProfileConfig:
    """What to profile and how.

    Attributes:
        languages: language codes (ISO 639-3, BCP 47 or ISO 639-1; UDHR codes for UDHR).
        corpus: ``udhr``, a folder of ``<lang>.txt``/``<lang>.jsonl``, or
            ``hf:<dataset>[:<config>]``.
        token_budget: at most this many counted tokens per language (BOS excluded).
        heldout_frac: share of each language's documents kept out for evaluation.
        heldout_seed: seed of the document split (evaluation must use the same).
        max_length: tokens per sequence, BOS included (longer documents are cut into chunks
            of this length, each starting with BOS).
        batch_tokens: positions per forward pass (rows x padded width): rows of similar length
            are batched together up to this size, so short documents make wide batches and
            padding stays small. Lower it if the GPU runs out of memory.
        batch_size: at most this many sequences per forward pass (None: as many as
            ``batch_tokens`` allows).
        packing: pack several document chunks into each row of ``max_length`` (each chunk starts
            with BOS and attends only to itself: the same counts as without packing, up to float
            ties). Needs a model that takes position ids.
        norm: expert score: l2 (default), l1, mean (mean |h|) or max (max |h|) of its slice of h.
        selection: ``global`` (top fraction of all L*E z-scores per token) or ``per_layer``.
        top_frac: fraction of experts a token selects (default 0.10).
        zscore: standardise scores per token and layer before selecting (default on).
        n_units: bootstrap units per language (documents grouped round-robin), for intervals.
        checkpoint_minutes: minutes between resumable checkpoints (and NaN checks). A checkpoint
            waits for the device and writes the counts (tens of MB for a 7B model): by time, its
            cost stays a small share of any run however fast the batches go.
        checkpoint_every: a checkpoint every this many batches instead (None: by time).
        compile: on CUDA, ``torch.compile`` the decoder layers with the statistics inside
            (one graph shared by all layers and batch shapes); ignored on CPU.
    """

    languages: list[str] = field(default_factory=lambda: list(PAPER_LANGUAGES))
    corpus: str = "udhr"
    token_budget: int = 50_000
    heldout_frac: float = 0.2
    heldout_seed: int = 0
    max_length: int = 512
    batch_tokens: int = 16384
    batch_size: int | None = None
    packing: bool = False
    norm: str = "l2"
    selection: str = "global"
    top_frac: float = 0.10
    zscore: bool = True
    n_units: int = 32
    checkpoint_minutes: float = 5.0
    checkpoint_every: int | None = None
    compile: bool = True

    def __post_init__(self) -> None:
        checks = [
            (
                len(self.languages) > 0,
                "no languages given",
                f"pass {setting('languages')} en,fr,...",
            ),
            (
                len(set(self.languages)) == len(self.languages),
                f"duplicate languages in {self.languages}",
                "list each language once",
            ),
            (
                self.token_budget >= 1,
                f"{setting('token_budget')} must be >= 1 token, got {self.token_budget}",
                "pass e.g. 50000",
            ),
            (
                0.0 <= self.heldout_frac < 1.0,
                f"{setting('heldout_frac')} must be in [0, 1), got {self.heldout_frac}",
                "pass e.g. 0.2",
            ),
            (
                self.max_length >= 2,
                f"{setting('max_length')} must be >= 2, got {self.max_length}",
                "pass e.g. 512",
            ),
            (
                self.batch_tokens >= 1,
                f"{setting('batch_tokens')} must be >= 1, got {self.batch_tokens}",
                "pass e.g. 16384",
            ),
            (
                self.batch_size is None or self.batch_size >= 1,
                f"{setting('batch_size')} must be >= 1, got {self.batch_size}",
                f"pass e.g. 8, or leave it out (as many rows as {setting('batch_tokens')} allows)",
            ),
            (
                self.norm in NORMS,
                f"unknown {setting('norm')} {self.norm!r}",
                f"use one of {', '.join(NORMS)}",
            ),
            (
                self.selection in ("global", "per_layer"),
                f"unknown {setting('selection')} {self.selection!r}",
                "use global or per_layer",
            ),
            (
                0.0 < self.top_frac <= 1.0,
                f"{setting('top_frac')} must be in (0, 1], got {self.top_frac}",
                "pass e.g. 0.1",
            ),
            (
                self.n_units >= 1,
                f"{setting('n_units')} must be >= 1, got {self.n_units}",
                "pass e.g. 32",
            ),
            (
                math.isfinite(self.checkpoint_minutes) and self.checkpoint_minutes > 0,
                f"{setting('checkpoint_minutes')} must be a finite number > 0, "
                f"got {self.checkpoint_minutes}",
                f"pass e.g. 5 (or {setting('checkpoint_every')} N for a checkpoint every N "
                "batches)",
            ),
            (
                self.checkpoint_every is None or self.checkpoint_every >= 1,
                f"{setting('checkpoint_every')} must be >= 1, got {self.checkpoint_every}",
                "pass e.g. 50, or leave it out (a checkpoint every "
                f"{setting('checkpoint_minutes')})",
            ),
        ]
        for ok, problem, fix in checks:
            if not ok:
                raise BabelmoeError(problem, fix)

    @property
    def scoring(self) -> Scoring:
        from babelmoe.profile.core import Scoring

        return Scoring(
            norm=self.norm,
            selection=self.selection,  # type: ignore[arg-type]
            top_frac=self.top_frac,
            zscore=self.zscore,
            compile=self.compile,
            compile_layers=self.compile,
        )


@dataclass
class PipelineConfig:
    """What the main job runs.

    Attributes:
        split: the expert split (its ``seed`` is the main run's seed).
        profile: the profiling run (languages, corpus, budget ...).
        extra_seeds: further k-means seeds profiled for the stability study (empty: none).
        sweep: run the pruning sweep (frequency-guided vs random) and put it in the report.
        sweep_ratios: pruning ratios of the sweep.
        sweep_methods: frequency-guided (and norm-baseline) methods compared with random.
        sweep_documents: held-out documents per language the sweep evaluates (None: all).
        specificity: also prune for each language and evaluate on every other (9 x 9 more
            evaluations: off by default in the main job, on in ``babelmoe sweep``).
    """

    split: SplitConfig = field(default_factory=SplitConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    extra_seeds: tuple[int, ...] = (1, 2)
    sweep: bool = True
    sweep_ratios: tuple[float, ...] = (0.1, 0.25, 0.4)
    sweep_methods: tuple[str, ...] = ("sort", "norm")
    sweep_documents: int | None = 3
    specificity: bool = False

    def __post_init__(self) -> None:
        if self.split.seed in self.extra_seeds:
            raise BabelmoeError(
                f"{setting('seed')} {self.split.seed} is also among the extra seeds "
                f"{list(self.extra_seeds)}",
                "give distinct seeds",
            )


@dataclass
class StudyConfig:
    """What ``babelmoe study`` runs (every field has the study's default).

    Attributes:
        languages: UDHR codes of the study (default: the frozen 69).
        budget: profiled tokens per language.
        n_experts: experts per layer.
        seed: k-means seed.
        n_bootstrap: bootstrap resamples of the intervals.
        n_permutations: random relabelings of the permutation tests.
        batch_size: at most this many sequences per forward pass (None: the profile's default
            batching by positions).
        corpus: the corpus of both samples (UDHR; a folder for tests).
        replication: also profile and analyse the replication sample into ``RUN/replication``.
        replication_languages: the replication sample (default: the frozen 50; a user's own
            must not share an ISO 639-3 language with ``languages``).
    """

    languages: tuple[str, ...] = STUDY50_LANGUAGES
    budget: int = STUDY50_BUDGET
    n_experts: int = 256
    seed: int = 0
    n_bootstrap: int = 200
    n_permutations: int = 9999
    batch_size: int | None = None
    corpus: str = "udhr"
    replication: bool = True
    replication_languages: tuple[str, ...] = REPLICATION_LANGUAGES
    split: SplitConfig = field(init=False)
    profile: ProfileConfig = field(init=False)
    replication_profile: ProfileConfig = field(init=False)

    def __post_init__(self) -> None:
        require(len(self.languages) >= 4, "the study needs at least 4 languages")
        require(
            self.n_bootstrap >= 0,
            f"{setting('n_bootstrap')} must be >= 0, got {self.n_bootstrap}",
            "use 0 to skip intervals",
        )
        self.languages = tuple(self.languages)
        self.replication_languages = tuple(self.replication_languages)
        if self.replication:
            require(
                len(self.replication_languages) >= 4,
                f"the replication sample needs at least 4 languages, got "
                f"{len(self.replication_languages)}",
                f"pass more {setting('replication_languages')} or switch {setting('replication')} "
                "off",
            )
        self.split = SplitConfig(n_experts=self.n_experts, seed=self.seed)
        self.profile = self._profile(self.languages)
        self.replication_profile = self._profile(self.replication_languages)

    def _profile(self, languages: tuple[str, ...]) -> ProfileConfig:
        return ProfileConfig(
            languages=list(languages),
            corpus=self.corpus,
            token_budget=self.budget,
            batch_size=self.batch_size,
        )

    def replication_statement(self) -> str:
        """The rule of the replication sample and its languages, as printed before profiling."""
        codes = ", ".join(self.replication_languages)
        n = len(self.replication_languages)
        if self.replication_languages == REPLICATION_LANGUAGES:
            return f"replication sample: {n} languages, {REPLICATION_RULE}: {codes}"
        weak = " (fewer than 40: a weak replication)" if n < 40 else ""
        return f"replication sample: {n} languages given by --replication-languages{weak}: {codes}"

    @property
    def analysis(self) -> AnalysisConfig:
        """The analysis, on the primary metric only (the other metrics' bootstrap would cost
        minutes per metric with 69 languages and answers nothing the study asks)."""
        from babelmoe.analysis.config import AnalysisConfig, StatisticsConfig

        statistics = StatisticsConfig(
            n_bootstrap=self.n_bootstrap, n_permutations=self.n_permutations, seed=self.seed
        )
        return AnalysisConfig(metrics=("jensen_shannon",), statistics=statistics)


@dataclass(frozen=True)
class EvaluateConfig:
    """What to evaluate.

    Attributes:
        languages: languages to evaluate (as profiled); None: every profiled language.
        max_length: tokens per perplexity window (and longest multiple-choice sequence).
        batch_size: sequences per forward pass.
        max_documents: at most this many held-out documents per language (None: all).
        udhr_cont: also run the project's UDHR continuation task on the held-out documents.
        udhr_cont_segment: ``sentence`` (one item per sentence) or ``document``.
        xcsqa: folder (``{lang}/{split}.jsonl``) or file of published X-CSQA questions, or None.
        xcsqa_split: X-CSQA split (``dev``; ``test`` has no answers).
        mgsm: folder of published ``mgsm_{lang}.tsv`` files, or None.
        mgsm_mode: ``cot`` (step-by-step) or ``direct``.
        mgsm_shots: exemplars per MGSM prompt (needs ``mgsm_exemplars``).
        mgsm_exemplars: JSON copy of the published ``MGSM_EXEMPLARS``, or None.
        limit: at most this many items per task and language (None: all); for quick checks.
        tasks: lm-eval task names or task YAML files, run through lm-evaluation-harness on the
            same model (needs ``pip install 'babelmoe[eval]'``).
        num_fewshot: few-shot examples for ``tasks`` (None: each task's default).
    """

    languages: tuple[str, ...] | None = None
    max_length: int = 1024
    batch_size: int = 4
    max_documents: int | None = None
    udhr_cont: bool = False
    udhr_cont_segment: Literal["sentence", "document"] = "sentence"
    xcsqa: Path | None = None
    xcsqa_split: str = "dev"
    mgsm: Path | None = None
    mgsm_mode: Literal["cot", "direct"] = "cot"
    mgsm_shots: int = 0
    mgsm_exemplars: Path | None = None
    limit: int | None = None
    tasks: tuple[str, ...] = ()
    num_fewshot: int | None = None

    def __post_init__(self) -> None:
        if self.max_documents is not None and self.max_documents < 1:
            raise BabelmoeError(
                f"{setting('max_documents')} must be >= 1, got {self.max_documents}",
                "omit it for all",
            )
        if self.limit is not None and self.limit < 1:
            raise BabelmoeError(
                f"{setting('limit')} must be >= 1, got {self.limit}", "omit it for all items"
            )
        if self.mgsm_shots and self.mgsm_exemplars is None:
            raise BabelmoeError(
                f"{setting('mgsm_shots')} needs {setting('mgsm_exemplars')}",
                "pass the exemplars JSON file",
            )
        if self.mgsm_mode not in ("cot", "direct"):
            raise BabelmoeError(
                f"unknown {setting('mgsm_mode')} {self.mgsm_mode!r}", "use cot or direct"
            )
        if self.num_fewshot is not None and self.num_fewshot < 0:
            raise BabelmoeError(
                f"{setting('num_fewshot')} must be >= 0, got {self.num_fewshot}",
                "pass 0 or more, or omit it for each task's own default",
            )
        if self.num_fewshot is not None and not self.tasks:
            raise BabelmoeError(
                f"{setting('num_fewshot')} applies to {setting('tasks')}, and no "
                f"{setting('tasks')} was given",
                f"add {setting('tasks')} or drop {setting('num_fewshot')}",
            )
        if self.limit is not None and not self.has_tasks:
            raise BabelmoeError(
                f"{setting('limit')} applies to tasks, and none was asked (perplexity uses every "
                "held-out document)",
                f"add {setting('tasks')}, {setting('udhr_cont')}, {setting('xcsqa')} or "
                f"{setting('mgsm')}, or use {setting('max_documents')}",
            )
        from babelmoe.evaluate.perplexity import PerplexityConfig

        PerplexityConfig(max_length=self.max_length, batch_size=self.batch_size)  # validates

    @property
    def has_tasks(self) -> bool:
        """Whether any task beside perplexity is asked (what ``limit`` applies to)."""
        return self.needs_harness or self.udhr_cont

    @property
    def needs_harness(self) -> bool:
        """Whether a task runs through lm-evaluation-harness (X-CSQA, MGSM, ``tasks``)."""
        return bool(self.tasks) or self.xcsqa is not None or self.mgsm is not None

    @property
    def perplexity(self) -> PerplexityConfig:
        from babelmoe.evaluate.perplexity import PerplexityConfig

        return PerplexityConfig(max_length=self.max_length, batch_size=self.batch_size)


@dataclass
class LanguagesConfig:
    """What ``babelmoe languages`` lists.

    Attributes:
        corpus: ``udhr`` or a folder of ``<lang>.txt``/``<lang>.jsonl``.
        model: whose tokenizer counts the tokens: ``default``, a folder, a hub id; ``None``: no
            token counts (and no ``min_tokens``).
        family: keep a Glottolog family, genus or lineage node (``Indo-European``, ``Romance``).
        script: keep versions with at least ``min_script_share`` of their letters in this script
            (ISO 15924 code or Unicode name: ``Cyrl``, ``Han``).
        min_tokens: keep versions with at least this many tokens in the profiled documents.
        min_script_share: see ``script``.
        defaults_only: keep only the version a bare language code picks.
        heldout_frac: the held-out share (as ``babelmoe profile``) for the profiled-token count.
        heldout_seed: the held-out split's seed (as ``babelmoe profile``).
        refresh: rebuild the cached catalogue.
    """

    corpus: str = "udhr"
    model: str | None = "default"
    family: str | None = None
    script: str | None = None
    min_tokens: int | None = None
    min_script_share: float = 0.1
    defaults_only: bool = False
    heldout_frac: float = 0.2
    heldout_seed: int = 0
    refresh: bool = False

    def __post_init__(self) -> None:
        require(
            self.min_tokens is None or self.min_tokens >= 0,
            f"{setting('min_tokens')} must be >= 0, got {self.min_tokens}",
            "pass e.g. 1500",
        )
        require(
            0.0 < self.min_script_share <= 1.0,
            f"{setting('min_script_share')} must lie in (0, 1], got {self.min_script_share}",
            "pass e.g. 0.1",
        )
        require(
            self.min_tokens is None or self.model is not None,
            f"{setting('min_tokens')} needs token counts",
            f"give a {setting('model')} (e.g. default) or drop {setting('min_tokens')}",
        )


@dataclass(frozen=True)
class SteerConfig:
    """What ``babelmoe steer`` runs (defaults fit 15 minutes on 2 CPU cores for the bundled
    model and nine languages; see benchmarks/RESULTS.md)."""

    languages: tuple[str, ...] | None = None
    """Languages (targets and evaluated); None: every profiled one."""
    contrast: str = "profiled"
    """Which languages the selection rule compares a language with: ``profiled`` (every
    profiled language, also those not in ``languages``) or ``steered`` (only ``languages``:
    the selection a run profiled on those alone would make)."""
    rule: str = "excess"
    """Selection rule of a language's experts (excess or lape)."""
    k: int = 16
    """Experts per layer (scope layer) or k * layers in all (scope global)."""
    scope: str = "layer"
    """layer or global."""
    random_seeds: tuple[int, ...] = (0, 1, 2)
    """Random expert sets (same per-layer counts) of the silencing null."""
    shared_null: bool = True
    """Languages with the same per-layer counts share each seed's random set (evaluated once;
    the random matrix then has equal rows and a dominance of 0 by construction). False: every
    language draws its own set (a proper null of the dominance statistic; n_lang times the
    random models)."""
    steer_seeds: tuple[int, ...] = (0,)
    """Random expert sets of the steering null (each language gets its own)."""
    factors: tuple[float, ...] = (1.0, 2.0, 4.0)
    """Amplification factors of the target's experts (1 = the unmodified model)."""
    prompts: int = 2
    """Held-out documents per language whose first sentence is a prompt."""
    neutral: tuple[str, ...] = NEUTRAL_PROMPTS
    """Language-neutral prompts, continued as well."""
    silence_source: bool = False
    """Also steer with the prompt language's experts silenced."""
    keep_language: bool = False
    """Instead of steering into other languages, amplify each prompt language's own experts:
    does the answer stay in the prompt's language (line by line)? For instruction models,
    with ``chat``."""
    chat: bool = False
    """Send prompts as a user turn through the tokenizer's chat template."""
    silencing: bool = True
    """Run the silencing matrix."""
    steering: bool = True
    """Run the steering generation."""
    max_documents: int | None = 2
    """Held-out documents per language for the perplexities (None: all)."""
    max_length: int = 512
    """Tokens per perplexity window."""
    batch_size: int = 16
    """Sequences per forward of the perplexities and the fluency scores."""
    gen_batch_size: int = 64
    """Sequences per generate call."""
    max_new_tokens: int = 16
    """Tokens generated per prompt."""
    sample: bool = False
    """Sample (seeded) instead of greedy decoding."""
    temperature: float = 1.0
    """Sampling temperature."""
    seed: int = 0
    """Seed of sampling and of the permutation tests."""
    n_perm: int = 9999
    """Random permutations of the diagonal-dominance test (exact up to 7 languages)."""

    def __post_init__(self) -> None:
        _ = (self.selection, self.generation)  # validate rule, scope, k and generation
        for factor in self.factors:
            if not (isinstance(factor, int | float) and math.isfinite(factor) and factor > 0):
                raise BabelmoeError(
                    f"amplification factor {factor!r} is not a finite positive number",
                    "pass factors like 1,4,8",
                )
        if not self.factors:
            raise BabelmoeError("no amplification factor", f"pass e.g. {setting('factors')} 1,4,8")
        if len(set(self.factors)) != len(self.factors):
            raise BabelmoeError("duplicate amplification factors", "list each once")
        if self.prompts < 0:
            raise BabelmoeError(f"{setting('prompts')} must be >= 0", "pass e.g. 4")
        if self.steering and self.prompts == 0 and not any(t.strip() for t in self.neutral):
            raise BabelmoeError(
                f"the steering prompt set is empty ({setting('prompts')} 0 and no neutral prompt)",
                f"pass {setting('prompts')} 4 or keep the neutral prompts",
            )
        if self.keep_language and self.silence_source:
            raise BabelmoeError(
                f"{setting('keep_language')} amplifies the prompt language; it cannot also "
                "silence it",
                f"drop {setting('silence_source')}",
            )
        if self.contrast not in STEER_CONTRASTS:
            raise unknown_name("selection contrast", self.contrast, STEER_CONTRASTS)
        if not (self.silencing or self.steering):
            raise BabelmoeError(
                "nothing to run", f"leave {setting('silencing')} or {setting('steering')} on"
            )
        from babelmoe.evaluate.perplexity import PerplexityConfig

        PerplexityConfig(max_length=self.max_length, batch_size=self.batch_size)

    @property
    def selection(self) -> SelectionConfig:
        from babelmoe.interventions.selection import SelectionConfig

        return SelectionConfig(rule=self.rule, k=self.k, scope=self.scope)

    @property
    def generation(self) -> GenerationConfig:
        from babelmoe.interventions.steering import GenerationConfig

        return GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            batch_size=self.gen_batch_size,
            sample=self.sample,
            temperature=self.temperature,
            seed=self.seed,
            chat=self.chat,
        )
