"""The "Original" (no DropEdge) GCN column of DropEdge's semi-supervised table, public split.

Recipe (DropEdge/DropEdge ``script/semi-supervised/{cora,citeseer}_GCN_nodrop.sh`` run by
``src/train_new.py``, model ``src/models.py`` ``GCNModel`` with ``src/layers.py``
``GraphConvolutionBS``; data ``src/utils.py``, ``src/sample.py``, ``src/normalization.py``):

* ``--type mutigcn --nhiddenlayer 1 --nbaseblocklayer d-2``: an input graph convolution
  (features -> 128, ReLU), ``d - 2`` hidden graph convolutions (128 -> 128, ReLU) and an output
  graph convolution (128 -> classes, no activation): ``d`` convolutions in all. The scripts
  publish ``--nbaseblocklayer 0`` (2 layers) only; deeper models change only that flag.
* Each convolution is ``A_hat @ (H W) + b``; ``--withloop`` and ``--withbn`` are not passed, so
  no separate self-weight and no batch norm. Dropout after every activation, none on the
  input features. Weight and bias initialised U(-1/sqrt(F_out), 1/sqrt(F_out)).
* ``--normalization AugNormAdj``: (D + I)^-1/2 (A + I) (D + I)^-1/2; features row-normalised.
  ``--sampling_percent 1``: no edge dropping (the "Original" column).
* Adam (one group), 400 epochs, no learning-rate schedule (``--lradjust`` off).
  Cora: lr 0.007, weight decay 1e-5, dropout 0.8, hidden 128.
  CiteSeer: lr 0.01, weight decay 5e-4, dropout 0.3, hidden 128.
* Model selection (``--early_stopping 400``, ``src/earlystopping.py``): after each step the
  weights are saved when the validation loss is lower than or equal to the best so far; that
  validation loss is computed from the *training* forward pass of the epoch (dropout on,
  weights before the step). The saved weights are tested in eval mode after 400 epochs
  (patience 400 never triggers within 400 epochs).

The model is ``gnnleaky.nn.GCN`` (PyG's ``GCNConv`` with ``normalize=False`` on the precomputed
operator), which computes exactly this network. Besides the recipe's rule, the test accuracy is
also recorded at the epoch of lowest eval-mode validation loss and of highest eval-mode
validation accuracy (gnnleaky's own protocol), all from the same run.

Usage::

    python benchmarks/repro/dropedge_table.py --datasets cora,citeseer --depths 2,4,8,16,32,64 \\
        --seeds 0-4 --json benchmarks/repro/measured/dropedge.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch_geometric.utils import to_torch_csr_tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import accuracy, environment, mean_std, planetoid, seeds_arg, uniform_fan_out_

from gnnleaky.nn import GCN

#: Per-dataset recipe of ``script/semi-supervised/<dataset>_GCN_nodrop.sh``.
RECIPES = {
    "cora": {"hidden": 128, "lr": 0.007, "weight_decay": 1e-5, "dropout": 0.8, "epochs": 400},
    "citeseer": {"hidden": 128, "lr": 0.01, "weight_decay": 5e-4, "dropout": 0.3, "epochs": 400},
}
#: The README's semi-supervised table, GCN "Original" column.
PUBLISHED = {
    "cora": {2: 81.1, 4: 80.4, 8: 69.5, 16: 64.9, 32: 60.3, 64: 28.7},
    "citeseer": {2: 70.8, 4: 67.6, 8: 30.2, 16: 18.3, 32: 25.0, 64: 20.0},
}
RULES = ("recipe", "val_loss", "val_acc")


def build(graph: dict, depth: int, recipe: dict, init: str) -> GCN:
    model = GCN(
        graph["x"].size(1),
        recipe["hidden"],
        depth,
        graph["num_classes"],
        dropout=recipe["dropout"],
        act="relu",
        normalize=False,  # the operator is precomputed (AugNormAdj)
    )
    if init == "recipe":
        for conv in model.convs:
            uniform_fan_out_(conv.lin.weight, conv.bias)
    return model


def _better(rule: str, e: dict, best: dict) -> bool:
    if rule == "recipe":  # src/earlystopping.py: saved unless the loss is higher (ties: later)
        return e["val_loss_train_mode"] <= best["val_loss_train_mode"]
    if rule == "val_loss":  # strictly lower (ties: the earlier epoch)
        return e["val_loss"] < best["val_loss"]
    return e["val_acc"] > best["val_acc"]  # strictly higher (ties: the earlier epoch)


def run(graph: dict, adj: torch.Tensor, depth: int, seed: int, args: argparse.Namespace) -> dict:
    recipe = {**RECIPES[graph["name"]], **args.set}
    torch.manual_seed(seed)  # init and dropout masks
    model = build(graph, depth, recipe, args.init)
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    x, y, idx = graph["x_csr"], graph["y"], graph["idx"]
    best: dict[str, dict | None] = {r: None for r in RULES}
    t0 = time.perf_counter()
    for epoch in range(recipe["epochs"]):
        model.train()
        opt.zero_grad()
        out = model(x, adj)
        loss = F.cross_entropy(out[idx["train"]], y[idx["train"]])
        val_loss_train_mode = F.cross_entropy(out[idx["val"]], y[idx["val"]]).item()
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            out = model(x, adj)
        e = {
            "epoch": epoch,
            "train_loss": loss.item(),
            "val_loss_train_mode": val_loss_train_mode,
            "val_loss": F.cross_entropy(out[idx["val"]], y[idx["val"]]).item(),
            "train_acc": accuracy(out, y, idx["train"]),
            "val_acc": accuracy(out, y, idx["val"]),
            "test_acc": accuracy(out, y, idx["test"]),
            # a collapsed network predicts one class or a few: how many on the test nodes
            "test_classes_predicted": int(out[idx["test"]].argmax(-1).unique().numel()),
        }
        for rule in RULES:
            if best[rule] is None or _better(rule, e, best[rule]):
                best[rule] = e
    seconds = time.perf_counter() - t0
    return {
        "dataset": graph["name"],
        "depth": depth,
        "seed": seed,
        "init": args.init,
        "overrides": args.set,
        "selected": best,
        "last": e,
        "seconds": seconds,
        "seconds_per_epoch": seconds / recipe["epochs"],
    }


def table(runs: list[dict], rule: str) -> list[str]:
    lines = [f"selection: {rule}", "dataset   depth  seeds  ours (mean ± std)  published  gap"]
    for name in PUBLISHED:
        for depth, pub in PUBLISHED[name].items():
            cell = [r for r in runs if (r["dataset"], r["depth"]) == (name, depth)]
            acc = [r["selected"][rule]["test_acc"] for r in cell]
            if acc:
                m, s = mean_std(acc)
                lines.append(
                    f"{name:9s} {depth:5d}  {len(acc):5d}  {m:6.1f} ± {s:4.1f}       "
                    f"{pub:6.1f}  {m - pub:+5.1f}"
                )
    return lines


def _override(text: str) -> tuple[str, float | int]:
    key, _, value = text.partition("=")
    if key not in RECIPES["cora"]:
        raise argparse.ArgumentTypeError(f"--set: key must be one of {list(RECIPES['cora'])}")
    return key, int(value) if key in ("hidden", "epochs") else float(value)


def _key(*parts: object) -> str:
    return json.dumps(parts[:-1]) + json.dumps(parts[-1] or {}, sort_keys=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", default="cora,citeseer")
    p.add_argument("--depths", default="2,4,8,16,32,64")
    p.add_argument("--seeds", type=seeds_arg, default=seeds_arg("0-4"))
    p.add_argument("--init", choices=["recipe", "pyg"], default="recipe")
    p.add_argument("--pyg-graph", action="store_true", help="PyG's graph (raw self-loops dropped)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--set",
        type=_override,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"change one setting of the recipe ({', '.join(RECIPES['cora'])}); not the table",
    )
    p.add_argument("--json", type=Path, help="results file; runs already in it are skipped")
    args = p.parse_args()
    args.set = dict(args.set)
    torch.set_num_threads(args.threads)

    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    runs: list[dict] = []
    if args.json and args.json.exists():
        runs = json.loads(args.json.read_text())["runs"]
    done = {_key(r["dataset"], r["depth"], r["seed"], r["init"], r.get("overrides")) for r in runs}
    for name in args.datasets.split(","):
        graph = planetoid(name, original_loops=not args.pyg_graph)
        graph["name"] = name
        n = graph["x"].size(0)
        # A torch CSR matrix as PyG's adj_t (the operator is symmetric): a sparse matmul per
        # layer instead of gathering an [E, hidden] message tensor; same function.
        adj = to_torch_csr_tensor(graph["edge_index"], graph["edge_weight"], (n, n))
        # The recipe has no dropout on the input features, so they stay sparse (a sparse
        # product in the input layer; same function).
        graph["x_csr"] = graph["x"].to_sparse_csr()
        for depth in (int(d) for d in args.depths.split(",")):
            for seed in args.seeds:
                if _key(name, depth, seed, args.init, args.set) in done:
                    continue
                r = run(graph, adj, depth, seed, args)
                runs.append(r)
                sel = r["selected"]
                tests = ", ".join(
                    f"{q} {100 * sel[q]['test_acc']:.1f}@{sel[q]['epoch']}" for q in RULES
                )
                print(
                    f"{name} {depth:2d} layers seed {seed}: test {tests}"
                    f"; train acc {100 * sel['recipe']['train_acc']:.0f}; {r['seconds']:.0f} s "
                    f"({1000 * r['seconds_per_epoch']:.0f} ms/epoch)",
                    flush=True,
                )
                if args.json:
                    args.json.parent.mkdir(parents=True, exist_ok=True)
                    record = {"config": config, "env": environment(), "runs": runs}
                    args.json.write_text(json.dumps(record, indent=1))
    for rule in RULES:
        same = [r for r in runs if r["init"] == args.init and r.get("overrides", {}) == args.set]
        print("\n".join(table(same, rule)))


if __name__ == "__main__":
    main()
