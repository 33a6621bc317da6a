"""The Ray engine: one task per sequence on a local or existing cluster, retried by Ray, results to the driver.

Ray retries a task whose worker died (``max_retries``) and, with ``retry_exceptions``, one that raised an
unexpected error; bad input and output-storage failures come back as failed outcomes and are not retried.
"""

from __future__ import annotations

from collections.abc import Iterator

from omegaconf import DictConfig, OmegaConf

from pipeline.preprocess.jobs import Task
from pipeline.preprocess.manifest import FAILED
from pipeline.preprocess.worker import CoderFactory, Outcome, execute, new_record
from pipeline.threads import set_threads


def gpus_per_task(option: str | float | int | None, cluster: dict, device: str = "auto") -> float:
    """``auto``: one GPU per task when the cluster has any and ``device`` is not ``cpu``; a number as given."""
    if option is None or option == "auto":
        return 1.0 if cluster.get("GPU", 0) > 0 and device != "cpu" else 0.0
    value = float(option)
    if value < 0:
        raise ValueError(f"preprocess.ray.num_gpus={option}: expected auto or a number >= 0")
    return value


def run_ray(tasks: list[Task], cfg: dict, factory: CoderFactory, out_root: str, config_hash: str,
            options: DictConfig, max_retries: int = 2, device: str = "auto") -> Iterator[Outcome]:
    """Yield one final outcome per task as results arrive; the driver writes the manifest.

    ``device`` is the config's ``device`` (auto | cpu | cuda): ``cpu`` never reserves GPUs.
    """
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address=options.address, num_cpus=options.init_cpus if options.address is None else None,
                 runtime_env=OmegaConf.to_container(options.runtime_env) if options.runtime_env else None,
                 include_dashboard=False, logging_level="warning")
    in_flight: dict = {}
    try:
        cluster = ray.cluster_resources()
        cpus = float(options.num_cpus)
        gpus = gpus_per_task(options.num_gpus, cluster, device)
        if gpus > 0 and cluster.get("GPU", 0) < gpus:
            raise ValueError(f"preprocess.ray.num_gpus={options.num_gpus} but the cluster has "
                             f"{cluster.get('GPU', 0)} GPUs")
        remote = ray.remote(_ray_execute).options(num_cpus=cpus, num_gpus=gpus, max_retries=max_retries,
                                                  retry_exceptions=True)
        limit = int(options.max_in_flight or max(1, 2 * int(cluster.get("CPU", 1) / max(cpus, 1e-3))))
        cfg_ref = ray.put(cfg)  # shipped to the object store once, not with every task
        queue = list(reversed(tasks))
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                task = queue.pop()
                ref = remote.remote(cfg_ref, factory, out_root, config_hash, task, max(1, int(round(cpus))))
                in_flight[ref] = task
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            task = in_flight.pop(ready[0])
            try:
                yield ray.get(ready[0])
            except ray.exceptions.RayError as err:
                yield Outcome(new_record(task, config_hash, status=FAILED, attempts=max_retries + 1,
                                         error=f"{type(err).__name__}: {_first_line(err)} "
                                               f"(after {max_retries + 1} attempts)"))
    finally:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def _ray_execute(cfg: dict, factory: CoderFactory, out_root: str, config_hash: str, task: Task,
                 threads: int) -> Outcome:
    set_threads(threads)
    return execute(cfg, factory, out_root, config_hash, task)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[-1] if text else repr(err)
