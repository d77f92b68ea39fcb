"""Task runners of the sweep, one module per task (see :mod:`gnnleaky.bench.tasks`): each
has ``run(data, cfg, *, cache=None) -> RunResult`` and is registered in
:data:`gnnleaky.bench.tasks.TASKS`."""
