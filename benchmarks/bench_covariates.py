"""Time the covariates stage on the study's 69 UDHR languages with the bundled model (CPU).

The stage reads only the profile's metadata, so this writes a profile artifact whose metadata is
what ``babelmoe study`` records (languages, corpus identity, config, model identity and the
digest of the profiled tokens) with empty counts, then times ``run_covariates`` on it.

    python benchmarks/bench_covariates.py --out /tmp/bench-cov [--languages en,fr,...]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time
from pathlib import Path

import torch


def main() -> None:
    from babelmoe.analysis.covariates import load_covariates
    from babelmoe.corpus import load_corpus
    from babelmoe.corpus.study import STUDY50_BUDGET, STUDY50_LANGUAGES
    from babelmoe.models.loading import ModelSpec, load_model
    from babelmoe.profile.artifact import ProfileData, save_profile
    from babelmoe.stages.covariates import CovariatesConfig, run_covariates
    from babelmoe.stages.profile import (
        ProfileConfig,
        profile_identity,
        tokenized_corpus,
        tokens_sha256,
    )

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--languages", default=",".join(STUDY50_LANGUAGES))
    parser.add_argument("--heldout-tokens", type=int, default=CovariatesConfig.heldout_tokens)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    languages = args.languages.split(",")
    began = time.perf_counter()
    loaded = load_model(ModelSpec(device="cpu"))
    load_s = time.perf_counter() - began
    config = ProfileConfig(languages=languages, token_budget=STUDY50_BUDGET)
    corpus = load_corpus(config.corpus, config.languages)
    langs, documents, corpus_identity = tokenized_corpus(config, loaded.tokenizer, corpus)
    n = len(langs)
    identity = profile_identity(
        loaded.identity, "bench", corpus_identity, config, tokens_sha256(documents)
    )
    empty = ProfileData(
        counts=torch.zeros(n, 1, 1, dtype=torch.long),
        tokens=torch.zeros(n, dtype=torch.long),
        score_sums=torch.zeros(n, 1, 1, dtype=torch.float64),
        unit_counts=torch.zeros(n, 1, 1, 1, dtype=torch.long),
        unit_tokens=torch.zeros(n, 1, dtype=torch.long),
        languages=langs,
        meta={**identity, "n_layers": 1, "n_experts": 1, "selected_per_token": 1},
    )
    save_profile(args.out, empty)
    began, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    run_covariates(
        CovariatesConfig(heldout_tokens=args.heldout_tokens), args.out, model=loaded, force=True
    )
    stage_s = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    cov = load_covariates(args.out)
    print(
        json.dumps(
            {
                "languages": n,
                "threads": torch.get_num_threads(),
                "model_load_s": round(load_s, 1),
                "covariates_stage_s": round(stage_s, 1),
                "covariates_cpu_s": round(cpu_s, 1),  # CPU time of all threads
                "load_average_1min": round(__import__("os").getloadavg()[0], 1),
                "distances": list(cov.distances),
                "notes": cov.notes,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
