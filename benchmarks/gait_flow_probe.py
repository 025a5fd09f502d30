"""Why estimated flow hurt the gait recogniser, without training: per flow channel of a built gait set, the mean flow
magnitude inside and outside the silhouettes, the error against the exact flow, int8 saturation, and a nearest-
neighbour rank-1 (CASIA-B protocol) of per-sequence templates (temporal mean of the silhouette and of each flow
channel's magnitude, pooled to 16 x 11), raw and masked to the silhouette.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gait_flow_probe.py runs/gait/full46/set --flow-key
hmore_flow_cpu-3346b99954cd --subjects 1-30`` (README "Downstream": identities 1-30 are the training side; the probe
never looks at test identities unless told to).
"""

from __future__ import annotations

import argparse

import numpy as np

CHANNELS = ("dis", "world", "local", "exact_world", "exact_local")
GROUPS = (("dis",), ("world", "local"), ("exact_world", "exact_local"))


def main() -> None:
    from hmore.flowfeed import dequantise_flow, flow_channel
    from hmore.gait.data import load_gait_set
    from hmore.metrics.gait import casia_rank1

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", help="a built gait set folder")
    p.add_argument("--flow-key", required=True, help="the H-MoRe flow cache folder (<model>-<sha12>)")
    p.add_argument("--subjects", default="1-30", help="first-last identities (default 1-30)")
    args = p.parse_args()
    first, last = (int(v) for v in args.subjects.split("-"))
    a = load_gait_set(args.root, channels=CHANNELS, flow_key=args.flow_key, subjects=range(first, last + 1))
    seqs = a.sequences

    print("channel      |f| in  |f| out  err in  err out  p99 in  saturated")
    for c in CHANNELS:
        ref = "exact_local" if c in ("local", "exact_local") else "exact_world"
        rows = []
        for k in range(len(seqs)):
            body = a.sil[k][:-1] > 127  # (T-1, 64, 44)
            f = dequantise_flow(a.flows[c][k])  # (T-1, 2, 64, 44)
            mag = np.linalg.norm(f, axis=1)
            err = np.linalg.norm(f - dequantise_flow(a.flows[ref][k]), axis=1)
            rows.append([mag[body].mean(), mag[~body].mean(), err[body].mean(), err[~body].mean(),
                         np.percentile(mag[body], 99), (np.abs(a.flows[c][k]) >= 127).mean()])
        m = np.mean(rows, axis=0)
        print(f"{c:12s} " + "  ".join(f"{v:6.3f}" for v in m))

    def template(k: int, chans: tuple[str, ...], mask: bool) -> np.ndarray:
        fr = np.arange(len(a.sil[k]) - 1)
        parts = [a.sil[k][fr, None].astype(np.float32) / 255.0]
        parts += [np.abs(flow_channel(a.flows[c][k], a.sil[k], fr, flow_scale=2.0, mask=mask)) for c in chans]
        x = np.concatenate(parts, axis=1).mean(axis=0)  # (C, 64, 44): temporal mean
        return x.reshape(len(x), 16, 4, 11, 4).mean(axis=(2, 4))  # (C, 16, 11)

    def rank1(chans: tuple[str, ...], mask: bool, flow_only: bool = False) -> str:
        t = np.stack([template(k, chans, mask) for k in range(len(seqs))])
        t = t[:, 1:] if flow_only else t
        r = casia_rank1(t.reshape(len(seqs), 1, -1), [s.subject for s in seqs], [s.type_name for s in seqs],
                        [s.view for s in seqs])
        return " ".join(f"{k} {100 * v:5.1f}" for k, v in r.mean.items())

    print(f"\nnearest-neighbour rank-1 %, {last - first + 1} identities (chance {100 / (last - first + 1):.1f})")
    print(f"silhouette template: {rank1((), False)}")
    for chans in GROUPS:
        for mask in (False, True):
            name = f"{'+'.join(chans)} {'masked' if mask else 'raw'}"
            print(f"{name:28s} sil+flow: {rank1(chans, mask)} | flow only: {rank1(chans, mask, flow_only=True)}")


if __name__ == "__main__":
    main()
