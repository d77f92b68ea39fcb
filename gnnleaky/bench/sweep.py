"""Run a sweep: expand the grid, skip stored runs, train compatible runs stacked, store.

Backends are resolved by name through :data:`BACKENDS`: ``"local"`` trains group after
group in this process; ``"processes"`` trains groups in a pool of local processes (one
per core); ``"ray"`` sends each stacked group to a Ray task. The last two store the results
in the driver as they arrive. Either way a run reaches the store exactly once
(the store ignores a key it already holds). A group whose training raises is trained again
run by run; a run that still raises is stored as failed with the error as its reason, and
the sweep goes on.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gnnleaky.bench.config import RunConfig, SweepConfig, check_splits, load_params
from gnnleaky.bench.store import ResultsStore, check_writable
from gnnleaky.bench.tasks import DEFAULT_TASK, check_fixed

__all__ = [
    "BACKENDS",
    "SweepSummary",
    "check_data",
    "check_model",
    "load_data",
    "plan",
    "run_sweep",
    "split_groups",
]

log = logging.getLogger(__name__)


@dataclass
class SweepSummary:
    """What a sweep did: runs in the grid, skipped (already stored), trained, failed, and
    where the time went (:attr:`timings`, see :meth:`time_report`)."""

    total: int = 0
    skipped: int = 0
    trained: int = 0
    failed: int = 0
    stored: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: Seconds per phase: ``setup`` (grid, data check, store opened) and ``store`` in
    #: this process; ``data``, ``compile`` (numba kernels), ``train`` and ``metrics``
    #: summed over the processes that trained.
    timings: dict[str, float] = field(default_factory=dict)
    #: Processes that trained side by side (1 for the local backend).
    workers: int = 1

    def time_report(self) -> str:
        """One line: where the sweep's wall time went.

        Example:
            >>> s = SweepSummary(seconds=10.0, workers=2, timings={"setup": 1.0,
            ...     "data": 0.5, "compile": 3.0, "train": 9.0, "metrics": 1.5, "store": 0.5})
            >>> print(s.time_report())
            time: setup 1.0 s | in 2 worker processes (summed): data 0.5 s, compile 3.0 s, \
