"""How well the patch-centroid boundary constraint G tracks the exact Chamfer distance, on random curves.

Each sample: a random smooth closed curve bounds the person mask; the flow is a constant vector inside a second
region, the mask's region moved, scaled and deformed by random amounts, and 0 outside. The exact Chamfer distance
between the flow region's edge pixels and the mask's edge pixels (Canny on both, nearest neighbours by
scipy.spatial.cKDTree) is compared with G (hmore.losses.boundary_constraint). Printed: Pearson and Spearman
correlations for the symmetric Chamfer distance and for its boundary->flow half, and a table binned by the exact
distance.

Usage: python benchmarks/boundary_chamfer.py [--samples 300] [--size 128] [--seed 0]
"""

from __future__ import annotations

import argparse

import kornia
import numpy as np
import torch
from scipy import stats
from scipy.spatial import cKDTree

from hmore.losses.boundary_constraint import boundary_constraint


def random_region(rng: np.random.Generator, size: int, *, centre: np.ndarray, radius: float,
                  coeffs: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """(size, size) bool star-shaped region r(theta) = radius * (1 + sum_k a_k cos(k theta + phi_k))."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xs - centre[0], ys - centre[1]
    theta = np.arctan2(dy, dx)
    k = np.arange(2, 2 + len(coeffs))[:, None, None]
    r = radius * (1 + (coeffs[:, None, None] * np.cos(k * theta + phases[:, None, None])).sum(0))
    return np.hypot(dx, dy) <= r


def edge_points(region: np.ndarray) -> np.ndarray:
    """(N, 2) (x, y) of the Canny edges of a binary region."""
    t = torch.from_numpy(region.astype(np.float32))[None, None]
    _, edges = kornia.filters.canny(t, hysteresis=False)
    ys, xs = np.nonzero(edges[0, 0].numpy() > 0)
    return np.stack([xs, ys], axis=1).astype(np.float64)


def chamfer(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(symmetric mean of the two directed mean distances, mean distance from b's points to a)."""
    d_ab = cKDTree(b).query(a)[0].mean()
    d_ba = cKDTree(a).query(b)[0].mean()
    return 0.5 * (d_ab + d_ba), float(d_ba)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    size = args.size
    rows = []
    for _ in range(args.samples):
        n = int(rng.integers(2, 5))
        coeffs = rng.uniform(0.0, 0.15, n)
        phases = rng.uniform(0, 2 * np.pi, n)
        centre = rng.uniform(0.4, 0.6, 2) * size
        radius = rng.uniform(0.18, 0.3) * size
        mask = random_region(rng, size, centre=centre, radius=radius, coeffs=coeffs, phases=phases)
        level = rng.uniform(0, 1)  # perturbation strength, 0 = the flow region is the mask
        shift = rng.normal(0, 6 * level, 2)
        scale = 1 + rng.normal(0, 0.12 * level)
        coeffs2 = np.clip(coeffs + rng.normal(0, 0.08 * level, n), 0, 0.3)
        region = random_region(rng, size, centre=centre + shift, radius=radius * scale, coeffs=coeffs2,
                               phases=phases + rng.normal(0, 0.3 * level, n))
        velocity = rng.uniform(2, 6) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
        flow = torch.from_numpy((region[None] * velocity[:, None, None]).astype(np.float32))[None]  # (1,2,H,W)
        g = boundary_constraint(flow, torch.from_numpy(mask.astype(np.int64))[None]).item()
        sym, to_flow = chamfer(edge_points(region), edge_points(mask))
        rows.append((sym, to_flow, g))
    data = np.asarray(rows)
    sym, to_flow, g = data.T
    print(f"{args.samples} random curves at {size}x{size}, seed {args.seed}; G at scales 8, 16, 32")
    for label, ref in (("symmetric Chamfer", sym), ("boundary->flow Chamfer", to_flow)):
        pr = stats.pearsonr(ref, g)[0]
        sr = stats.spearmanr(ref, g)[0]
        print(f"  G vs {label:24s} Pearson {pr:.3f}  Spearman {sr:.3f}")
    edges = [0, 0.5, 1, 2, 3, 4, 6, 10, np.inf]
    print(f"{'exact symmetric Chamfer (px)':>30s} {'n':>4s} {'mean Chamfer':>13s} {'mean G':>8s} {'G/Chamfer':>10s}")
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (sym >= lo) & (sym < hi)
        if sel.any():
            ratio = g[sel].mean() / max(sym[sel].mean(), 1e-9)
            print(f"{f'[{lo}, {hi})':>30s} {sel.sum():4d} {sym[sel].mean():13.2f} {g[sel].mean():8.2f} {ratio:10.2f}")


if __name__ == "__main__":
    main()
