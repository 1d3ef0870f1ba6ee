import numpy as np

from optkit import batch
from optkit.packing import MakespanInstance
from optkit.solvers import SolverOptions


def _jobs():
    rng = np.random.default_rng(1)
    return [
        batch.Job(
            MakespanInstance.identical(rng.integers(1, 50, 12), 3, name=f"r{i}"),
            options=SolverOptions(5),
        )
        for i in range(3)
    ]


def test_pool_matches_serial_and_keeps_order():
    serial = [r.objective for _, r in batch.run(_jobs())]
    pooled = [(i, r.objective) for i, r in batch.run(_jobs(), workers=2)]
    assert [i for i, _ in pooled] == [0, 1, 2]
    assert [o for _, o in pooled] == serial


def test_dask_local_cluster():
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        got = [r.objective for _, r in batch.run(_jobs(), scheduler=cluster.scheduler_address)]
    assert got == [r.objective for _, r in batch.run(_jobs())]
