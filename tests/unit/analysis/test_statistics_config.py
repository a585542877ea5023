"""The shared statistics settings: one ``StatisticsConfig`` nested in every analysis config,
passed unchanged to the sub-analyses, and written flat as the artifacts always recorded it."""

from __future__ import annotations

import dataclasses

import pytest

from babelmoe.analysis.config import AnalysisConfig, DiffConfig, StatisticsConfig, config_record
from babelmoe.analysis.expert_null import ExpertNullConfig
from babelmoe.analysis.family_mrm import MRMConfig
from babelmoe.analysis.label_null import LabelNullConfig
from babelmoe.analysis.script_genealogy import ScriptGenealogyConfig
from babelmoe.errors import BabelmoeError

# The keys, in order, of the configs in summary.json (analysis/, diff, expert_null) as written
# when the statistics settings were fields of each config: a change here changes every artifact.
ANALYSIS_KEYS = [
    "metrics",
    "primary_metric",
    "kl_epsilon",
    "linkage",
    "groups",
    "auto_groups",
    "shared_threshold",
    "specific_high",
    "specific_low",
    "lape_filter_quantile",
    "lape_entropy_quantile",
    "n_bootstrap",
    "bootstrap_paired",
    "ci_level",
    "n_permutations",
    "exact_limit",
    "label_permutations",
    "alpha",
    "seed",
    "batch_size",
    "script_measure",
    "genealogy_measure",
]
DIFF_KEYS = [
    "shared_threshold",
    "top_k",
    "z_threshold",
    "primary_metric",
    "kl_epsilon",
    "n_bootstrap",
    "ci_level",
    "n_permutations",
    "exact_limit",
    "seed",
    "batch_size",
]
EXPERT_NULL_KEYS = ["shared_threshold", "specific_high", "specific_low", "n_draws", "alpha", "seed"]


def test_the_flat_record_keeps_the_keys_and_order_of_the_artifacts() -> None:
    assert list(config_record(AnalysisConfig())) == ANALYSIS_KEYS
    assert list(config_record(DiffConfig())) == DIFF_KEYS
    assert list(config_record(ExpertNullConfig())) == EXPERT_NULL_KEYS


def test_the_flat_record_carries_the_nested_values() -> None:
    stats = StatisticsConfig(n_bootstrap=7, bootstrap_paired=False, seed=3, alpha=0.01)
    record = config_record(AnalysisConfig(statistics=stats, groups={"A": ("fr", "es")}))
    assert record["n_bootstrap"] == 7 and record["bootstrap_paired"] is False
    assert record["seed"] == 3 and record["alpha"] == 0.01
    assert record["groups"] == {"A": ("fr", "es")}  # as dataclasses.asdict gives it
    # the defaults give what asdict of the flat configs gave: the nested defaults are theirs
    flat = {**dataclasses.asdict(AnalysisConfig()), **dataclasses.asdict(StatisticsConfig())}
    assert config_record(AnalysisConfig()) == {k: flat[k] for k in ANALYSIS_KEYS}


def test_every_config_reads_statistics_that_exist() -> None:
    names = {f.name for f in dataclasses.fields(StatisticsConfig)}
    for cls in (AnalysisConfig, DiffConfig, ExpertNullConfig, LabelNullConfig, MRMConfig):
        assert set(cls.STATISTICS) <= names, cls
    assert set(ScriptGenealogyConfig.STATISTICS) <= names


def test_the_sub_analyses_follow_the_analysis_statistics() -> None:
    from babelmoe.stages.analyse import (
        expert_null_config,
        family_script_config,
        label_null_config,
    )
    from babelmoe.stages.family_script import mrm_config

    stats = StatisticsConfig(n_permutations=99, label_permutations=9, alpha=0.01, seed=4)
    config = AnalysisConfig(statistics=stats, specific_low=0.02, kl_epsilon=1e-5)
    sg = family_script_config(config)
    assert sg.statistics is stats and sg.kl_epsilon == 1e-5
    assert sg.batch_size == ScriptGenealogyConfig().batch_size  # its own memory setting
    assert expert_null_config(config).statistics is stats
    label = label_null_config(config)
    assert label.statistics.label_permutations == 9 and label.specific_low == 0.02
    mrm = mrm_config(sg)
    assert mrm.statistics is stats and mrm.n_restricted_permutations == 99


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"n_bootstrap": -1}, "n_bootstrap must be >= 0, got -1"),
        ({"ci_level": 1.0}, "ci_level must lie in"),
        ({"n_permutations": 0}, "n_permutations must be >= 1"),
        ({"exact_limit": 0}, "exact_limit must be >= 1"),
        ({"label_permutations": -1}, "label_permutations must be >= 0"),
        ({"alpha": 0.0}, "alpha must lie in"),
    ],
)
def test_statistics_are_checked_once_for_every_analysis(settings: dict, match: str) -> None:
    with pytest.raises(BabelmoeError, match=match):
        StatisticsConfig(**settings)
