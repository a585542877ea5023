"""The README's main-job numbers are the main job's own.

``main_job_lines`` turns the main job's ``analysis/summary.json`` and
``family_vs_script/claims.json`` into the sentences the README quotes; the test runs the main job
(without its sweep, which the README's numbers do not use) on the bundled model and checks that
every sentence is in the README word for word, so the README cannot drift from what the command
computes. Regenerate the README's block with
``python tests/integration/test_readme_numbers.py RUN``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _p(value: float) -> str:
    return f"{value:.2g}" if value < 0.01 else f"{value:.3f}".rstrip("0").rstrip(".")


def main_job_lines(summary: dict[str, Any], claims: dict[str, Any]) -> list[str]:
    """The README's bullet points about the main job, from its outputs."""
    lines = []
    groups = {g["name"]: g for g in summary["groups"]}
    for name in ("Romance", "Indo-Iranian genus"):
        g = groups[name]
        members = ", ".join(g["members"])
        lines.append(
            f"- **{name} ({members})** closer to each other than to the rest: Jensen-Shannon "
            f"{g['statistic']:.3f} bits (within minus to the rest), p = {_p(g['p_value'])} exact "
            f"over {g['n_permutations']} relabelings, Holm {_p(g['p_holm'])}."
        )
    family = groups["Indo-European family"]
    lines.append(
        f"- **Indo-European as a whole is not**: {family['statistic']:+.3f} bits, "
        f"p = {_p(family['p_value'])}."
    )
    shared = summary["shared_experts"]
    n_all = summary["n_layers"] * summary["n_experts"]
    lines.append(
        f"- **Shared experts** (frequency >= {shared['threshold']} in all nine): "
        f"{shared['total']:,} of {n_all:,} ({100 * shared['share']:.1f}%), most in layer "
        f"{shared['peak_layer']}, centre of mass at layer {shared['centre_of_mass']:.1f} of "
        f"0-{summary['n_layers'] - 1}."
    )
    agreement = summary["agreement"]
    script, genealogy = agreement["script"], agreement["genealogy"]
    lines.append(
        f"- **Script vs genealogy** (Mantel, Spearman): script r = {script['statistic']:.2f} "
        f"(p = {_p(script['p_value'])}), genealogy r = {genealogy['statistic']:.2f} "
        f"(p = {_p(genealogy['p_value'])})."
    )
    coefficients = [c for c in claims["claims"] if c["id"].startswith("mrm.model.")]
    held = [c["id"].removeprefix("mrm.model.") for c in coefficients if c["holds"]]
    r2 = next(c for c in coefficients if c["id"] == "mrm.model.r2")
    lines.append(
        f"- **All references at once** (MRM of {len(coefficients) - 1} distances and R^2, "
        f"language-bootstrap intervals): {len(held)} of {len(coefficients)} whole-model claims "
        f"hold after Holm ({', '.join(held) or 'none'}; R^2 = {r2['estimate']:.2f}) with nine "
        "languages."
    )
    return lines


def _outputs(run: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    summary = json.loads((run / "analysis" / "summary.json").read_text(encoding="utf-8"))
    claims = json.loads((run / "family_vs_script" / "claims.json").read_text(encoding="utf-8"))
    return summary, claims


def test_lines_follow_the_outputs() -> None:
    """The formatting itself, on made-up outputs (fast)."""
    group = {"members": ["fra", "spa", "por"], "statistic": -0.0681, "p_value": 0.0238,
             "n_permutations": 84, "p_holm": 0.0476}  # fmt: skip
    summary = {
        "groups": [
            {**group, "name": "Romance"},
            {**group, "name": "Indo-Iranian genus", "members": ["hin", "ben", "urd"]},
            {**group, "name": "Indo-European family", "statistic": 0.004, "p_value": 0.64},
        ],
        "shared_experts": {
            "threshold": 0.05,
            "total": 1223,
            "share": 0.2654,
            "peak_layer": 1,
            "centre_of_mass": 6.098,
        },
        "n_layers": 18,
        "n_experts": 256,
        "agreement": {
            "script": {"statistic": 0.535, "p_value": 0.00185},
            "genealogy": {"statistic": 0.124, "p_value": 0.153},
        },
    }
    claims = {"claims": [{"id": "mrm.model.script", "holds": True},
                         {"id": "mrm.model.r2", "holds": False, "estimate": 0.898}]}  # fmt: skip
    lines = main_job_lines(summary, claims)
    assert (
        "1,223 of 4,608 (26.5%), most in layer 1, centre of mass at layer 6.1 of 0-17" in lines[3]
    )
    assert "p = 0.024 exact over 84 relabelings, Holm 0.048" in lines[0]
    assert "script r = 0.54 (p = 0.0019), genealogy r = 0.12 (p = 0.153)" in lines[4]
    assert "1 of 2 whole-model claims hold after Holm (script; R^2 = 0.90)" in lines[5]


@pytest.mark.integration
@pytest.mark.slow
def test_readme_quotes_the_main_job(tmp_path: Path) -> None:
    run = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "babelmoe.cli", "run", "--out", str(run), "--no-sweep"],
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    readme = README.read_text(encoding="utf-8")
    missing = [line for line in main_job_lines(*_outputs(run)) if line not in readme]
    assert not missing, "README differs from the main job; regenerate its block:\n" + "\n".join(
        missing
    )


if __name__ == "__main__":
    print("\n".join(main_job_lines(*_outputs(Path(sys.argv[1])))))