train 9.0 s, metrics 1.5 s | store 0.5 s | start-up, imports and idle 1.5 s | wall 10.0 s
        """
        t = {k: self.timings.get(k, 0.0) for k in _PHASES}
        worker = sum(t[k] for k in ("data", "compile", "train", "metrics"))
        rest = self.seconds - t["setup"] - t["store"] - worker / max(self.workers, 1)
        where = "this process" if self.workers == 1 else f"{self.workers} worker processes"
        return (
            f"time: setup {t['setup']:.1f} s | in {where} (summed): data {t['data']:.1f} s, "
            f"compile {t['compile']:.1f} s, train {t['train']:.1f} s, metrics "
            f"{t['metrics']:.1f} s | store {t['store']:.1f} s | start-up, imports and idle "
            f"{max(rest, 0.0):.1f} s | wall {self.seconds:.1f} s"
        )


_PHASES = ("setup", "data", "compile", "train", "metrics", "store")


def _runs(config: SweepConfig | Sequence[RunConfig]) -> Sequence[RunConfig]:
    """The runs of a sweep, or the given runs when the grid is already expanded."""
    return config.expand() if isinstance(config, SweepConfig) else config


def plan(
    config: SweepConfig | Sequence[RunConfig],
    done: set[str] | None = None,
    max_group: int | None = None,
) -> list[list[RunConfig]]:
    """Groups of runs still to do; runs in a group share graph and shape (``group_key``).
    Runs of a task other than node classification, which train one by one, are groups of
    one, so that each is stored as soon as it is done.

    ``config`` is a :class:`SweepConfig` or its already expanded runs.

    Example:
        >>> cfg = SweepConfig(depths=[2, 4], activations=["relu", "leaky_relu"],
        ...                   alphas=[0.1, 0.2], seeds=[0, 1])
        >>> [len(g) for g in plan(cfg)]
        [6, 6]
    """
    _check_max_group(max_group)
    done = done or set()
    groups: OrderedDict[tuple, list[RunConfig]] = OrderedDict()
    for run in _runs(config):
        if run.key not in done:
            groups.setdefault(run.group_key, []).append(run)
    out: list[list[RunConfig]] = []
    for runs in groups.values():
        # runs of other tasks train one by one: one group each, stored as each finishes
        step = 1 if runs[0].task != DEFAULT_TASK else (max_group or len(runs))
        out.extend(runs[i : i + step] for i in range(0, len(runs), step))
    return out


def _check_max_group(max_group: int | None) -> None:
    if max_group is not None and (
        isinstance(max_group, bool) or not isinstance(max_group, int) or max_group < 1
    ):
        raise ValueError(f"max_group must be a positive int (or None: no limit), got {max_group!r}")


def _data_loader(root: str | None) -> Callable[[RunConfig], tuple[Any, Any]]:
    """A per-process cache of graphs, each with its :class:`~gnnleaky.spectral.GraphCache`
    (normalized operators, eigenbasis) built once and shared by all groups on that graph."""
    from gnnleaky.spectral import GraphCache

    cache: dict[tuple, tuple[Any, Any]] = {}

    def get(run: RunConfig) -> tuple[Any, Any]:
        key = (run.dataset, run.dataset_params)
        if key not in cache:
            cache.clear()  # groups arrive dataset by dataset: keep one graph in memory
            data = load_data(run, root)
            cache[key] = (data, GraphCache(data.edge_index, data.num_nodes, symmetrize=True))
        return cache[key]

    return get


def load_data(run: RunConfig, root: str | None = None) -> Any:
    """The graph a run trains on: :func:`gnnleaky.datasets.load` with the run's dataset
    params, then the feature transforms of :data:`~gnnleaky.bench.config.FEATURE_PARAMS`
    (``normalize_features``: every row divided by its sum, all-zero rows stay zero).

    Example:
        >>> run = RunConfig(dataset="csbm", dataset_params={"num_nodes": 30,
        ...                 "normalize_features": True})
        >>> x = load_data(run).x
        >>> bool(((x.sum(1) - 1).abs() < 1e-5).all())
        True
    """
    from gnnleaky import datasets

    kwargs, feats = load_params(dict(run.dataset_params))
    data = datasets.load(run.dataset, root=root, **kwargs)
    if feats["normalize_features"]:
        x = data.x.float()
        if bool((x < 0).any()):
            # a row sum of signed features is no normaliser: shift first, as PyG's
            # NormalizeFeatures does (the recipes that use it have non-negative features)
            x = x - x.min()
        rows = x.sum(dim=1, keepdim=True)
        data.x = x / torch.where(rows > 0, rows, torch.ones_like(rows))
    return data


def check_data(config: SweepConfig | Sequence[RunConfig], root: str | None = None) -> None:
    """Before any run starts: raise :class:`~gnnleaky.datasets.DatasetNotFoundError` if a
    dataset of the sweep has no raw files under the data root, and
    :class:`~gnnleaky.bench.config.ConfigError` if a run's split index is not one of its
    dataset's splits (:func:`~gnnleaky.bench.config.check_splits`)."""
    from gnnleaky import datasets

    runs = _runs(config)
    splits: dict[tuple, set[int]] = {}
    for run in runs:
        if run.train_per_class is not None:  # a random split: any index is a seed
            continue
        splits.setdefault((run.dataset, run.dataset_params, run.dataset_label), set()).add(
            run.split
        )
    for (name, params, label), indices in splits.items():
        check_splits(name, dict(params), label, sorted(indices))
    needed = {(r.dataset, dict(r.dataset_params).get("split", "public")) for r in runs}
    for name, split in sorted(needed):
        files = datasets.raw_files(name, root, split)
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise datasets.DatasetNotFoundError(name, datasets.data_root(root), files, missing)


def check_model(
    config: SweepConfig | Sequence[RunConfig],
    root: str | None = None,
    model_fn: Callable[..., Any] | None = None,
) -> None:
    """Before any run starts: build the model of the first run on each graph with the
    runs' model factory (``model_fn``, else the config's ``model``; nothing to do for the
    built-in convs) and raise :class:`~gnnleaky.bench.config.ConfigError` if the factory
    cannot be imported, raises, or returns something that is not a ``torch.nn.Module``."""
    from gnnleaky.bench.config import ConfigError
    from gnnleaky.bench.train import build_model

    firsts: dict[tuple, RunConfig] = {}
    for run in _runs(config):
        if model_fn is not None or run.model is not None:
            firsts.setdefault((run.dataset, run.dataset_params), run)
    for run in firsts.values():
        data = load_data(run, root)
        out = int(getattr(data, "num_classes", 0) or int(data.y.max()) + 1)
        try:
            build_model(run, data.num_features, out, model_fn=model_fn)
        except ConfigError:
            raise
        except Exception as err:
            raise ConfigError(
                f"model {run.model!r} raised {type(err).__name__} when built for "
                f"{run.dataset_label!r}: {err}"
            ) from err


