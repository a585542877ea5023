"""Language identification of generated text with ``py3langid`` (its model ships in the wheel).

Why py3langid: it installs offline from PyPI as a 4.6 MB wheel with its model inside, runs in
microseconds per text on a CPU, and is maintained (a faster, fixed fork of langid.py). Its
labels are ISO 639-1 codes where one exists (``en``, ``zh``, ``ur``) and ISO 639-3 otherwise.
A profiled language maps to a label through its BCP 47 primary subtag, then its ISO 639-3 code,
then the ISO 639-1 code of either (the same language under its two-letter code: a corpus entry may
give Hausa as ``hau`` where the identifier says ``ha``). Never through a macrolanguage: Min Nan
(``nan``) is not the identifier's ``zh``, nor Malay ``zlm`` its ``ms``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from babelmoe.errors import BabelmoeError, setting

UNKNOWN = "und"  # the label of an empty continuation


@functools.cache
def _identifier() -> Any:
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError:  # pragma: no cover - a dependency of the package
        raise BabelmoeError(
            "language identification needs py3langid", "pip install py3langid"
        ) from None
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def known_labels() -> list[str]:
    """Every label the identifier can answer, sorted."""
    return sorted(set(_identifier().nb_classes))


def label_for(language: dict[str, Any]) -> str | None:
    """The identifier's label of a profiled language (its ``languages`` entry), or None."""
    from babelmoe.corpus.languages import iso_language

    known = set(_identifier().nb_classes)
    bcp47 = str(language.get("bcp47") or "")
    codes = [bcp47.replace("_", "-").split("-")[0].lower(), str(language.get("code") or "").lower()]
    candidates = list(codes)
    for code in codes:
        iso = iso_language(code) if len(code) == 3 else None
        if iso is not None and iso.pt1:
            candidates.append(str(iso.pt1).lower())
    for candidate in candidates:
        if candidate and candidate in known:
            return candidate
    return None


def labels_for(languages: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """Labels of the languages named ``names``; one clear error naming those it does not know."""
    labels = [label_for(lang) for lang in languages]
    missing = [name for name, label in zip(names, labels, strict=True) if label is None]
    if missing:
        raise BabelmoeError(
            f"the language identifier (py3langid) does not know {', '.join(missing)}; "
            f"it knows {' '.join(known_labels())}",
            f"steer only languages it knows ({setting('languages')})",
        )
    return [str(label) for label in labels]


def identify(texts: Sequence[str]) -> list[tuple[str, float]]:
    """(label, probability) of each text over every language the identifier knows; an empty or
    blank text is ``("und", 0.0)``."""
    ident = _identifier()
    out = []
    for text in texts:
        if not text.strip():
            out.append((UNKNOWN, 0.0))
            continue
        label, prob = ident.classify(text)
        out.append((str(label), float(prob)))
    return out
