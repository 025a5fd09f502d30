"""How hard does each term of a flow training recipe pull? Gradient norm of every weighted loss term on the same
training batches, for a model (default: the recipe's ``init_from``, e.g. the shipped ``hmore_flow_cpu``).

Each term is the recipe's weight times its loss (``flow_loss`` with every other weight set to 0), back-propagated on
its own; the table gives its value and the L2 norm of its gradient over all parameters, averaged over batches, and
the norm as a share of the sum of the norms. Used for the flow constraint ablation (issue 15 item 4): with the
paper's normalisation (1 / (h w) over the whole image) the skeleton constraint F is small next to the supervised
anchor and 0.05 G.

``--evaluate`` also prints the recipe's held-out evaluation (``data.eval_clips`` generated pairs) of the model, the
figures the trainer logs as ``eval/*`` (e.g. for the starting weights, which the trainer never evaluates).

Usage: python benchmarks/flow_loss_terms.py configs/flow_ablation_fg.yaml [--batches 4] [--weights FILE]
       [--set KEY=VALUE ...] [--evaluate]
"""

from __future__ import annotations

import argparse
import math

import torch

TERMS = {  # name -> the FlowLossConfig weight that switches it on
    "supervised (sequence)": "supervised_weight",
    "photometric (census)": "photometric_weight",
    "skeleton F": "skeleton_weight",
    "boundary G": "boundary_weight",
    "subject (Psi)": "subject_weight",
    "background L1": "background_l1",
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--weights", help="model weights (default: the recipe's init_from)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--evaluate", action="store_true", help="also the recipe's held-out evaluation of the model")
    args = p.parse_args()
    from hmore.config import replace
    from hmore.flow.objective import flow_loss
    from hmore.train.tasks import build_task, load_task_config

    torch.set_num_threads(1)
    overrides = list(args.overrides) + ([f"init_from={args.weights}"] if args.weights else [])
    cfg = load_task_config("flow", args.config, overrides)
    task = build_task("flow", cfg)
    model = task.build_model().train()
    params = [q for q in model.parameters() if q.requires_grad]
    weights = {name: getattr(cfg.loss, field) for name, field in TERMS.items()}
    sums = {name: [0.0, 0.0] for name, w in weights.items() if w > 0}
    for step in range(args.batches):
        batch = task.batch(step, rank=0, world_size=1, batch_size=cfg.train.batch_size)
        for name in sums:
            only = replace(cfg.loss, **{f: (getattr(cfg.loss, f) if n == name else 0.0) for n, f in TERMS.items()})
            model.zero_grad(set_to_none=True)
            out = model(batch.image1, batch.image2, masks=batch.masks, num_subjects=batch.num_subjects,
                        iters=cfg.model.train_iters)
            total, _ = flow_loss(out, batch, only, leak_dilation=cfg.data.leak_dilation)
            total.backward()
            norm = math.sqrt(sum(float(q.grad.pow(2).sum()) for q in params if q.grad is not None))
            sums[name][0] += float(total.detach()) / args.batches
            sums[name][1] += norm / args.batches
    all_norms = sum(v[1] for v in sums.values())
    print(f"{args.config}, {args.batches} batches of {cfg.train.batch_size} (training stream, steps 0..)")
    print(f"{'term':<24}{'weight':>8}{'weighted loss':>15}{'grad norm':>12}{'share':>8}")
    for name, (value, norm) in sums.items():
        print(f"{name:<24}{weights[name]:>8.3g}{value:>15.4f}{norm:>12.4f}{norm / all_norms:>8.1%}")
    if args.evaluate:
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            scores = task.evaluate(model.eval())
        print("held-out evaluation: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))


if __name__ == "__main__":
    main()
