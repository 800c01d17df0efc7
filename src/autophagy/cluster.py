"""Cluster recipes for the ``dask`` engine (the optional ``dask`` extra; imported only when called).

SLURM, with ``dask-jobqueue``: each SLURM job is one Dask worker process with one thread (the sweep
already splits work into runs x replicate blocks), and GPU jobs ask SLURM for a GPU and tell Dask
the worker has one, so shards of ``device: cuda`` runs go only there::

    from autophagy.cluster import slurm_cluster
    cluster = slurm_cluster(jobs=16, queue="cpu", walltime="02:00:00", memory="4GB")
    autophagy.run("configs/mad_three_loops.yaml", out="results/mad", engine="dask", address=cluster.scheduler_address)

Kubernetes: start a scheduler and workers with the Dask Kubernetes operator (``KubeCluster``) and pass
its ``scheduler_address`` the same way (``--address tcp://...`` on the command line); workers need
autophagy installed in their image. Only the driver writes the results directory.
"""
from __future__ import annotations

from typing import Any


def slurm_cluster(jobs: int = 1, *, cores: int = 1, memory: str = "4GB", walltime: str = "01:00:00",
                  queue: str | None = None, account: str | None = None, gpus: int = 0,
                  job_extra_directives: list[str] | None = None, **kwargs: Any):
    """A ``dask_jobqueue.SLURMCluster`` shaped for autophagy sweeps, scaled to ``jobs`` jobs.

    One worker process per job with ``cores`` threads' worth of CPUs (use 1: shards are single-threaded),
    ``gpus`` GPUs per job requested with ``--gres=gpu:N`` and declared as the Dask resource ``GPU``.
    Extra keyword arguments go to ``SLURMCluster`` (``python=``, ``local_directory=``, ``interface=`` ...).
    ``cluster.job_script()`` shows the batch script before anything is submitted.
    """
    from .sweep import _import_distributed

    _import_distributed()
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        from .errors import ConfigError

        raise ConfigError("--engine", "dask", "", problem="SLURM needs dask-jobqueue: pip install 'autophagy[dask]'") from None
    kwargs.setdefault("scheduler_options", {"dashboard_address": ":0"})  # any free port, not a clash on 8787
    directives = list(job_extra_directives or [])
    worker_extra = list(kwargs.pop("worker_extra_args", []))
    if gpus:
        directives.append(f"--gres=gpu:{gpus}")
        worker_extra += ["--resources", f"GPU={gpus}"]
    cluster = SLURMCluster(cores=cores, processes=1, memory=memory, walltime=walltime, queue=queue, account=account,
                           job_extra_directives=directives, worker_extra_args=worker_extra,
                           **kwargs)
    if jobs:
        cluster.scale(jobs=jobs)
    return cluster
