"""Does each claim of a study replicate on its second, disjoint sample of languages?

Input: the claims files of both samples, ``RUN/family_vs_script/claims*.json`` and
``RUN/replication/family_vs_script/claims*.json`` (format in
:mod:`babelmoe.analysis.expert_claims`). Claims are matched by ``id``; per claim the verdict is

- ``replicates``: holds in both samples, estimates of the same sign;
- ``does not replicate``: holds in the first sample, not in the second (or holds in the second
  with the opposite sign);
- ``new in second``: holds only in the second sample;
- ``holds in neither``;
- ``first only`` / ``second only``: the claim was computed for one sample only.

Output (``write_replication``): ``RUN/replication.csv`` and ``RUN/replication.json`` (a table:
both estimates with their intervals, holds in each, verdict, one sentence) and a report section
``RUN/replication/report_section.json`` (the run's report picks it up; the replication folder's
own report does not, as it only reads its subfolders).
"""

from __future__ import annotations

import html
import json
import logging
import math
from pathlib import Path
from typing import Any

from babelmoe import artifacts
from babelmoe.analysis.io import write_table
from babelmoe.errors import BabelmoeError

logger = logging.getLogger(__name__)

CLAIMS_DIR = "family_vs_script"
CLAIMS_GLOB = "claims*.json"
REPLICATION_DIR = "replication"
TABLE = "replication"
VERDICTS = (
    "replicates",
    "does not replicate",
    "new in second",
    "holds in neither",
    "first only",
    "second only",
)


