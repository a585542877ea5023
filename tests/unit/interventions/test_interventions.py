"""Interventions: expert masks by hooks (exact dense equivalence, silenced experts contribute
nothing, factor 1 is the identity, per-row factors), selection rules and their random null, the
silencing summary, steering helpers, the stage end to end and the CLI's bad
inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from babelmoe.errors import BabelmoeError
from babelmoe.experts.masks import keep_scales, scaled_experts, selection_scales
from babelmoe.interventions import langid
from babelmoe.interventions.selection import (
    SelectionConfig,
    random_like,
    select_language_experts,
)
from babelmoe.interventions.stats import bootstrap_mean, repetition_rate
from babelmoe.interventions.steering import first_sentence, plan_items, steering_prompts
from babelmoe.models.ffn import ffns
from babelmoe.stages.steer import SteerConfig, run_steer
from babelmoe.testing import balanced_partition, make_run, tiny_model
from tests.cli_helpers import run_cli

IDS = torch.randint(3, 100, (2, 9), generator=torch.Generator().manual_seed(0))


def _logits(model, ids=IDS):
    with torch.no_grad():
        return model(ids).logits


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "phi3"])  # gated, non-gated, fused
def test_all_on_and_factor_one_reproduce_dense_exactly(model_type):
    model = tiny_model(model_type, dtype=torch.float64)
    dense = _logits(model)
    part = balanced_partition(2, ffns(model)[0].width, 8, seed=1)
    chosen = torch.zeros(2, 8, dtype=torch.bool)
    chosen[:, :3] = True
    for scales in (torch.ones(2, 8), selection_scales(chosen, 1.0), torch.ones(2, 2, 8)):
        with scaled_experts(model, part, scales):
            torch.testing.assert_close(_logits(model), dense, rtol=0, atol=0)
    with scaled_experts(model, part, selection_scales(chosen, 3.0)):
        assert not torch.allclose(_logits(model), dense)
    torch.testing.assert_close(_logits(model), dense, rtol=0, atol=0)  # hooks removed


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_a_silenced_expert_contributes_nothing(model_type):
    model = tiny_model(model_type, dtype=torch.float64)
    width = ffns(model)[0].width
    part = balanced_partition(2, width, 8, seed=2)
    drop = torch.zeros(2, 8, dtype=torch.bool)
    drop[0, 3] = drop[1, 5] = True
    with scaled_experts(model, part, keep_scales(drop)):
        silenced = _logits(model)
    # the same as zeroing those neurons' activations by hand ...
    handles = []
    for ffn in ffns(model):
        neurons = (part.labels[ffn.layer] == (3 if ffn.layer == 0 else 5)).nonzero().flatten()

        def zero(_m, args, neurons=neurons):
            h = args[0].clone()
            h[..., neurons] = 0
            return (h,)

        handles.append(ffn.down.register_forward_pre_hook(zero))
    by_hand = _logits(model)
    for h in handles:
        h.remove()
    torch.testing.assert_close(silenced, by_hand, rtol=1e-12, atol=1e-12)
    # ... and whatever those neurons' output weights are, the output does not change
    ffn = ffns(model)[0]
    neurons = (part.labels[0] == 3).nonzero().flatten()
    with torch.no_grad():
        weight = ffn.down.weight
        if ffn.arch.conv1d:
            weight[neurons] = 123.0
        else:
            weight[:, neurons] = 123.0
    with scaled_experts(model, part, keep_scales(drop)):
        torch.testing.assert_close(_logits(model), silenced, rtol=1e-12, atol=1e-12)


def test_per_row_factors_equal_separate_runs():
    model = tiny_model("llama", dtype=torch.float64)
    part = balanced_partition(2, 64, 8, seed=3)
    a = torch.zeros(2, 8, dtype=torch.bool)
    a[:, 1] = True
    rows = torch.stack([selection_scales(a, 4.0), torch.ones(2, 8)])
    with scaled_experts(model, part, rows):
        both = _logits(model)
    with scaled_experts(model, part, selection_scales(a, 4.0)):
        first = _logits(model)
    torch.testing.assert_close(both[0], first[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(both[1], _logits(model)[1], rtol=1e-12, atol=1e-12)


def test_factors_are_applied_in_the_layers_dtype():
    # a bf16 model: each layer's factors are gathered where its weights are and cast to their
    # dtype once, which must equal scaling the activation by the factor rounded to bf16
    model = tiny_model("llama", dtype=torch.bfloat16)
    part = balanced_partition(2, 64, 8, seed=4)
    chosen = torch.zeros(2, 8, dtype=torch.bool)
    chosen[:, 2] = True
    with scaled_experts(model, part, selection_scales(chosen, 1.7)):
        masked = _logits(model)
    handles = []
    for ffn in ffns(model):
        neurons = (part.labels[ffn.layer] == 2).nonzero().flatten()

        def scale(_m, args, neurons=neurons):
            h = args[0].clone()
            h[..., neurons] = h[..., neurons] * torch.tensor(1.7, dtype=torch.bfloat16)
            return (h,)

        handles.append(ffn.down.register_forward_pre_hook(scale))
    by_hand = _logits(model)
    for h in handles:
        h.remove()
    torch.testing.assert_close(masked, by_hand, rtol=0, atol=0)


def test_activations_in_another_dtype_get_factors_in_theirs():
    from babelmoe.experts.masks import _hook

    factors = torch.tensor([[1.0, 0.0, 2.5], [3.0, 1.0, 0.0]])  # two rows, float32
    h = torch.randn(2, 4, 3, dtype=torch.float64)
    (out,) = _hook(factors)(None, (h,))
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, h * factors.double()[:, None, :], rtol=0, atol=0)


def test_bad_scales_are_refused():
    model = tiny_model("llama")
    part = balanced_partition(2, 64, 8)
    for bad in (torch.ones(3, 8), torch.full((2, 8), math.inf), -torch.ones(2, 8)):
        with pytest.raises(BabelmoeError), scaled_experts(model, part, bad):
            pass


def test_selection_rules_find_planted_experts():
    freq = torch.full((3, 2, 10), 0.1, dtype=torch.float64)
    freq[0, :, 7] = 0.9  # language 0 owns expert 7 ...
    freq[0, :, 2] = 0.5  # ... and a little of expert 2
    freq[1, :, 4] = 0.8
    excess = select_language_experts(freq, 0, SelectionConfig("excess", k=2))
    assert excess.sum(1).tolist() == [2, 2] and excess[:, 7].all() and excess[:, 2].all()
    lape = select_language_experts(freq, 0, SelectionConfig("lape", k=3))
    assert lape[:, 7].all() and not lape[:, 4].any()  # expert 4 is language 1's
    glob = select_language_experts(freq, 1, SelectionConfig("excess", k=1, scope="global"))
    assert int(glob.sum()) == 2 and glob[:, 4].all()
    with pytest.raises(BabelmoeError, match="unknown selection rule"):
        SelectionConfig("entropy")


def test_random_null_keeps_per_layer_counts():
    chosen = torch.zeros(4, 32, dtype=torch.bool)
    for layer, count in enumerate([0, 3, 7, 32]):
        chosen[layer, :count] = True
    draws = [random_like(chosen, seed) for seed in range(5)]
    for d in draws:
        assert d.sum(1).tolist() == [0, 3, 7, 32]
    assert not torch.equal(draws[0], draws[1])
    assert torch.equal(random_like(chosen, 3), draws[3])


def test_bootstrap_and_repetition():
    mean, lo, hi = bootstrap_mean(np.array([0, 1, 1, 1.0]), n_boot=500)
    assert mean == 0.75 and 0 <= lo <= mean <= hi <= 1
    assert repetition_rate([1, 2, 3, 4, 5]) == 0.0
    assert repetition_rate([1, 2, 3] * 4) == pytest.approx(7 / 10)


def test_first_sentence_and_prompts():
    assert first_sentence("Article 1. All are born free.") == "Article 1."
    assert first_sentence("人人生而自由。在尊严上一律平等。") == "人人生而自由。"
    assert first_sentence("کسی شخص کو ۔ دوسرا") == "کسی شخص کو ۔"

    class Doc:
        def __init__(self, i, text):
            self.id, self.text = f"d{i}", text

    prompts = steering_prompts({"en": [Doc(0, "A b. C."), Doc(1, "D.")]}, 1, ("1.",))
    assert [(p.lang, p.text) for p in prompts] == [("en", "A b."), ("neutral", "1.")]
    with pytest.raises(BabelmoeError, match="no steering prompt"):
        steering_prompts({"en": []}, 3, ())
    items = plan_items(prompts, ["en", "fr"], (1.0, 4.0), (0,))
    # dense per prompt; per factor 4: en's experts on the neutral prompt only, fr's on both
    assert len(items) == 2 + 2 * (1 + 2)


def test_langid_labels():
    assert langid.label_for({"code": "cmn", "bcp47": "zh"}) == "zh"
    assert langid.label_for({"code": "urd", "bcp47": "ur"}) == "ur"
    # a three-letter tag of a language the identifier knows by its two-letter code (UDHR hau)
    assert langid.label_for({"code": "hau", "bcp47": "hau"}) == "ha"
    assert langid.label_for({"code": "prs", "bcp47": "fa-AF"}) == "fa"
    # no macrolanguage mapping: Min Nan is not Mandarin, Malay (individual) is not ms
    assert langid.label_for({"code": "nan", "bcp47": "nan"}) is None
    assert langid.label_for({"code": "zlm", "bcp47": "zlm-Latn"}) is None
    with pytest.raises(BabelmoeError, match=r"does not know xx.*it knows"):
        langid.labels_for([{"code": "xxx", "bcp47": "xx"}], ["xx"])


def test_selection_contrast_profiled_or_steered():
    """--contrast: with -l a subset, the rule compares a language with every profiled language
    (default) or only the steered ones (the selection of a run profiled on those alone)."""
    from types import SimpleNamespace

    from babelmoe.stages.steer import select_all

    g = torch.Generator().manual_seed(3)
    frequency = torch.rand(4, 2, 8, generator=g, dtype=torch.float64)
    frequency[3] = 0.0  # an unsteered language that uses no expert: it moves the others' mean
    frequency[3, :, :4] = 5.0
    profile = SimpleNamespace(frequency=frequency)
    indices = [2, 0]
    cfg = SelectionConfig(k=3)
    alone = SimpleNamespace(frequency=frequency[indices])
    for rule in ("excess", "lape"):
        steered = select_all(profile, indices, SteerConfig(rule=rule, k=3, contrast="steered"))
        profiled = select_all(profile, indices, SteerConfig(rule=rule, k=3))
        by_hand = torch.stack(
            [
                select_language_experts(frequency[indices], j, SelectionConfig(rule, 3))
                for j in (0, 1)
            ]
        )
        assert torch.equal(steered["own"], by_hand)
        assert torch.equal(
            steered["own"], select_all(alone, [0, 1], SteerConfig(rule=rule, k=3))["own"]
        )
        full = torch.stack(
            [
                select_language_experts(
                    frequency, i, cfg if rule == "excess" else SelectionConfig(rule, 3)
                )
                for i in indices
            ]
        )
        assert torch.equal(profiled["own"], full)
        assert not torch.equal(profiled["own"], steered["own"])
    with pytest.raises(BabelmoeError, match="unknown selection contrast"):
        SteerConfig(contrast="nope")


def test_run_steer_end_to_end_and_resume(tmp_path):
    run, _, loaded = make_run(tmp_path)
    config = SteerConfig(
        k=2, random_seeds=(0, 1), factors=(1.0, 4.0), prompts=2, max_new_tokens=4, n_perm=99
    )
    summary = run_steer(config, run, model=loaded)
    out = run / "interventions"
    for name in (
        "selection.safetensors",
        "selection.json",
        "rows.jsonl",
        "interventions.json",
        "silencing.csv",
        "steering.csv",
        "report_section.json",
        "figures/silencing.png",
        "figures/steering.png",
    ):
        assert (out / name).is_file(), name
    block = summary["silencing"]
    assert np.array(block["own_ratio"]).shape == (2, 2)
    assert block["own_dominance"]["exact"] and len(block["random_dominance"]) == 2
    meta = json.loads((out / "selection.json").read_text())
    assert meta["experts_per_layer"]["en"] == [2] * 2 and meta["schema_version"] == 1
    from babelmoe.stages.report import load_hook_sections

    titles = [getattr(sec, "title", "") for sec in load_hook_sections(run)]
    assert any("Interventions" in t for t in titles), titles
    lines = (out / "rows.jsonl").read_text().splitlines()
    # resume: nothing is recomputed, the summary is the same
    again = run_steer(config, run, model=loaded)
    assert (out / "rows.jsonl").read_text().splitlines() == lines
    assert again["silencing"]["own_ratio"] == block["own_ratio"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-l", "en,de"], "'de' was not profiled"),
        (["--factors", "1,inf"], "not a finite positive number"),
        (["--factors", "1,0"], "not a finite positive number"),
        (["--factors", "1,-2"], "not a finite positive number"),
        (["--prompts", "0", "--no-neutral"], "prompt set is empty"),
        (["--rule", "nope"], "unknown selection rule"),
        (["--contrast", "nope"], "unknown selection contrast"),
    ],
)
def test_cli_bad_inputs(tmp_path, args, message):
    run, model_dir, _ = make_run(tmp_path)
    result = run_cli(["steer", run, "--model", model_dir, *args])
    assert result.code == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_help_has_an_example():
    result = run_cli(["steer", "--help"])
    assert result.code == 0 and "babelmoe steer runs/demo" in result.stdout


def test_cli_language_unknown_to_identifier(tmp_path):
    run, model_dir, _ = make_run(tmp_path)
    profile_json = run / "profile.json"
    meta = json.loads(profile_json.read_text())
    assert meta["languages"][1]["bcp47"] == "fr"
    from babelmoe.profile.artifact import load_profile, save_profile

    profile = load_profile(run)
    profile.languages[1] = {**profile.languages[1], "bcp47": "qaa", "code": "qaa"}
    save_profile(run, profile)
    result = run_cli(["steer", run, "--model", model_dir, "--no-silencing"])
    assert result.code == 2, result.stderr
    assert "does not know" in result.stderr and "it knows" in result.stderr


def test_silencing_summary_on_constructed_rows():
    from babelmoe.interventions import silence as sil

    names = ["a", "b", "c", "d"]
    rows = {}

    def put(condition, target, seed, lang, ppl):
        rows[sil.row_key(condition, target, seed, lang)] = {"ppl": ppl}

    for j, b in enumerate(names):
        put(sil.DENSE, None, None, b, 10.0 + j)
        for a in names:
            put(sil.OWN, a, None, b, (10.0 + j) * (8.0 if a == b else 1.5))
        for seed in (0, 1, 2):
            put(sil.RANDOM, "random~a", seed, b, (10.0 + j) * (1.2 + 0.1 * seed))
    shared = {n: "random~a" for n in names}
    summary = sil.silencing_summary(rows, names, [0, 1, 2], shared)
    assert summary["own_dominance"]["statistic"] == pytest.approx(math.log(8 / 1.5))
    assert summary["own_dominance"]["p_value"] == pytest.approx(1 / 24)  # 4! permutations
    assert "random_dominance_note" in summary
    assert summary["share_own_beats_every_random"] == 1.0
    assert summary["own_beats_every_random_p"] == pytest.approx(0.25**4)
    assert summary["own_beats_every_random_n"] == 4 == summary["own_beats_every_random_of"]
    interval = summary["own_dominance_interval"]
    assert interval["statistic"] == summary["own_dominance"]["statistic"]
    assert interval["lo"] <= interval["statistic"] <= interval["hi"]
    assert "own_dominance_restricted" not in summary  # no families given


def test_silencing_summary_over_languages_with_families():
    from babelmoe.interventions import silence as sil

    # a, b are relatives, and so are c, d; own x8, relative x4, unrelated x1.5
    names, family = ["a", "b", "c", "d"], ["X", "X", "Y", "Y"]
    rows = {}
    for j, b in enumerate(names):
        rows[sil.row_key(sil.DENSE, None, None, b)] = {"ppl": 10.0 + j}
        for i, a in enumerate(names):
            factor = 8.0 if a == b else 4.0 if family[i] == family[j] else 1.5
            rows[sil.row_key(sil.OWN, a, None, b)] = {"ppl": (10.0 + j) * factor}
    blocks = {"family": family, "genus": [None] * 4, "script": ["Latn"] * 4}
    summary = sil.silencing_summary(rows, names, [], {}, blocks=blocks, n_boot=200)
    family_test, genus_test = summary["own_dominance_restricted"]
    assert family_test["within"] == "family" and family_test["exact"]
    assert family_test["n_relabelings"] == 4 and family_test["p_value"] == pytest.approx(1 / 4)
    assert family_test["relatives"] == pytest.approx(math.log(8 / 4))
    assert not genus_test["feasible"] and math.isnan(genus_test["p_value"])
    spill = {s["within"]: s for s in summary["spillover"]}
    assert spill["family"]["statistic"] == pytest.approx(math.log(4 / 1.5))
    assert spill["family"]["p_value"] == pytest.approx(8 / 24)  # 4!: 8 keep the two pairs
    assert not spill["script"]["feasible"] and not spill["genus"]["feasible"]
    assert set(summary["own_dominance_family_out"]) == {"X", "Y"}
    assert summary["language_blocks"] == blocks
    holm = summary["holm"]  # one Holm family of the tests that ran: 3 here
    assert list(holm) == ["dominance", "dominance_within_family", "spillover_family"]
    assert holm["dominance_within_family"]["p_holm"] == pytest.approx(min(1, 2 * 0.25))


def test_unshared_null_draws_one_set_per_language(tmp_path):
    run, _, loaded = make_run(tmp_path)
    config = SteerConfig(k=2, random_seeds=(0,), shared_null=False, steering=False, n_perm=99)
    summary = run_steer(config, run, model=loaded)["silencing"]
    assert set(summary["null_groups"].values()) == {"random~en", "random~fr"}
    assert "random_dominance_note" not in summary and len(summary["random_dominance"]) == 1


def test_keep_language_plan_and_fidelity(tmp_path):
    run, _, loaded = make_run(tmp_path)
    config = SteerConfig(
        k=2, factors=(1.0, 2.0), prompts=2, max_new_tokens=4, keep_language=True, silencing=False
    )
    summary = run_steer(config, run, model=loaded)
    points = summary["fidelity"]["points"]
    assert [(p["condition"], p["factor"]) for p in points] == [
        ("dense", 1.0),
        ("own", 2.0),
        ("random", 2.0),
    ]
    assert summary["fidelity"]["n_prompts"] == 4 and all(0 <= p["pass_rate"] <= 1 for p in points)
    rows = [json.loads(line) for line in (run / "interventions/continuations.jsonl").open()]
    own = [r for r in rows if r["condition"] == "own"]
    assert own and all(r["target"] == r["prompt_lang"] for r in own)
    assert all(isinstance(r["line_lid"], list) for r in rows)
    with pytest.raises(BabelmoeError, match="chat template"):
        run_steer(SteerConfig(k=2, chat=True, silencing=False), run, model=loaded, force=True)
