"""Artifacts: tensors in safetensors beside a JSON file of metadata, written atomically.

Every artifact is a pair ``<name>.safetensors`` + ``<name>.json`` inside a run folder. The JSON
carries the schema version, the artifact kind, the sha256 of the tensor file and the stage's
metadata (resolved config, model identity, partition hash ...). Writes go to temporary names and
are renamed into place, tensors first and JSON last, so a reader that finds the JSON finds
complete tensors; the checksum catches truncation or corruption afterwards.

The JSON says what the tensors mean (languages, token counts, config, identities), so it is
covered too: ``meta_sha256`` in the JSON is the sha256 of every other JSON field but the tensor
checksum, and the tensor file's header carries a fixed marker saying that the JSON has one (a
marker, not the checksum itself, so that the tensor bytes do not depend on timings in the JSON).
An edited value or a deleted key, the checksum's included, is reported like a corrupted tensor
file. Artifacts written before this check (no marker) are still read when they carry their
required fields (:data:`REQUIRED_FIELDS`).

File names used by the stages live here and nowhere else.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from babelmoe.errors import BabelmoeError, OutputError, setting

logger = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = 1

# Artifact names inside a run folder (each is <name>.safetensors + <name>.json).
PARTITION = "partition"
PROFILE = "profile"
ANALYSIS_DIR = "analysis"
FIGURES_DIR = "figures"
REPORT_FILE = "report.html"
PRUNED_DIR = "pruned"
EVAL_DIR = "eval"
LOCK_FILE = ".babelmoe.lock"
SWEEP_DIR = "sweep"
PROFILE_TIMINGS_FILE = "profile_timings.json"  # where the profile's time went (rank 0's view)
SUMMARY_FILE = "summary.json"  # headline numbers of a stage folder (analysis/, diff output)
FIGURES_FILE = "figures.json"  # names and captions of a stage's figures
CLUSTERING_FILE = "clustering.json"  # linkage of the languages (analysis/)
SWEEP_FILE = "sweep.json"  # the sweep's summary (sweep/)
RESULTS_FILE = "results.json"  # an evaluation's summary (eval/<model>/)
SECTION_FILE = "report_section.json"  # a stage's section of the HTML report
PRUNING_FILE = "babelmoe_pruning.json"  # what a pruned checkpoint lost, and why
SWEEP_ROWS_FILE = "rows.jsonl"  # one sweep evaluation per line (resumable)
COVARIATES_DIR = "covariates"  # per-language covariates and reference distances
COVARIATES = "covariates"  # <COVARIATES_DIR>/covariates.{safetensors,json}
COVARIATES_TABLE = "languages.csv"  # <COVARIATES_DIR>/: one row per language

META_CHECKSUM = "meta_sha256"  # in the JSON
META_MARKER = {"babelmoe_meta_checksum": META_CHECKSUM}  # in the tensor file's header
_UNCHECKED = ("tensors_sha256", META_CHECKSUM)  # fields the metadata checksum leaves out

# Fields an artifact of a kind must carry (what its readers use); checked on every load. (A key
# deleted from a newer artifact's JSON is caught by its checksum whatever the key.)
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "partition": (),  # load_partition needs n_experts (checked there: analyse reads labels only)
    "profile": ("config", "corpus", "partition_sha256", "languages"),
}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_tensors(tensors: Mapping[str, torch.Tensor]) -> str:
    """Hex sha256 over named tensors' names, dtypes, shapes and bytes (order-independent)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def meta_sha256(meta: Mapping[str, Any]) -> str:
    """Hex sha256 of an artifact's JSON metadata (canonical form; tensor checksum left out)."""
    fields = {k: v for k, v in jsonable(dict(meta)).items() if k not in _UNCHECKED}
    text = json.dumps(fields, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _has_marker(tensor_path: Path) -> bool:
    """Whether a tensor file's header says that its JSON carries a metadata checksum."""
    from safetensors import safe_open

    try:
        with safe_open(str(tensor_path), framework="pt") as handle:
            header = handle.metadata() or {}
    except (SafetensorError, OSError):
        return False  # a damaged file: the tensor checksum reports it
    return all(header.get(k) == v for k, v in META_MARKER.items())


def _is_plain_name(name: str) -> bool:
    """A file name beside the JSON (no folder part, no NUL, not too long for a file system)."""
    return bool(name) and Path(name).name == name and "\0" not in name and len(name) < 250


def _check_meta(json_path: Path, meta: dict[str, Any], kind: str) -> None:
    """Refuse metadata that was edited after it was written, or lacks a required field."""
    name = meta.get("tensors_file")
    plain = isinstance(name, str) and _is_plain_name(name)
    tensor_path = json_path.parent / name if plain else None
    checked = META_CHECKSUM in meta or (
        tensor_path is not None and tensor_path.is_file() and _has_marker(tensor_path)
    )
    if checked and meta.get(META_CHECKSUM) != meta_sha256(meta):
        raise BabelmoeError(
            f"{json_path} was altered after it was written (its metadata does not match its "
            "checksum)",
            "delete both files and re-run the stage that wrote them",
        )
    required = ("tensors_file", "tensors_sha256", *REQUIRED_FIELDS.get(kind, ()))
    missing = [field for field in required if field not in meta]
    if missing:
        raise BabelmoeError(
            f"{json_path} lacks required field(s): {', '.join(missing)}",
            "delete it and re-run the stage that wrote it",
        )
    if not plain:
        raise BabelmoeError(
            f"{json_path}: tensors_file is {json.dumps(name)[:60]}, not a file name beside it",
            "delete it and re-run the stage that wrote it",
        )
    if not isinstance(meta["tensors_sha256"], str):
        raise BabelmoeError(
            f"{json_path}: tensors_sha256 is not a checksum",
            "delete it and re-run the stage that wrote it",
        )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_readable(path: Path) -> None:
    """Give a temporary file (mkstemp makes them 0600) the usual permissions before renaming."""
    os.chmod(path, 0o666 & ~_umask())


def _fsync_write(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    An I/O error names ``path`` (not the temporary file, and not nothing: a full disk raises
    from ``write`` without a file name); a folder at ``path`` is refused in one line."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder", "choose a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _fsync_write(tmp, data)
        make_readable(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None or exc.filename == str(tmp):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically write UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def finite_json(value: Any) -> Any:
    """A JSON-safe plain Python value: numpy scalars unwrapped, arrays -> lists, NaN and
    infinities -> None (standard JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):  # numpy array or scalar
        return finite_json(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_json(
    path: Path,
    kind: str | None = None,
    fix: str = "re-run the stage that wrote it with this version of babelmoe",
    required: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A JSON object written by this package: one clear line when it is missing, corrupted,
    of another ``kind`` (when given), of another schema version or without a ``required``
    field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BabelmoeError(f"missing {path}", "run the stage that writes it first") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BabelmoeError(
            f"{path} is corrupted ({exc.__class__.__name__})", f"delete it; {fix}"
        ) from None
    if not isinstance(data, dict) or (kind is not None and data.get("kind") != kind):
        what = f"a {kind.replace('_', ' ')}" if kind else "a babelmoe JSON object"
        raise BabelmoeError(f"{path} is not {what}", fix)
    if data.get("schema_version") != SCHEMA_VERSION:
        raise BabelmoeError(
            f"{path} has schema version {data.get('schema_version')}, this babelmoe reads "
            f"{SCHEMA_VERSION}",
            fix,
        )
    missing = [name for name in required if name not in data]
    if missing:
        raise BabelmoeError(f"{path} lacks required field(s): {', '.join(missing)}", fix)
    return data


def jsonl_header(lines: list[str]) -> dict[str, Any]:
    """The header object of a resumable rows file (its first line), or ``{}`` when there is none
    or it is not a JSON object."""
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        return {}
    return header if isinstance(header, dict) else {}


def jsonl_records(lines: list[str]) -> Iterator[Any]:
    """The JSON values of ``lines`` (a resumable rows file after its header), skipping a line
    that does not parse: the last one cut by an interruption or a full disk."""
    for line in lines:
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomically write JSON (indented, keys in insertion order)."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def save_artifact(
    folder: Path,
    name: str,
    tensors: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    kind: str,
) -> Path:
    """Write ``<folder>/<name>.safetensors`` and ``<name>.json`` atomically; return the JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    tensor_path = folder / f"{name}.safetensors"
    json_path = folder / f"{name}.json"
    header: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "tensors_file": tensor_path.name,
    }
    # The header wins over ``meta`` (which may come from a loaded artifact, old checksums and all).
    header.update({k: v for k, v in meta.items() if k not in (*header, *_UNCHECKED)})
    checksum_of_meta = meta_sha256(header)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".safetensors.tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        contiguous = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        try:
            save_file(contiguous, str(tmp), metadata=META_MARKER)
        except SafetensorError as exc:  # a full disk arrives as "... (os error 28)"
            raise _os_error(exc, tensor_path) from None
        checksum = sha256_file(tmp)
        make_readable(tmp)
        # Retract the old commit marker first: a crash between the two renames then leaves no
        # artifact (re-run) rather than an old JSON beside new tensors (reported as corrupted).
        json_path.unlink(missing_ok=True)
        os.replace(tmp, tensor_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fields = list(header)
    header["tensors_sha256"] = checksum
    header[META_CHECKSUM] = checksum_of_meta
    ordered = {k: header[k] for k in [*fields[:3], "tensors_sha256", META_CHECKSUM, *fields[3:]]}
    atomic_write_json(json_path, ordered)
    return json_path


def _os_error(exc: Exception, path: Path) -> Exception:
    """The ``OSError`` behind a safetensors I/O error (so the CLI reports it), else ``exc``."""
    found = re.search(r"os error (\d+)", str(exc))
    if found is None:
        return exc
    code = int(found.group(1))
    return OSError(code, os.strerror(code), str(path))


def named_os_error(exc: BaseException, path: Path) -> BaseException:
    """``exc`` as an ``OSError`` naming ``path`` when it is an I/O error that names no file (a
    full disk raises from ``write`` without one; safetensors says "... (os error 28)"), so the
    CLI's line says which file failed; anything else unchanged."""
    if isinstance(exc, OSError):
        return exc if exc.filename else OSError(exc.errno, exc.strerror, str(path))
    return _os_error(exc, path) if isinstance(exc, Exception) else exc


def artifact_exists(folder: Path, name: str) -> bool:
    """Whether the JSON half (the commit marker) of an artifact is present."""
    return (folder / f"{name}.json").is_file()


def load_meta(folder: Path, name: str, kind: str) -> dict[str, Any]:
    """Read and validate an artifact's JSON metadata (no tensors)."""
    json_path = folder / f"{name}.json"
    if not json_path.is_file():
        raise BabelmoeError(
            f"no {kind} artifact in {folder} (missing {json_path.name})",
            f"run the stage that writes the {kind} first or pass the right folder",
        )
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BabelmoeError(
            f"{json_path} is corrupted ({exc.__class__.__name__})",
            "delete it and re-run the stage that wrote it",
        ) from None
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        found = meta.get("kind") if isinstance(meta, dict) else type(meta).__name__
        raise BabelmoeError(
            f"{json_path} is not a {kind} artifact (kind: {found})", "pass the right file"
        )
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BabelmoeError(
            f"{json_path} has schema version {version}, this babelmoe reads {SCHEMA_VERSION}",
            "re-run the stage with this version of babelmoe",
        )
    _check_meta(json_path, meta, kind)
    return meta


def load_artifact(folder: Path, name: str, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Load an artifact, checking schema version, kind and the tensor file's checksum."""
    meta = load_meta(folder, name, kind)
    tensor_path = folder / meta["tensors_file"]
    if not tensor_path.is_file():
        raise BabelmoeError(
            f"{tensor_path} is missing although {name}.json names it",
            "re-run the stage that wrote it",
        )
    if sha256_file(tensor_path) != meta["tensors_sha256"]:
        raise BabelmoeError(
            f"{tensor_path} is truncated or corrupted (checksum mismatch)",
            "delete it and re-run the stage that wrote it",
        )
    try:
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError) as exc:
        raise BabelmoeError(f"{tensor_path} cannot be read: {exc}", "re-run the stage") from None
    return tensors, meta


def check_can_write(
    folder: Path, name: str, kind: str, identity: Mapping[str, Any], force: bool
) -> bool:
    """Decide whether a stage may write ``name`` into ``folder``.

    Returns True when the artifact must be (re)computed, False when an identical one exists
    (same ``identity`` fields), and raises when a different one exists and ``force`` is off.
    """
    if not artifact_exists(folder, name) or force:
        return True
    try:
        meta = load_meta(folder, name, kind)
    except BabelmoeError:
        raise BabelmoeError(
            f"{folder / (name + '.json')} exists but is not a readable {kind} artifact",
            f"choose another output folder or pass {setting('force')} to replace it",
        ) from None
    differing = differing_fields(meta, identity)
    if differing:
        raise BabelmoeError(
            f"{folder} already holds a different {kind} artifact "
            f"(differs in: {', '.join(differing)})",
            f"choose another output folder or pass {setting('force')} to replace it",
        )
    return False


# Identity fields added after artifacts were first written: an artifact (or checkpoint) written
# before one existed does not record it, and is compared on the other fields only (a re-run of an
# older run folder keeps its results instead of refusing them).
LATER_IDENTITY_FIELDS = frozenset({"tokens_sha256"})


def differing_fields(meta: Mapping[str, Any], identity: Mapping[str, Any]) -> list[str]:
    """The ``identity`` fields whose values differ from those recorded in ``meta`` (sorted)."""
    return sorted(
        k
        for k, v in identity.items()
        if meta.get(k) != jsonable(v) and (k in meta or k not in LATER_IDENTITY_FIELDS)
    )


def load_checkpoint(
    folder: Path, name: str, kind: str, identity: Mapping[str, Any]
) -> tuple[dict[str, torch.Tensor], dict] | None:
    """A resumable checkpoint of this configuration, or None (with a warning) when it is
    missing, unreadable (a kill while writing) or was made with another ``identity``."""
    if not artifact_exists(folder, name):
        return None
    try:
        tensors, meta = load_artifact(folder, name, kind)
    except BabelmoeError as exc:
        logger.warning("ignoring an unreadable checkpoint %s/%s (%s)", folder, name, exc)
        return None
    if differing_fields(meta, identity):
        logger.warning("ignoring %s/%s: another configuration's checkpoint", folder, name)
        return None
    return tensors, meta


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def is_temp_file(path: Path) -> bool:
    """Whether ``path`` is one of the temporary files the atomic writes above create."""
    return path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file()


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete temporary files a killed writer left directly in ``folder``; return them.

    Call only while no other process can be writing into ``folder`` (under :func:`run_lock`).
    """
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if is_temp_file(p)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _make_folder(folder: Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders it created, deepest first."""
    created = []
    missing = folder
    while not missing.exists() and missing != missing.parent:
        created.append(missing)
        missing = missing.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(
            f"cannot create the folder {folder}: a file is in the way",
            "choose another output folder",
        ) from None
    return created


def _busy(folder: Path) -> BabelmoeError:
    return BabelmoeError(
        f"another babelmoe run is writing to {folder}",
        "wait for it to finish or use another output folder",
    )


def ensure_unlocked(folder: Path) -> None:
    """Refuse at once when another run holds ``folder``'s lock (without taking it): for a job
    that loads a model before its first stage takes the lock."""
    from filelock import FileLock, Timeout

    lock_path = Path(folder) / LOCK_FILE
    if not lock_path.is_file():
        return
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise _busy(Path(folder)) from None
    lock.release()


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on a run folder; a second writer gets a clear error at once.

    Temporary files that a killed run left in the folder are removed once the lock is held. When
    the block wrote nothing into the folder, the lock file and any folders this call created are
    removed again: a stage that fails before writing leaves nothing behind.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    created = _make_folder(folder)
    lock_path = folder / LOCK_FILE
    before = None if lock_path.exists() else set(os.listdir(folder))
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise _busy(folder) from None
    try:
        remove_stale_temps(folder)
        yield
    finally:
        try:
            if before is not None and set(os.listdir(folder)) - {LOCK_FILE} == before:
                lock_path.unlink()  # nothing written: leave no trace (we still hold the lock)
                for path in created:
                    path.rmdir()  # deepest first; stops at the first folder that is not empty
        except OSError:
            pass
        finally:
            lock.release()


TRANSACTION_DIR = ".babelmoe-prev"  # the entries a stage replaces, kept until it succeeds
_STATE_FILE = ".state"  # inside TRANSACTION_DIR: "running" or "committed"


def _managed(folder: Path, names: tuple[str, ...] | None) -> list[str]:
    """The entries of ``folder`` a transaction manages: ``names``, or all but its own files."""
    if names is not None:
        return list(names)
    if not folder.is_dir():
        return []
    return sorted(set(os.listdir(folder)) - {LOCK_FILE, TRANSACTION_DIR})


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _roll_back(folder: Path, names: tuple[str, ...] | None, wrote: bool) -> None:
    """Put ``folder`` back as it was before the transaction whose backup is in it; ``wrote``:
    the block had started (what is in ``folder`` under the managed names is its output)."""
    backup = folder / TRANSACTION_DIR
    kept = _backed_up(backup)
    if wrote:
        for name in _managed(folder, names):
            _remove(folder / name)  # what the block wrote (the old entries are in the backup)
    for name in kept:
        if not (folder / name).exists():
            os.replace(backup / name, folder / name)
    shutil.rmtree(backup)


def _recover(folder: Path, names: tuple[str, ...] | None) -> None:
    """Finish what a killed transaction left: roll back a running one (only what it moved, if
    it was killed while moving), drop a committed one's backup."""
    backup = folder / TRANSACTION_DIR
    if not backup.is_dir():
        return
    state_file = backup / _STATE_FILE
    state = state_file.read_text().strip() if state_file.is_file() else ""
    if state == "committed":
        shutil.rmtree(backup)
        return
    logger.warning("%s: restoring the outputs an interrupted run had replaced", folder)
    _roll_back(folder, names, wrote=state == "running")


@contextlib.contextmanager
def transaction(folder: Path, names: tuple[str, ...] | None = None) -> Iterator[Path]:
    """A stage's outputs in ``folder`` replaced all together or not at all.

    ``names``: the entries of ``folder`` the block (re)writes (None: every entry but the lock).
    The existing ones are moved aside (renames, no copying) into ``folder/.babelmoe-prev``
    before the block; the block writes new ones in their place. When it fails (a full disk, an
    error, Ctrl-C) what it wrote is removed and the old entries are moved back: the folder is as
    it was. When it succeeds the old entries are deleted (with ``names=None``, entries the block
    did not rewrite are moved back: a user's other files in an output folder stay). A process
    killed inside leaves the backup and its state (``moving``, ``running``, ``committed``); the
    next transaction on the folder finishes or rolls back first. Hold the folder's
    :func:`run_lock` (or check :func:`ensure_unlocked`) around it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _recover(folder, names)
    backup = folder / TRANSACTION_DIR
    backup.mkdir()
    state = backup / _STATE_FILE
    started = False
    try:
        state.write_text("moving\n")  # tiny, not atomic: an empty file reads as "moving"
        for name in _managed(folder, names):
            if (folder / name).exists() or (folder / name).is_symlink():
                os.replace(folder / name, backup / name)
        os.replace(_small_file(backup, "running\n"), state)
        started = True
        yield folder
    except BaseException:
        _roll_back(folder, names, wrote=started)
        raise
    os.replace(_small_file(backup, "committed\n"), state)
    if names is None:  # entries the block did not rewrite go back
        for name in _backed_up(backup):
            if not (folder / name).exists():
                os.replace(backup / name, folder / name)
    shutil.rmtree(backup, ignore_errors=True)


def _backed_up(backup: Path) -> set[str]:
    """The entries a transaction moved into ``backup`` (not its state files)."""
    return {name for name in os.listdir(backup) if not name.startswith(_STATE_FILE)}


def _small_file(folder: Path, text: str) -> Path:
    """A new file ``text`` in ``folder`` (for a rename over a state file)."""
    fd, name = tempfile.mkstemp(prefix=".state.", dir=folder)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return Path(name)


def replaces_together(*names: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a stage runner ``run_<stage>(config, run_dir, *, ...)``: its outputs ``names``
    (folders of the run) are replaced all together or not at all (:func:`transaction`)."""

    def decorate(runner: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(runner)
        def wrapper(config: Any, run_dir: Path, *args: Any, **kwargs: Any) -> T:
            if Path(run_dir).is_dir():
                ensure_unlocked(Path(run_dir))
            else:  # the runner reports the missing inputs
                return runner(config, run_dir, *args, **kwargs)
            with transaction(Path(run_dir), names):
                return runner(config, run_dir, *args, **kwargs)

        return wrapper

    return decorate
