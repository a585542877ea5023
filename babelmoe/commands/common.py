"""What several subcommands share, declared once: the model options (one decorator), options
whose defaults come from the stage's config dataclass, list parsing, and torchrun set-up."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

from babelmoe.errors import BabelmoeError
from babelmoe.models.loading import ModelSpec

ARCHITECTURES_HELP = "JSON file registering extra architectures (see the README)."
FORCE = typer.Option(
    False, "--force", help="Replace an existing artifact made with another configuration."
)


def config_default(config_cls: type, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``config_cls`` (the one source of it);
    sequences are given as the comma-separated text the command line takes."""
    field = {f.name: f for f in dataclasses.fields(config_cls)}[name]
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        raise TypeError(f"{config_cls.__name__}.{name} has no default")
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return value


def option(config_cls: type, name: str, *flags: str, help: str, **kwargs: Any) -> Any:
    """A typer option whose default is ``config_cls``'s default for ``name``."""
    return typer.Option(config_default(config_cls, name), *flags, help=help, **kwargs)


def split_list(value: str | None) -> list[str]:
    """'en, fr,es' -> ['en', 'fr', 'es']; None or '' -> []."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


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


@contextlib.contextmanager
def distributed() -> Iterator[None]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); leave it on exit."""
    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        yield
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    try:
        yield
        dist.barrier()  # every rank done (rank 0 has written) before the group is torn down
    finally:
        dist.destroy_process_group()
