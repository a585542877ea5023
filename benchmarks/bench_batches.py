"""How long ``profile`` takes to turn tokenised documents into batches (a diagnostic of one of the
command's fixed costs; the command itself is measured by ``bench_cli.py``): nine languages of
random token ids with ``bench_cli``'s length mix, the command's default batching (no packing,
``--max-length 512``, 16,384 positions a batch), and the same with ``--packing``.

  python benchmarks/bench_batches.py --tokens 8000000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cli import LANGUAGES, document_lengths
from common import print_table

from babelmoe.profile.batches import corpus_batches
from babelmoe.stages.profile import ProfileConfig


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=8_000_000, help="Counted tokens in all.")
    args = parser.parse_args()
    per_language = args.tokens // len(LANGUAGES)
    documents = []
    for i in range(len(LANGUAGES)):
        rng = random.Random(i)
        lengths = document_lengths(rng, per_language)
        documents.append([[rng.randrange(3, 250) for _ in range(n)] for n in lengths])
    defaults = ProfileConfig()
    rows = []
    for packing in (False, True):
        began = time.perf_counter()
        batches = corpus_batches(
            documents, defaults.n_units, 1, 0, defaults.max_length, packing,
            defaults.batch_size, defaults.batch_tokens,
        )  # fmt: skip
        seconds = time.perf_counter() - began
        tokens = sum(b.n_counted for b in batches)
        rows.append((str(packing), f"{tokens:,}", str(len(batches)), f"{seconds:.2f}"))
    print_table(rows, ("packing", "counted tokens", "batches", "seconds"))


if __name__ == "__main__":
    main()
