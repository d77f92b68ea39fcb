"""The ``gnnleaky`` command: ``sweep``, ``report``, ``energy``, ``datasets``."""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["main"]


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.replace(",", " ").split()]


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.replace(",", " ").split()]


def _words(text: str) -> list[str]:
    return text.replace(",", " ").split()


def _residuals(text: str) -> list[bool | str]:
    named = {"false": False, "true": True, "initial": "initial"}
    out: list[bool | str] = []
    for word in _words(text):
        if word.lower() not in named:
            raise argparse.ArgumentTypeError(f"expected false, true or initial, got {word!r}")
        out.append(named[word.lower()])
    return out


def _int_at_least(lo: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``lo`` (argparse names the option in its error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, got {value}")
        return value

    parse.__name__ = f"integer >= {lo}"
    return parse


_positive = _int_at_least(1)
_non_negative = _int_at_least(0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gnnleaky",
        description="Leaky ReLU / PReLU GNNs: oversmoothing sweeps, reports and energies.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "sweep",
        help="run a depth x slope x activation x dataset sweep",
        description="Run a sweep preset or YAML config; finished runs in the "
        "results store are skipped, so a killed sweep resumes.",
    )
    s.add_argument(
        "config",
        nargs="?",
        default="quick",
        help="YAML file or the name of a preset shipped with gnnleaky (default: quick)",
    )
    s.add_argument("--out", help="results store (default: results/<name>.sqlite)")
    s.add_argument("--datasets", type=_words, help="override datasets, e.g. cora,citeseer")
    s.add_argument("--convs", type=_words, help="override convs, e.g. gcn,sage")
    s.add_argument("--depths", type=_ints, help="override depths, e.g. 2,8,32")
    s.add_argument(
        "--alpha",
        "--alphas",
        dest="alphas",
        type=_floats,
        help="override Leaky ReLU slopes, e.g. 0.01,0.2",
    )
    s.add_argument(
        "--activations",
        type=_words,
        help="override kinds: relu,leaky_relu,prelu_layer,prelu_channel,scaled_relu,"
        "scaled_leaky_relu,elu,gelu,tanh,identity",
    )
    s.add_argument(
        "--positive-slopes",
        "--betas",
        dest="positive_slopes",
        type=_floats,
        help="override the positive slopes (beta > 0) of scaled_relu/scaled_leaky_relu, e.g. 1.5,2",
    )
    s.add_argument(
        "--train-per-class",
        dest="train_per_class",
        type=_ints,
        help="label rates: random splits with k training nodes per class, e.g. 5,10,20,50 "
        "(the splits list gives their seeds)",
    )
    s.add_argument(
        "--norms", type=_words, help="override norms: none,batch_norm,layer_norm,pairnorm,..."
    )
    s.add_argument(
        "--residual", type=_residuals, help="override residual connections: false,true,initial"
    )
    s.add_argument("--jk", type=_words, help="override jumping knowledge: none,last,cat,max")
    s.add_argument("--dropedge", type=_floats, help="override DropEdge rates, e.g. 0,0.3")
    s.add_argument("--seeds", type=_ints, help="override seeds, e.g. 0,1,2")
    s.add_argument("--epochs", type=_positive, help="override epochs")
    s.add_argument("--hidden-channels", type=_positive, dest="hidden_channels")
    s.add_argument("--lr", type=float)
    s.add_argument(
        "--backend",
        default="local",
        help="local (default), processes (one process per core) or ray",
    )
    s.add_argument(
        "--workers",
        type=_positive,
        help="processes with --backend processes (default: one per core)",
    )
    s.add_argument("--address", help="Ray cluster address (with --backend ray)")
    s.add_argument("--data-root", help="data root (default: $GNNLEAKY_DATA or ./datasets)")
    s.add_argument("--no-stack", action="store_true", help="train runs one by one")
    s.add_argument(
        "--max-group",
        type=_positive,
        help="at most this many models per stacked group (default: what fits in memory; "
        "with --backend processes, one chunk of each group per process)",
    )
    s.add_argument("--retry-failed", action="store_true", help="train failed runs again")
    s.add_argument("--dry-run", action="store_true", help="print the plan, train nothing")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")

    r = sub.add_parser("report", help="plots and Markdown tables from a results store")
    r.add_argument("results", help="results store (.sqlite)")
    r.add_argument("--out", help="output folder (default: <results>-report)")

    e = sub.add_parser(
        "energy", help="per-layer energies of an untrained or quickly trained model on a dataset"
    )
    e.add_argument("--dataset", default="csbm")
    e.add_argument("--conv", default="gcn")
    e.add_argument("--depth", type=_positive, default=16)
    e.add_argument(
        "--act",
        default="leaky_relu",
        help="an activation kind: relu, leaky_relu, prelu_layer, prelu_channel, scaled_relu, "
        "scaled_leaky_relu, elu, gelu, tanh, identity",
    )
    e.add_argument("--alpha", type=float, default=0.2, help="negative slope (or PReLU init)")
    e.add_argument(
        "--beta", type=float, default=2.0, help="positive slope of scaled_relu/scaled_leaky_relu"
    )
    e.add_argument("--hidden-channels", type=_positive, default=64, dest="hidden_channels")
    e.add_argument("--metrics", type=_words, default=["dirichlet", "rayleigh", "hf_ratio"])
    e.add_argument(
        "--epochs", type=_non_negative, default=0, help="train first (default: 0 = at init)"
    )
    e.add_argument("--seed", type=_non_negative, default=0)
    e.add_argument("--data-root")
    e.add_argument("--csv", help="also write the table to this CSV file")

    d = sub.add_parser("datasets", help="list supported datasets and whether they are present")
    d.add_argument("--data-root")
    return p


def _cmd_sweep(args: argparse.Namespace) -> int:
    from gnnleaky.bench.config import load_config
    from gnnleaky.bench.sweep import plan, run_sweep

    cfg = load_config(args.config)
    datasets = args.datasets
    if datasets is not None:  # a name the config has keeps its params and settings
        entries = {}
        for entry in cfg.to_dict()["datasets"]:
            if isinstance(entry, dict):
                entries.setdefault(
                    str(entry["label"] if entry.get("label") else entry["name"]).lower(), entry
                )
                entries.setdefault(str(entry["name"]).lower(), entry)
        datasets = [entries.get(name.lower(), name) for name in datasets]
    cfg = cfg.replace(
        datasets=datasets,
        convs=args.convs,
        depths=args.depths,
        alphas=args.alphas,
        activations=args.activations,
        seeds=args.seeds,
        norms=args.norms,
        residual=args.residual,
        jk=args.jk,
        dropedge=args.dropedge,
        epochs=args.epochs,
        hidden_channels=args.hidden_channels,
        lr=args.lr,
        positive_slopes=args.positive_slopes,
        train_per_class=args.train_per_class,
    )
    out = Path(args.out or f"results/{cfg.name}.sqlite")
    if args.dry_run:
        from gnnleaky.bench.train import stack_reason

        done: set[str] = set()
        if out.is_file() and out.stat().st_size > 0:  # what a run of this command would skip
            from gnnleaky.bench.store import ResultsStore

            with ResultsStore(out, readonly=True) as store:
                done = store.finished_keys(include_failed=not args.retry_failed)
        total = len(cfg.expand())
        groups = plan(cfg, done, max_group=args.max_group)
        todo = sum(map(len, groups))
        print(
            f"{cfg.name}: {total} runs; {total - todo} stored already, {todo} to train "
            f"in {len(groups)} groups -> {out}"
        )
        for g in groups:
            r = g[0]
            remedies = " ".join(
                f"{name}={value}"
                for name, value, off in (
                    ("norm", r.norm, "none"),
                    ("residual", r.residual, False),
                    ("jk", r.jk, "none"),
                    ("dropedge", r.dropedge, 0.0),
                    ("model", r.model, None),
                )
                if value != off or type(value) is not type(off)
            )
            reason = None if args.no_stack else stack_reason(r)
            how = (
                "stacked"
                if reason is None and not args.no_stack
                else f"one by one ({reason or '--no-stack'})"
            )
            print(
                f"  {r.dataset_label:>16} {r.conv:>5} depth {r.num_layers:>3}"
                f"{' ' + remedies if remedies else ''}: {len(g)} runs, {how}"
            )
        return 0
    summary = run_sweep(
        cfg,
        out,
        backend=args.backend,
        root=args.data_root,
        stacked=not args.no_stack,
        max_group=args.max_group,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
        address=args.address,
        workers=args.workers,
    )
    print(
        f"{cfg.name}: {summary.total} runs; {summary.skipped} already stored, "
        f"{summary.trained} trained ({summary.failed} failed) in {summary.seconds:.1f} s "
        f"-> {out}"
    )
    for key, reason in summary.failures[:10]:
        print(f"  failed {key}: {reason}")
    print(summary.time_report())
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from gnnleaky.bench.report import make_report

    src = Path(args.results)
    out = Path(args.out or src.with_name(src.stem + "-report"))
    paths = make_report(src, out)
    print(f"wrote {len(paths)} files to {out}:")
    for path in paths:
        print(f"  {path}")
    return 0


def _cmd_energy(args: argparse.Namespace) -> int:
    import pandas as pd

    from gnnleaky import datasets
    from gnnleaky.bench.config import RunConfig
    from gnnleaky.bench.train import build_model, train_run
    from gnnleaky.nn import ACTIVATION_KINDS, activation_kind
    from gnnleaky.spectral import layer_records

    try:
        kind = ACTIVATION_KINDS[activation_kind(args.act)]
    except ValueError as err:
        raise ValueError(f"--act: {err}") from None
    if args.csv:  # before any work: the table is printed before the CSV is written
        _check_output_file("--csv", Path(args.csv))
    data = datasets.load(args.dataset, root=args.data_root)
    sloped = {"negative_slope", "init"} & set(kind.slopes)
    cfg = RunConfig(
        dataset=args.dataset,
        conv=args.conv,
        num_layers=args.depth,
        hidden_channels=args.hidden_channels,
        act=kind.act,
        negative_slope=args.alpha if sloped else 0.0,
        prelu_mode=dict(kind.kwargs).get("mode"),
        positive_slope=args.beta if "positive_slope" in kind.slopes else None,
        epochs=max(args.epochs, 1),
        seed=args.seed,
        metrics=tuple(args.metrics),
    )
    if args.epochs > 0:
        res = train_run(data, cfg)
        df = pd.DataFrame(res.layers)
        df = df[df["when"] == "best"].drop(columns="when")
        print(f"trained {res.epochs_run} epochs: test {res.metric} {res.test_score:.4f}")
    else:  # the sweep's per-layer records at initialisation (same model, same extractor)
        from gnnleaky.tasks import NodeClassification

        task = NodeClassification(data, split=cfg.split)
        model = build_model(cfg, task.x.size(1), task.num_classes)
        [recs] = layer_records(model, task.x, task.edge_index, cfg.metrics, symmetrize=True)
        df = pd.DataFrame(recs)
    table = df.pivot_table(index=["layer", "stage"], columns="metric", values="value")
    with pd.option_context("display.max_rows", 500, "display.width", 120):
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    if args.csv:
        df.to_csv(args.csv, index=False)
    return 0


def _check_output_file(option: str, path: Path) -> None:
    """Refuse an output file that cannot be written, naming the option and the reason."""
    folder = path.absolute().parent
    if path.is_dir():
        raise ValueError(f"{option} {str(path)!r} is a folder; give a file name")
    if not folder.is_dir():
        raise ValueError(f"{option} {str(path)!r}: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"{option} {str(path)!r}: no permission to write there")


def _cmd_datasets(args: argparse.Namespace) -> int:
    import pandas as pd

    from gnnleaky import datasets

    table = pd.DataFrame(datasets.list_datasets(root=args.data_root))
    with pd.option_context("display.max_rows", 200, "display.width", 160):
        print(table.to_string(index=False))
    return 0


def _is_corrupt_data(err: BaseException) -> bool:
    # gnnleaky.datasets (and torch with it) is imported only by the commands that load data
    module = sys.modules.get("gnnleaky.datasets")
    return module is not None and isinstance(err, module.DatasetCorruptError)


_COMMANDS = {
    "sweep": _cmd_sweep,
    "report": _cmd_report,
    "energy": _cmd_energy,
    "datasets": _cmd_datasets,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gnnleaky`` console script; returns the exit status.

    0: done; 2: the command cannot run as given (bad option or config, missing or corrupt
    data, a path that is not a usable results store or output), before anything is
    written; 1: an error while running (a full disk, an I/O or database error): whatever
    was stored before it is kept; 130: interrupted.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the error
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    resume = "; runs stored before it are kept: run the same command to resume"
    after = resume if args.command == "sweep" else ""
    try:
        return _COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as err:
        print(f"gnnleaky {args.command}: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        if not _is_corrupt_data(err):
            raise
        print(f"gnnleaky {args.command}: error: {err}", file=sys.stderr)
        return 2
    except sqlite3.Error as err:
        print(f"gnnleaky {args.command}: error: results store: {err}{after}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"gnnleaky {args.command}: error: {err}{after}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"gnnleaky {args.command}: interrupted{after}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
