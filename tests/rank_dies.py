"""A ``torchrun`` entry point for tests: babelmoe's command line, where the rank named by
``BABELMOE_TEST_DIE_RANK`` SIGKILLs itself just after writing its second profile checkpoint
(``state-b.json``), as a rank lost to a node failure or the OOM killer would."""

from __future__ import annotations

import os
import sys

from tests.cli_helpers import _die_at_replace

if __name__ == "__main__":
    if os.environ.get("RANK") == os.environ.get("BABELMOE_TEST_DIE_RANK"):
        _die_at_replace("state-b.json", 1, "after")
    from babelmoe.cli import main

    main(sys.argv[1:])
