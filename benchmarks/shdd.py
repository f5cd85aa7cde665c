"""SHDD speed and accuracy tables: encode, decode, round trip and perturbation drift.

    python benchmarks/shdd.py [--device cpu|cuda] [--quick]

Prints three tables: encode time per point-coefficient; decode time for a batch of 16 at L=47
with the distance to an exhaustive search over a 1M-point Fibonacci lattice; and, per degree,
the round-trip error and the paper's Table 6 perturbation drift (Gaussian noise of variance
0.01 added to the encoding).
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import torch
from tables import print_table  # a sibling script

from locdiff_core import shdd
from locdiff_core.geo import (
    EARTH_RADIUS_KM,
    fibonacci_lattice,
    great_circle_km,
    latlon_to_xyz,
    uniform_points,
)


def best_time(fn, repeats: int, sync) -> float:
    fn()
    sync()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def encode_table(device, sync, quick: bool) -> None:
    print_table(
        "encode: time per point-coefficient (best of 5)",
        ("L", "dtype", "points", "ns / point-coef", "GB/s written"),
        encode_rows(device, sync, quick),
    )


def encode_rows(device, sync, quick: bool):
    for L in (23, 47, 100, 200):
        for dtype in (torch.float32, torch.float64):
            D = (L + 1) ** 2
            n = max(256, (2 << 20) // D) if quick else max(512, (4 << 20) // D)
            lat, lon = uniform_points(n, dtype=dtype, device=device)
            t = best_time(lambda lat=lat, lon=lon, L=L: shdd.encode(lat, lon, L), 5, sync)
            ns = t / (n * D) * 1e9
            gbs = n * D * dtype.itemsize / t / 1e9
            yield L, str(dtype)[6:], n, f"{ns:.2f}", f"{gbs:.2f}"


def exhaustive_decode(e: torch.Tensor, radius_km: float, num_points: int, centres: int):
    """Best window among the centres of the densest lattice points, over a 1M-point lattice."""
    L = shdd.degree_of(e.shape[1])
    lat, lon = fibonacci_lattice(num_points)
    logits = []
    for i in range(0, num_points, 50_000):
        y = shdd.encode(lat[i : i + 50_000], lon[i : i + 50_000], L)
        logits.append(e.to(torch.float64) @ y.t())
    logits = torch.cat(logits, 1)
    q = torch.softmax(logits, 1)
    xyz = latlon_to_xyz(lat, lon)
    cos_r = math.cos(radius_km / EARTH_RADIUS_KM)
    out_lat, out_lon = [], []
    for b in range(e.shape[0]):
        top = q[b].topk(centres).indices
        inside = (xyz[top] @ xyz.t()) >= cos_r
        score = inside.to(q.dtype) @ q[b]
        best = top[score.argmax()]
        out_lat.append(lat[best])
        out_lon.append(lon[best])
    return torch.stack(out_lat), torch.stack(out_lon)


def decode_table(device, sync, quick: bool) -> None:
    L, B = 47, 16
    gen = torch.Generator().manual_seed(0)
    lat, lon = uniform_points(B, generator=gen)
    noise = torch.randn(B, (L + 1) ** 2, generator=gen, dtype=torch.float64) * 0.1
    e = (shdd.encode(lat, lon, L) + noise).to(device)
    radius = shdd.default_radius_km(L)
    t32 = best_time(lambda: shdd.decode(e.float(), radius), 3, sync)
    d_lat, d_lon, _ = shdd.decode(e, radius)
    n = 200_000 if quick else 1_000_000
    ref_lat, ref_lon = exhaustive_decode(e.cpu(), radius, n, centres=200)
    gap = great_circle_km(d_lat.cpu(), d_lon.cpu(), ref_lat, ref_lon)
    spacing = math.sqrt(4 * math.pi / n) * EARTH_RADIUS_KM
    print_table(
        f"decode: batch of {B} at L={L}, window radius {radius:.1f} km (noisy inputs)",
        ("time (s)", "s per item", "vs exhaustive: median km", "max km", "lattice spacing km"),
        [
            (
                f"{t32:.3f}",
                f"{t32 / B:.4f}",
                f"{float(gap.median()):.2f}",
                f"{float(gap.max()):.2f}",
                f"{spacing:.1f}",
            )
        ],
    )


def drift_table(device, quick: bool) -> None:
    print_table(
        "round trip and perturbation drift (noise variance 0.01; paper Table 6: 5.3 km)",
        ("L", "points", "round trip max (m)", "drift mean km", "drift median km", "drift max km"),
        drift_rows(device, quick),
    )


def drift_rows(device, quick: bool):
    for L in (15, 23, 31, 47, 100, 200):
        n = 4 if quick else (8 if L >= 100 else 16)
        gen = torch.Generator().manual_seed(L)
        lat, lon = uniform_points(n, generator=gen)
        e = shdd.encode(lat, lon, L).to(device)
        r_lat, r_lon, _ = shdd.decode(e)
        rt = great_circle_km(r_lat.cpu(), r_lon.cpu(), lat, lon) * 1000.0
        noise = torch.randn(e.shape, generator=gen, dtype=torch.float64).to(device) * 0.1
        n_lat, n_lon, _ = shdd.decode(e + noise)
        drift = great_circle_km(n_lat.cpu(), n_lon.cpu(), lat, lon)
        yield (
            L,
            n,
            f"{float(rt.max()):.2e}",
            f"{float(drift.mean()):.2f}",
            f"{float(drift.median()):.2f}",
            f"{float(drift.max()):.2f}",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(
        f"# SHDD benchmark on {device.type} ({name or platform.machine()}), "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    encode_table(device, sync, args.quick)
    decode_table(device, sync, args.quick)
    drift_table(device, args.quick)


if __name__ == "__main__":
    main()