def load_claims(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Every claim of ``RUN_DIR/family_vs_script/claims*.json``, by id (files in name order; a
    later file's claim of the same id replaces an earlier one, with a warning)."""
    claims: dict[str, dict[str, Any]] = {}
    for path in sorted((Path(run_dir) / CLAIMS_DIR).glob(CLAIMS_GLOB)):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            items = data["claims"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BabelmoeError(
                f"{path} is not a readable claims file ({exc})", "re-run babelmoe analyse"
            ) from None
        for claim in items:
            if claim["id"] in claims:
                logger.warning("claim %s appears twice; %s's is kept", claim["id"], path.name)
            claims[claim["id"]] = {
                **claim,
                "n_languages": data.get("n_languages"),
                "correction": data.get("correction"),
                "file": path.name,
            }
    return claims


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out


def _sign(value: float) -> int:
    return 0 if not math.isfinite(value) or value == 0 else (1 if value > 0 else -1)


def verdict(first: dict[str, Any] | None, second: dict[str, Any] | None) -> str:
    """The verdict of one claim (module docstring)."""
    if first is None:
        return "second only"
    if second is None:
        return "first only"
    h1, h2 = bool(first.get("holds")), bool(second.get("holds"))
    same = _sign(_number(first.get("estimate"))) == _sign(_number(second.get("estimate")))
    if h1 and h2 and same:
        return "replicates"
    if h1:
        return "does not replicate"
    if h2:
        return "new in second"
    return "holds in neither"


def _interval(claim: dict[str, Any] | None) -> str:
    if claim is None:
        return "-"
    est, lo, hi = (_number(claim.get(k)) for k in ("estimate", "ci_low", "ci_high"))
    text = f"{est:.3g}" if math.isfinite(est) else "n/a"
    if math.isfinite(lo) and math.isfinite(hi):
        text += f" [{lo:.3g}, {hi:.3g}]"
    return text


def sentence(claim_id: str, first: dict | None, second: dict | None, result: str) -> str:
    """One sentence per claim: its verdict with both estimates."""
    statement = (first or second or {}).get("statement", claim_id)
    a, b = _interval(first), _interval(second)
    p1 = _number((first or {}).get("p_adjusted"))
    p2 = _number((second or {}).get("p_adjusted"))
    tail = f"first {a} (adjusted p {p1:.2g}), second {b} (adjusted p {p2:.2g})"
    lead = {
        "replicates": "Replicates",
        "does not replicate": "Does not replicate",
        "new in second": "Holds only in the second sample",
        "holds in neither": "Holds in neither sample",
        "first only": "Computed for the first sample only",
        "second only": "Computed for the second sample only",
    }[result]
    return f"{lead}: {claim_id} ({statement}) - {tail}."


def compare_claims(
    first: dict[str, dict[str, Any]], second: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per claim id (first sample's order, then ids only the second has)."""
    ids = list(first) + [k for k in second if k not in first]
    rows = []
    for claim_id in ids:
        a, b = first.get(claim_id), second.get(claim_id)
        result = verdict(a, b)
        row: dict[str, Any] = {"id": claim_id}
        for tag, claim in (("first", a), ("second", b)):
            claim = claim or {}
            row[f"{tag}_n_languages"] = claim.get("n_languages")
            row[f"{tag}_estimate"] = _number(claim.get("estimate"))
            row[f"{tag}_ci_low"] = _number(claim.get("ci_low"))
            row[f"{tag}_ci_high"] = _number(claim.get("ci_high"))
            row[f"{tag}_p_adjusted"] = _number(claim.get("p_adjusted"))
            row[f"{tag}_holds"] = bool(claim.get("holds")) if claim else None
        row["interval"] = (a or b or {}).get("interval", "")
        row["verdict"] = result
        row["sentence"] = sentence(claim_id, a, b, result)
        rows.append(row)
    return rows


def write_replication(run_dir: Path) -> list[dict[str, Any]]:
    """Compare ``RUN_DIR``'s claims with ``RUN_DIR/replication/``'s; write the table and the
    report section (module docstring). Returns the rows."""
    run_dir = Path(run_dir)
    second_dir = run_dir / REPLICATION_DIR
    first, second = load_claims(run_dir), load_claims(second_dir)
    if not first and not second:
        raise BabelmoeError(
            f"no claims files in {run_dir / CLAIMS_DIR} or {second_dir / CLAIMS_DIR}",
            "run babelmoe analyse on both samples first",
        )
    rows = compare_claims(first, second)
    with artifacts.run_lock(run_dir):
        write_table(run_dir, TABLE, rows, "Each claim on the first and on the replication sample")
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    n1 = next((r["first_n_languages"] for r in rows if r["first_n_languages"]), "?")
    n2 = next((r["second_n_languages"] for r in rows if r["second_n_languages"]), "?")
    parts = [
        f"<p>Each claim of the first sample ({n1} languages) checked on the replication sample "
        f"({n2} languages, disjoint by ISO 639-3, chosen by a rule fixed before profiling): "
        f"{html.escape(summary)}.</p>",
        _compact_table(rows, first, second),
        "<ul>",
        *(f"<li>{html.escape(r['sentence'])}</li>" for r in rows),
        "</ul>",
    ]
    section = {
        "schema_version": artifacts.SCHEMA_VERSION,
        "title": "Replication on a second sample of languages",
        "order": 59,
        "html": "".join(parts),
        "figures": [],
    }
    with artifacts.run_lock(second_dir):
        artifacts.atomic_write_json(second_dir / artifacts.SECTION_FILE, section)
    logger.info("replication: %s", summary)
    return rows


def _compact_table(
    rows: list[dict[str, Any]], first: dict[str, dict], second: dict[str, dict]
) -> str:
    """Claim | first sample | second sample | verdict (estimates with intervals)."""

    def cell(claim: dict | None) -> str:
        if claim is None:
            return "-"
        mark = "holds" if claim.get("holds") else "does not hold"
        return f"{_interval(claim)}, {mark}"

    head = "<tr><th>claim</th><th>first sample</th><th>second sample</th><th>verdict</th></tr>"
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(text)}</td>"
            for text in (
                r["id"],
                cell(first.get(r["id"])),
                cell(second.get(r["id"])),
                r["verdict"],
            )
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"
