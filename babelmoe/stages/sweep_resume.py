"""Whether a sweep's saved rows may be resumed: what changed between two sweep identities.

A sweep's rows are reused only when they were evaluated on the same things. Harness tasks are
identified by what they evaluate (``harness.tasks_sha256``: the sha256 of each task's resolved
config and data, ``babelmoe.evaluate.harness.harness_fingerprints``), not by their file paths:
when only that changed (an edited task YAML or data file), the old rows are stale and are
recomputed, with a warning; task files moved or renamed with the same contents resume; any other
difference is a different sweep (refused without ``--force``).
"""

from __future__ import annotations

from typing import Any

HARNESS_KEY = "harness"
TASKS_SHA256 = "tasks_sha256"


def changed_tasks(old: dict[str, Any], new: dict[str, Any]) -> list[str] | None:
    """The harness tasks whose contents differ between identities ``old`` and ``new`` when
    nothing else differs; None when something else differs (or nothing does)."""
    old_harness = old.get(HARNESS_KEY)
    new_harness = new.get(HARNESS_KEY)
    if not isinstance(old_harness, dict) or not isinstance(new_harness, dict):
        return None
    rest = {k: v for k, v in old.items() if k != HARNESS_KEY}
    if rest != {k: v for k, v in new.items() if k != HARNESS_KEY}:
        return None
    strip = {k: v for k, v in old_harness.items() if k != TASKS_SHA256}
    if strip != {k: v for k, v in new_harness.items() if k != TASKS_SHA256}:
        return None
    before = old_harness.get(TASKS_SHA256) or {}
    after = new_harness.get(TASKS_SHA256) or {}
    changed = [task for task in after if before.get(task) != after[task]]
    return changed or None


def moved_tasks_only(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether identities ``old`` and ``new`` differ only in the paths of task files whose
    contents are the same (a moved or renamed YAML): the rows stay valid."""
    old_harness, new_harness = old.get(HARNESS_KEY), new.get(HARNESS_KEY)
    if not isinstance(old_harness, dict) or not isinstance(new_harness, dict):
        return False
    rest = {k: v for k, v in old.items() if k != HARNESS_KEY}
    if rest != {k: v for k, v in new.items() if k != HARNESS_KEY}:
        return False
    skip = ("tasks", TASKS_SHA256)
    if {k: v for k, v in old_harness.items() if k not in skip} != {
        k: v for k, v in new_harness.items() if k not in skip
    }:
        return False
    before = old_harness.get(TASKS_SHA256) or {}
    after = new_harness.get(TASKS_SHA256) or {}
    tasks = (old_harness.get("tasks") or [], new_harness.get("tasks") or [])
    fingerprints = ([before.get(t) for t in tasks[0]], [after.get(t) for t in tasks[1]])
    return None not in fingerprints[0] and fingerprints[0] == fingerprints[1]