def _failed(run: RunConfig, err: BaseException) -> Any:
    """A ``failed`` result for a run whose training raised (the reason is the error)."""
    from gnnleaky import datasets
    from gnnleaky.bench.tasks import runner
    from gnnleaky.bench.train import RunResult

    try:
        metric = datasets.info(run.dataset).metric
    except ValueError:
        metric = "accuracy"
    if run.task != DEFAULT_TASK:
        metric = runner(run.task).metric
    nan = float("nan")
    return RunResult(
        config=run,
        key=run.key,
        status="failed",
        reason=f"{type(err).__name__}: {err}",
        metric=metric,
        best_epoch=0,
        epochs_run=0,
        train_score=nan,
        val_score=nan,
        test_score=nan,
        wall_time=0.0,
        group_size=1,
    )


def _train(
    group: Sequence[RunConfig], graph: tuple[Any, Any], stacked: bool, model_fn: Any = None
) -> list[Any]:
    """Train a group; if it raises, train its runs one by one so that one bad run (an
    error, or a stack too large for memory) fails alone and the sweep goes on."""
    from gnnleaky.bench.train import train_group

    data, cache = graph
    try:
        return train_group(data, list(group), stacked=stacked, cache=cache, model_fn=model_fn)
    except Exception as err:
        if len(group) == 1 and not stacked:
            log.warning("run %s raised %s: stored as failed", group[0].key, err, exc_info=True)
            return [_failed(group[0], err)]
        log.warning(
            "a group of %d runs raised %s; training them one by one", len(group), err, exc_info=True
        )
    results = []
    for run in group:
        try:
            results.extend(train_group(data, [run], stacked=False, cache=cache, model_fn=model_fn))
        except Exception as err:
            log.warning("run %s raised %s: stored as failed", run.key, err, exc_info=True)
            results.append(_failed(run, err))
    return results


def _run_group(
    group: Sequence[RunConfig],
    get: Callable[[RunConfig], tuple[Any, Any]],
    stacked: bool,
    model_fn: Any = None,
) -> list[Any]:
    """Load (or reuse) the group's graph, train the group, and add the loading time to
    the first result's ``timings``."""
    start = time.perf_counter()
    graph = get(group[0])
    loaded = time.perf_counter() - start
    results = _train(group, graph, stacked, model_fn)
    if results:
        results[0].timings = {**results[0].timings, "data": loaded}
    return results


def _local(
    groups: list[list[RunConfig]],
    *,
    root: str | None,
    stacked: bool,
    model_fn: Any = None,
    **_: Any,
) -> Iterator[list[Any]]:
    get = _data_loader(root)
    for group in groups:
        yield _run_group(group, get, stacked, model_fn)


def _ray_task(group: list[dict[str, Any]], root: str | None, stacked: bool) -> list[Any]:
    runs = [RunConfig(**d) for d in group]
    return _run_group(runs, _data_loader(root), stacked)


def ray_runtime_env() -> dict[str, Any]:
    """The job runtime environment the Ray backend starts Ray with.

    gnnleaky's own code is shipped to every worker (``py_modules``), so workers need
    torch, PyG and the other dependencies but not gnnleaky itself, and run the driver's
    version of it; the ``GNNLEAKY_*`` environment variables (e.g. the data root) are
    passed on. Pass it to ``ray.init(runtime_env=...)`` when starting Ray yourself.
    """
    import gnnleaky

    return {
        "py_modules": [str(Path(gnnleaky.__file__).resolve().parent)],
        "env_vars": {k: v for k, v in os.environ.items() if k.startswith("GNNLEAKY_")},
    }


def _ray(
    groups: list[list[RunConfig]],
    *,
    root: str | None,
    stacked: bool,
    address: str | None = None,
    num_cpus: int | None = None,
    **_: Any,
) -> Iterator[list[Any]]:
    try:
        import ray
    except ImportError:
        raise ValueError("backend='ray' needs Ray: pip install 'gnnleaky[ray]'") from None
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"address": address} if address else {"num_cpus": num_cpus}
        ray.init(include_dashboard=False, log_to_driver=False, **kw, runtime_env=ray_runtime_env())
        started = True
    try:
        task = ray.remote(num_cpus=1)(_ray_task)
        pending = [task.remote([r.to_dict() for r in g], root, stacked) for g in groups]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            yield ray.get(ready[0])
    finally:
        if started:
            ray.shutdown()


