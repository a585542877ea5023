"""Options shared by several subcommands, declared once."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import typer

from babelmoe.models.loading import ModelSpec

MODEL = typer.Option(
    "default",
    "--model",
    "-m",
    help="'default' (bundled Gemma 3 270M), a hub id, a local folder or a .gguf file.",
)
DTYPE = typer.Option(
    "auto", "--dtype", help="auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16, float16."
)
DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")
DEVICE_MAP = typer.Option(
    None, "--device-map", help="'auto' shards a model larger than one GPU (accelerate)."
)
ARCHITECTURES = typer.Option(
    None, "--architectures", help="JSON file registering extra architectures."
)
FORCE = typer.Option(
    False, "--force", help="Replace an existing artifact made with another configuration."
)


def model_spec(
    model: str, dtype: str, device: str, device_map: str | None, architectures: Path | None
) -> ModelSpec:
    """Build the model spec, registering user architectures first."""
    if architectures is not None:
        from babelmoe.models.architectures import register_from_file

        register_from_file(architectures)
    return ModelSpec(source=model, dtype=dtype, device=device, device_map=device_map)


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
