"""What several subcommands share, declared once: the model options (one decorator), options
whose defaults come from the stage's config dataclass, list parsing, and torchrun set-up."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import inspect
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import typer

from babelmoe.errors import BabelmoeError, EveryRankError, first_sentence
from babelmoe.models.spec import ModelSpec

ARCHITECTURES_HELP = "JSON file registering extra architectures (see the README)."
FORCE = typer.Option(
    False, "--force", help="Replace an existing artifact made with another configuration."
)


# The settings (config fields) whose option is not ``--`` + the name in kebab case. The CLI
# names the settings of an error (``errors.setting``) by their options: ``flag_namer``.
SETTING_FLAGS: dict[str, str] = {
    "n_bootstrap": "--bootstrap",
    "bootstrap_paired": "--paired",
    "n_permutations": "--permutations",
    "primary_metric": "--metric",
    "token_budget": "--budget",
    "heldout_frac": "--heldout",
    "n_units": "--units",
    "n_experts": "--experts",
    "min_script_share": "--min-share",
}


def flag(setting: str) -> str:
    """The command-line option of the config field ``setting`` (``max_documents`` ->
    ``--max-documents``; ``SETTING_FLAGS`` where they differ); an option stays as it is."""
    if setting.startswith("-"):
        return setting
    return SETTING_FLAGS.get(setting, "--" + setting.replace("_", "-"))


def flag_namer(options: Iterable[str] | None = None) -> Callable[[str], str]:
    """``setting -> its option`` for an error of a command whose options are ``options``
    (all of them: a click command's ``opts``); a setting the command has no option for keeps
    its name. None: every setting as its option."""
    known = None if options is None else set(options)

    def name(setting: str) -> str:
        option = flag(setting)
        return option if known is None or option in known else setting

    return name


def config_default(config_cls: type, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``config_cls`` (the one source of it),
    ``"statistics.seed"`` for a field of a nested config's default; sequences are given as the
    comma-separated text the command line takes."""
    outer, _, inner = name.partition(".")
    field = {f.name: f for f in dataclasses.fields(config_cls)}[outer]
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        raise TypeError(f"{config_cls.__name__}.{outer} has no default")
    for part in inner.split(".") if inner else ():
        value = getattr(value, part)
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return value


def option(config_cls: type, name: str, *flags: str, help: str, **kwargs: Any) -> Any:
    """A typer option whose default is ``config_cls``'s default for ``name``."""
    return typer.Option(config_default(config_cls, name), *flags, help=help, **kwargs)


def split_list(value: str | None) -> list[str]:
    """'en, fr,es' -> ['en', 'fr', 'es']; None or '' -> []."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def task_list(value: str | None, flag: str = "--tasks") -> tuple[str, ...]:
    """``--tasks`` as a tuple; None when not given; refused when given but naming no task
    (``--tasks ","`` would otherwise run nothing and succeed)."""
    if value is None:
        return ()
    names = tuple(split_list(value))
    if not names:
        raise BabelmoeError(
            f"{flag} {value!r} names no task", "pass task names or YAML files, comma-separated"
        )
    return names


def numbers(value: str, kind: type, flag: str) -> tuple:
    """'0.1,0.25' -> (0.1, 0.25) as ``kind``; one clear line when it is not a list of numbers."""
    try:
        return tuple(kind(v) for v in split_list(value))
    except ValueError:
        example = "0.1,0.25,0.4" if kind is float else "0,1,2"
        what = " must be integers;" if kind is int else ":"
        raise BabelmoeError(
            f"{flag}{what} not a list of numbers: {value!r}", f"pass e.g. {example}"
        ) from None


def register_architectures(path: Path | None) -> None:
    """Register the architectures of a user's JSON file (``--architectures``)."""
    if path is not None:
        from babelmoe.models.architectures import register_from_file

        register_from_file(path)


# The model options, declared once: name -> (annotation, typer option).
_MODEL_OPTIONS: dict[str, tuple[Any, Any]] = {
    "model": (
        str,
        typer.Option(
            ModelSpec.source,
            "--model",
            "-m",
            help="'default' (bundled Gemma 3 270M), a hub id, a local folder or a .gguf file.",
        ),
    ),
    "dtype": (
        str,
        typer.Option(
            ModelSpec.dtype,
            "--dtype",
            help="auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16, float16.",
        ),
    ),
    "device": (str, typer.Option(ModelSpec.device, "--device", help="auto, cpu, cuda or cuda:N.")),
    "device_map": (
        str | None,
        typer.Option(
            None, "--device-map", help="'auto' shards a model larger than one GPU (accelerate)."
        ),
    ),
    "architectures": (Path | None, typer.Option(None, "--architectures", help=ARCHITECTURES_HELP)),
}


def model_options(
    *, model: bool = True, device_map: bool = True
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the model options (``--model``, ``--dtype``, ``--device``,
    ``--device-map``, ``--architectures``); it receives them as one ``spec: ModelSpec``.

    ``model=False`` leaves ``--model`` out (the command takes the model as an argument and sets
    ``spec.source`` itself); ``device_map=False`` leaves ``--device-map`` out.
    """
    names = [
        n for n in _MODEL_OPTIONS if (model or n != "model") and (device_map or n != "device_map")
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        params = [p for p in signature.parameters.values() if p.name != "spec"]
        extra = [
            inspect.Parameter(
                n,
                inspect.Parameter.KEYWORD_ONLY,
                default=_MODEL_OPTIONS[n][1],
                annotation=_MODEL_OPTIONS[n][0],
            )
            for n in names
        ]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            chosen = {n: kwargs.pop(n) for n in names}
            register_architectures(chosen.pop("architectures"))
            spec = ModelSpec(
                source=chosen.get("model", ModelSpec.source),
                dtype=chosen["dtype"],
                device=chosen["device"],
                device_map=chosen.get("device_map"),
            )
            return command(spec=spec, **kwargs)

        # typer reads the signature and the annotations of the wrapper
        kinds = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]
        wrapper.__signature__ = signature.replace(parameters=[*kinds, *extra])  # type: ignore[attr-defined]
        hints = {p.name: p.annotation for p in params}
        wrapper.__annotations__ = {**hints, **{n: _MODEL_OPTIONS[n][0] for n in names}}
        del wrapper.__wrapped__  # typer must see the wrapper's signature, not the command's
        return wrapper

    return decorate


# Seconds a collective may wait for a silent rank before this rank gives up (NCCL's default is
# 30 minutes); BABELMOE_DIST_TIMEOUT overrides it.
DIST_TIMEOUT_S = 600
_PID_KEY = "babelmoe/pid/{}"


class RankStopped(BabelmoeError):
    """This rank stopped because another rank of the job died or the launcher ended the job."""


def _dist_timeout() -> float:
    value = os.environ.get("BABELMOE_DIST_TIMEOUT", str(DIST_TIMEOUT_S))
    try:
        seconds = float(value)
    except ValueError:
        raise EveryRankError(
            f"BABELMOE_DIST_TIMEOUT={value!r} is not a number of seconds", "set e.g. 600"
        ) from None
    if not (seconds > 0 and math.isfinite(seconds)):
        raise EveryRankError(
            f"BABELMOE_DIST_TIMEOUT must be a finite number > 0, got {value}", "set e.g. 600"
        )
    return seconds


def _dead_ranks(rank: int, world_size: int, wait_s: float = 3.0) -> list[int]:
    """Ranks on this host whose process is gone (each rank left its pid in the group's store);
    empty when it cannot be told (other hosts, the store gone with rank 0). A killed process
    closes its sockets before it exits, so this waits up to ``wait_s`` for it to be gone."""
    import socket
    import time

    pids = {}
    try:
        store = distributed_store()
        store.set_timeout(datetime.timedelta(seconds=2))
        for other in range(world_size):
            host, pid = store.get(_PID_KEY.format(other)).decode().split(":")
            if other != rank and host == socket.gethostname():
                pids[other] = int(pid)
    except Exception as exc:  # a best-effort diagnosis, never the error itself
        logging.getLogger(__name__).debug("cannot tell which rank died: %r", exc)
    deadline = time.monotonic() + wait_s
    while True:
        dead = [other for other, pid in pids.items() if _is_gone(pid)]
        if dead or not pids or time.monotonic() > deadline:
            return dead
        time.sleep(0.1)


def _is_gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie its launcher has not reaped counts)."""
    status = Path(f"/proc/{pid}/status")
    if Path("/proc/self").exists():
        return not status.exists() or status.read_text().split("State:")[1].split()[0] == "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _stopped(rank: int, world_size: int, why: str) -> RankStopped:
    why = re.sub(r"^\[[^\]]*\]\s*", "", why)  # gloo's "[file.cc:553] " prefix
    dead = _dead_ranks(rank, world_size)
    who = f"rank {', '.join(map(str, dead))} died" if dead else "another rank died or hung"
    return RankStopped(
        f"rank {rank} of {world_size} stopped: {who} ({why}); no artifact was written",
        "see that rank's log, then re-run the same command: it resumes from the last checkpoint",
    )


@contextlib.contextmanager
def distributed() -> Iterator[None]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); leave it on exit.

    A rank that dies does not leave the others waiting: a collective that fails (gloo: the
    dead rank's connection closed) or waits longer than ``BABELMOE_DIST_TIMEOUT`` seconds, and
    torchrun's SIGTERM to the survivors, end each surviving rank with one line naming the dead
    rank (when it ran on this host).
    """
    import signal
    import socket

    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        yield
        return
    timeout = datetime.timedelta(seconds=_dist_timeout())
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=timeout)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    with contextlib.suppress(Exception):
        store = distributed_store()
        store.set(_PID_KEY.format(rank), f"{socket.gethostname()}:{os.getpid()}")

    def on_sigterm(signum: int, frame: Any) -> None:
        raise _stopped(rank, world_size, "the launcher ended the job")

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        try:
            yield
            dist.barrier()  # every rank done (rank 0 has written) before the group is torn down
        except RuntimeError as exc:  # gloo / NCCL: a peer's connection closed, or a timeout
            raise _stopped(rank, world_size, first_sentence(exc)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def distributed_store() -> Any:
    """The process group's key-value store."""
    from torch.distributed import distributed_c10d

    return distributed_c10d._get_default_store()