_WORKER_GRAPHS: dict[Any, Callable[[RunConfig], tuple[Any, Any]]] = {}


def _die_with(parent: int) -> None:
    """End this worker process when the driver ``parent`` dies, even by SIGKILL (which
    lets it run no cleanup): on Linux the kernel sends SIGKILL to the worker when its
    parent ends (``prctl(PR_SET_PDEATHSIG)``); elsewhere, and as a fallback, a daemon
    thread checks every second whether the worker has been re-parented.

    The kernel's signal follows the thread that started the worker; the pool starts its
    workers from the thread that submits the groups, which holds the pool until the end.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl in this libc
            log.debug("prctl(PR_SET_PDEATHSIG) unavailable; watching the parent instead")
    if os.getppid() != parent:  # the driver died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="gnnleaky-parent-watch", daemon=True).start()


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _process_init(threads: int, parent: int) -> None:
    import torch

    _die_with(parent)
    torch.set_num_threads(threads)


def _process_task(group: list[RunConfig], root: str | None, stacked: bool) -> list[Any]:
    # one graph cache per worker process, kept between its groups
    if root not in _WORKER_GRAPHS:
        _WORKER_GRAPHS[root] = _data_loader(root)
    return _run_group(group, _WORKER_GRAPHS[root], stacked)


def split_groups(groups: list[list[RunConfig]], parts: int) -> list[list[RunConfig]]:
    """Each group cut into ``min(parts, len(group))`` chunks whose sizes differ by at most
    one, in order.

    Example:
        >>> cfg = SweepConfig(depths=[2, 4], activations=["relu", "leaky_relu"],
        ...                   alphas=[0.1, 0.2], seeds=[0, 1])
        >>> [len(g) for g in split_groups(plan(cfg), 4)]
        [2, 2, 1, 1, 2, 2, 1, 1]
    """
    if isinstance(parts, bool) or not isinstance(parts, int) or parts < 1:
        raise ValueError(f"parts must be a positive int, got {parts!r}")
    out: list[list[RunConfig]] = []
    for group in groups:
        n = min(parts, len(group))
        start = 0
        for i in range(n):
            size = len(group) // n + (i < len(group) % n)
            out.append(group[start : start + size])
            start += size
    return out


def _processes(
    groups: list[list[RunConfig]],
    *,
    root: str | None,
    stacked: bool,
    workers: int | None = None,
    max_group: int | None = None,
    **_: Any,
) -> Iterator[list[Any]]:
    """Groups over ``workers`` processes (default: ``torch.get_num_threads()``), each with
    ``threads / workers`` intra-op threads; results come back to this process, which
    alone writes the store. On two cores two one-thread processes train a stacked group
    18% faster than one process with two threads (no GIL and no waiting main thread between
    the models' kernels; see docs/performance.md). Without ``max_group`` each group is cut
    into ``workers`` chunks (:func:`split_groups`), so that no worker waits while another
    trains a big group alone."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    import torch

    threads = torch.get_num_threads()
    if workers is None:
        workers = threads
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if max_group is None:
        groups = split_groups(groups, workers)
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
    with ProcessPoolExecutor(
        workers,
        mp_context=ctx,
        initializer=_process_init,
        initargs=(max(1, threads // workers), os.getpid()),
    ) as pool:
        # biggest groups first, so that no big one starts last and runs alone
        order = sorted(groups, key=lambda g: -len(g) * g[0].num_layers * g[0].epochs)
        pending = {pool.submit(_process_task, g, root, stacked) for g in order}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()


#: Execution backends: name -> generator of per-group result lists.
BACKENDS: dict[str, Callable[..., Iterator[list[Any]]]] = {
    "local": _local,
    "processes": _processes,
    "ray": _ray,
}


def run_sweep(
    config: SweepConfig,
    store_path: str | Path,
    *,
    backend: str = "local",
    root: str | None = None,
    stacked: bool = True,
    max_group: int | None = None,
    retry_failed: bool = False,
    progress: bool = False,
    model_fn: Callable[..., Any] | None = None,
    **backend_kwargs: Any,
) -> SweepSummary:
    """Run every run of ``config`` that ``store_path`` does not hold yet.

    Args:
        config (SweepConfig): The grid.
        store_path (str or Path): Results store (created when the first run is stored;
            a path where no store can be written is refused before any run starts).
        backend (str, optional): ``"local"``, ``"processes"`` or ``"ray"``.
            (default: ``"local"``)
        root (str, optional): Data root (else ``GNNLEAKY_DATA``, else ``./datasets``).
        stacked (bool, optional): Train compatible runs in one stacked model.
        max_group (int, optional): At most this many runs per stacked group. (default:
            ``None``: what fits the memory budget; the ``"processes"`` backend also cuts
            each group into one chunk per worker)
        retry_failed (bool, optional): Train failed runs again.
        progress (bool, optional): Show a progress bar with ETA (CLI).
        model_fn (callable, optional): ``model_fn(run_config, in_channels, out_channels)``
            -> the model of every run (any ``torch.nn.Module`` called as
            ``model(x, edge_index)``), in place of the built-in ``conv`` or the config's
            ``model``. Runs store ``model`` as ``"module:name"`` of the function, so that
            their keys differ from the built-in models'. Local backend only.
        **backend_kwargs: ``workers`` for ``"processes"``; ``address`` and ``num_cpus``
            for Ray.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {backend!r}")
    _check_max_group(max_group)
    start = time.perf_counter()
    if model_fn is not None:
        if not callable(model_fn):
            raise ValueError(f"model_fn must be callable, got {type(model_fn).__name__}")
        if backend != "local":
            raise ValueError(
                f"model_fn works with backend='local' only (got {backend!r}); for other "
                "backends name the factory in the config: model: 'package.module:factory'"
            )
        label = f"{getattr(model_fn, '__module__', '?')}:{getattr(model_fn, '__qualname__', '?')}"
        check_fixed(config.task, {"model": label})  # a task that builds its own model refuses it
        config = config.replace(model=None)
        runs = [dataclasses.replace(r, model=label) for r in config.expand()]
    else:
        runs = config.expand()
    check_data(runs, root)
    check_model(runs, root, model_fn)
    summary = SweepSummary()
    store_path = Path(store_path)
    # An existing store is opened (and its schema checked) now; a new one is created only
    # when the first result is written, so that a sweep that fails before (bad data, an
    # interrupt) leaves no empty store behind. Either way a store that cannot be written
    # is refused before anything trains.
    store = None
    if store_path.is_file() and store_path.stat().st_size > 0:
        store = ResultsStore(store_path)
    else:
        check_writable(store_path)
    try:
        if store is None:
            done: set[str] = set()
        else:
            done = store.finished_keys(include_failed=not retry_failed)
        groups = plan(runs, done, max_group)
        summary.total = len(runs)
        todo = sum(len(g) for g in groups)
        summary.skipped = summary.total - todo
        log.info(
            "sweep %s: %d runs, %d stored already, %d to train in %d groups",
            config.name,
            summary.total,
            summary.skipped,
            todo,
            len(groups),
        )
        summary.timings["setup"] = time.perf_counter() - start
        if backend == "processes":
            import torch

            summary.workers = backend_kwargs.get("workers") or torch.get_num_threads()
        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=todo, unit="run", desc=config.name, dynamic_ncols=True)
        try:
            if model_fn is not None:
                backend_kwargs["model_fn"] = model_fn
            for results in BACKENDS[backend](
                groups, root=root, stacked=stacked, max_group=max_group, **backend_kwargs
            ):
                stored_at = time.perf_counter()
                for res in results:
                    summary.trained += 1
                    for phase, seconds in getattr(res, "timings", {}).items():
                        summary.timings[phase] = summary.timings.get(phase, 0.0) + seconds
                    if res.status != "ok":
                        summary.failed += 1
                        summary.failures.append((res.key, res.reason or ""))
                    if store is None:
                        store = ResultsStore(store_path)
                    summary.stored += store.add(res, sweep=config.name)
                summary.timings["store"] = summary.timings.get("store", 0.0) + (
                    time.perf_counter() - stored_at
                )
                if bar is not None:
                    bar.update(len(results))
        finally:
            if bar is not None:
                bar.close()
    finally:
        if store is not None:
            store.close()
    summary.seconds = time.perf_counter() - start
    return summary
