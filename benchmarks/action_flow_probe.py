"""What each flow channel of a built fine-grained action set carries, without training: the mean flow magnitude on
and off the person (the generator's masks), the error against the exact flow on the person, and a nearest-neighbour
top-1 of test clips against training clips from per-clip flow templates (each pair's flow, masked to the person or
not, averaged over a 4 x 4 grid of the crop: (T-1) x 2 x 16 numbers, cosine similarity).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/action_flow_probe.py runs/action_flow/full24/set --flow-key
hmore_flow_cpu-3346b99954cd`` (README "Downstream", fine-grained actions).
"""

from __future__ import annotations

import argparse

import numpy as np

CHANNELS = ("dis", "world", "local", "exact_world", "exact_local")
REFERENCE = {"dis": "exact_world", "world": "exact_world", "local": "exact_local", "exact_world": "exact_world",
             "exact_local": "exact_local"}


def template(flow: np.ndarray, person: np.ndarray, *, mask: bool, step: float, grid: int = 4) -> np.ndarray:
    """A clip's (T-1, 2, c, c) int8 flow -> the unit-length vector of its grid-pooled pairs."""
    from hmore.flowfeed import flow_channel

    f = flow_channel(flow, person, np.arange(len(flow)), flow_scale=1.0, mask=mask, step=step)  # (T-1, 2, c, c)
    t, _, c, _ = f.shape
    g = f[:, :, : c - c % grid, : c - c % grid].reshape(t, 2, grid, c // grid, grid, c // grid).mean(axis=(3, 5))
    v = g.ravel()
    return v / max(float(np.linalg.norm(v)), 1e-9)


def main() -> None:
    from hmore.fineaction.data import load_action_set

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", help="a built action set folder")
    p.add_argument("--flow-key", required=True, help="the H-MoRe flow cache folder (<model>-<sha12>)")
    args = p.parse_args()
    tr = load_action_set(args.root, split="train", channels=CHANNELS, flow_key=args.flow_key, mask=True)
    te = load_action_set(args.root, split="test", channels=CHANNELS, flow_key=args.flow_key, mask=True)
    step = tr.flow_step
    print(f"{len(tr)} training, {len(te)} test clips; flow in pixels of the crop; chance top-1 {100 / 12:.1f} %")
    print("channel      |f| on  |f| off  err on  NN top-1 raw  NN top-1 masked")
    for c in CHANNELS:
        on, off, err = [], [], []
        for a in (tr, te):
            for k in range(len(a)):
                body = a.mask[k][:-1] > 127  # (T-1, c, c): frame t's person for pair t
                f = np.linalg.norm(a.flows[c][k].astype(np.float32), axis=1) * step  # (T-1, c, c)
                d = np.linalg.norm((a.flows[c][k].astype(np.float32) - a.flows[REFERENCE[c]][k]), axis=1) * step
                on.append(f[body].mean())
                off.append(f[~body].mean())
                err.append(d[body].mean())
        nn = []
        for mask in (False, True):
            gal = np.stack([template(tr.flows[c][k], tr.mask[k], mask=mask, step=step) for k in range(len(tr))])
            probe = np.stack([template(te.flows[c][k], te.mask[k], mask=mask, step=step) for k in range(len(te))])
            pred = tr.labels[np.argmax(probe @ gal.T, axis=1)]
            nn.append(100.0 * float(np.mean(pred == te.labels)))
        print(f"{c:<12} {np.mean(on):6.3f}  {np.mean(off):6.3f}  {np.mean(err):6.3f}  {nn[0]:12.1f}  {nn[1]:14.1f}")


if __name__ == "__main__":
    main()
