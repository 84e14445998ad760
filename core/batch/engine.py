"""Running a jobs file: plan the batches, run them on an engine, write each result as it comes back.

- local (default): one worker in this process; no extra dependency.
- ray: Ray Data over the batches with a pool of actors, one per GPU (without GPUs, one per CPU, or per
  `cpus_per_worker` CPUs),
  each holding its models for the whole run; results stream back here and are written as they finish. Ray is an
  optional extra (requirements-batch.txt).
"""
from __future__ import annotations

import base64
import json
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from .jobs import Job, JobError, read_jobs
from .store import ResultStore

DEFAULT_BATCH = 32


def plan(jobs: list[Job], batch_size: int = DEFAULT_BATCH) -> list[list[Job]]:
    """Compatible jobs (same group_key) together, `batch_size` at most; groups that use the same model files next to
    each other (a worker keeps one model set in memory), otherwise in the order they first appear."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.group_key(), []).append(job)
    first_use: dict[str, int] = {}
    for i, g in enumerate(groups.values()):
        first_use.setdefault(json.dumps(g[0].models, sort_keys=True), i)
    ordered = sorted(groups.values(), key=lambda g: first_use[json.dumps(g[0].models, sort_keys=True)])  # stable
    return [g[i:i + batch_size] for g in ordered for i in range(0, len(g), batch_size)]


class Progress:
    """`  37/200 jobs | 2.31 jobs/s | ETA 1m10s | 2 failed` on stderr, redrawn in place on a terminal."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.failed = total, 0, 0
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self._last = self.t0  # on a log, a line every 5 s (the first would be mostly model loading)

    @property
    def rate(self) -> float:
        elapsed = time.perf_counter() - self.t0
        return self.done / elapsed if elapsed > 0 else 0.0

    def update(self, ok: int, failed: int) -> None:
        self.done += ok + failed
        self.failed += failed
        now = time.perf_counter()
        if self.tty or now - self._last > 5 or self.done == self.total:
            self._last = now
            self.stream.write(("\r" if self.tty else "") + self.line() + ("" if self.tty else "\n"))
            self.stream.flush()

    def line(self) -> str:
        rate = self.rate
        left = self.total - self.done
        eta = f"{int(left / rate) // 60}m{int(left / rate) % 60:02d}s" if rate > 0 else "?"
        failed = f" | {self.failed} failed" if self.failed else ""
        return f"{self.done:>5}/{self.total} jobs | {rate:.2f} jobs/s | ETA {eta}{failed}"

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class RunSummary:
    total: int
    skipped: int  # finished by an earlier run
    ok: int
    failed: int  # ran and failed (recorded with their errors)
    invalid: int  # lines that could not be read as jobs (recorded too)
    seconds: float
    interrupted: bool = False

    @property
    def jobs_per_second(self) -> float:
        done = self.ok + self.failed
        return done / self.seconds if self.seconds > 0 else 0.0


# ---------------------------------------------------------------------------------------------- engines

def _local_results(groups: list[list[Job]], models_dir: str, device: str | None, threads: int | None,
                   allow_download: bool) -> Iterator[tuple[list[Job], list[dict]]]:
    from .worker import Worker

    worker = Worker(models_dir, device, threads, allow_download)
    for group in groups:
        yield group, worker.run(group)


def _ray_worker_class(models_dir: str, device: str | None, threads: int, allow_download: bool):
    """The actor, defined here so that it travels by value with its settings: a Ray worker imports the pack as
    installed on its node (`pip install` of the pack: `ar_edit_pack`), as the driver does."""

    class BatchWorker:
        def __init__(self):
            try:
                from ar_edit_pack.core.batch.jobs import Job as WorkerJob
                from ar_edit_pack.core.batch.worker import Worker
            except ImportError as e:
                raise RuntimeError(f"this Ray node cannot import the pack ({e}): install it there "
                                   f"(pip install <the pack's folder>)") from None

            self.job_class = WorkerJob
            self.worker = Worker(models_dir, device, threads, allow_download)

        def __call__(self, batch: dict) -> dict:
            out = []
            for payload in batch["group"]:
                jobs = [self.job_class.from_dict(d) for d in json.loads(payload)]
                results = self.worker.run(jobs)
                for r in results:
                    for k in ("png", "source_png"):
                        if r[k] is not None:
                            r[k] = base64.b64encode(r[k]).decode("ascii")
                out.append(json.dumps(results))
            return {"results": out}

    return BatchWorker


def _ray_target(address: str | None) -> tuple[str, str] | None:
    """(address, where it came from) of the cluster ray.init will try to join, or None when it starts its own."""
    if address == "local":
        return None
    if os.environ.get("RAY_ADDRESS"):  # Ray lets it win over any address given
        return os.environ["RAY_ADDRESS"], "RAY_ADDRESS"
    if address not in (None, "auto"):
        return address, "--address"
    try:  # where the last `ray start` on this machine recorded its cluster
        from ray._private.utils import read_ray_address
        recorded = read_ray_address(None)
    except Exception:  # noqa: BLE001 - Ray's layout changed: let ray.init resolve it
        return None
    return (recorded, "the cluster `ray start` recorded on this machine") if recorded else None


def _check_reachable(address: str | None) -> None:
    """A cluster that is gone (a stale `ray start` record, a wrong RAY_ADDRESS) refused at once: ray.init itself
    retries for minutes before failing."""
    target = _ray_target(address)
    if target is None:
        return
    addr, where = target
    host, _, port = addr.split("://", 1)[-1].split("/", 1)[0].rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        hint = {"RAY_ADDRESS": "unset RAY_ADDRESS or start that cluster",
                "--address": "check the address and that the cluster is up"}.get(
            where, "end it with `ray stop`, or pass --address local for a fresh instance of this run's own")
        raise RuntimeError(f"the Ray cluster at {addr} ({where}) does not answer ({e.strerror or e}): {hint}") \
            from None


def _ray_results(groups: list[list[Job]], models_dir: str, device: str | None, address: str | None,
                 workers: int | None, cpus_per_worker: int | None,
                 allow_download: bool) -> Iterator[tuple[list[Job], list[dict]]]:
    try:
        import ray
    except ImportError:
        raise RuntimeError("the ray engine needs Ray: pip install -r requirements-batch.txt") from None
    import ray.data

    for name in ("ray", "ray.data"):  # the run's own progress line is enough
        logging.getLogger(name).setLevel(logging.ERROR)
    started = not ray.is_initialized()
    if started:
        # Ray's own resolution (its docs): no address joins the cluster in RAY_ADDRESS or the one `ray start` left
        # on this machine, else starts one; "local" always starts a fresh one. CPUs may be set only when starting
        # one for sure: Ray refuses them when joining, with a message about num_cpus that would make no sense here.
        _check_reachable(address)
        try:
            ray.init(address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                     **({"num_cpus": os.cpu_count()} if address == "local" else {}))
        except Exception as e:  # noqa: BLE001 - connection refused, bad address, ...: one clear line
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            if address:
                raise RuntimeError(f"cannot start or reach the Ray cluster at {address}: {reason}") from None
            tried = (f"the cluster in RAY_ADDRESS ({os.environ['RAY_ADDRESS']})" if os.environ.get("RAY_ADDRESS")
                     else "the cluster `ray start` recorded on this machine, if any, or a new one")
            raise RuntimeError(f"cannot start or reach Ray: without --address it tries {tried}, and that failed: "
                               f"{reason}. Stop a stale cluster with `ray stop` (or unset RAY_ADDRESS), or pass "
                               f"--address local for a fresh instance of this run's own") from None
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.execution_options.preserve_order = False  # results stream back as they finish
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
        if gpus and device != "cpu":
            n, per_gpu = workers or gpus, 1
            per_cpu = max(1, cpus // n)
            if n > gpus:  # an actor that can never get its GPU would stall the run
                raise ValueError(f"--workers {n}: the cluster has {gpus} GPUs, one per worker")
        else:  # small models scale better over processes than over torch threads (bench/batch_throughput.json)
            n = workers or max(1, cpus // (cpus_per_worker or 1))
            per_cpu, per_gpu = cpus_per_worker or max(1, cpus // n), 0
            if n * per_cpu > cpus:
                raise ValueError(f"{n} workers x {per_cpu} CPUs: the cluster has {cpus} CPUs")
        items = [{"group": json.dumps([j.to_dict() for j in g])} for g in groups]
        ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
        ds = ds.map_batches(_ray_worker_class(models_dir, device, per_cpu, allow_download), batch_size=1,
                            compute=ray.data.ActorPoolStrategy(size=n), num_cpus=per_cpu, num_gpus=per_gpu)
        jobs_by_id = {j.id: j for g in groups for j in g}
        rows = iter(ds.iter_rows())
        while True:
            try:
                row = next(rows)
            except StopIteration:
                break
            except Exception as e:  # noqa: BLE001 - workers record their jobs' errors, so this is the cluster
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                raise RuntimeError(f"the Ray cluster failed during the run ({type(e).__name__}: {first}); the jobs "
                                   f"finished so far are saved, and the same command goes on from there") from None
            results = json.loads(row["results"])
            yield [jobs_by_id[r["id"]] for r in results], results
    finally:
        if started:
            ray.shutdown()


def run_jobs(jobs_path: str, out_dir: str, engine: str = "local", batch_size: int = DEFAULT_BATCH,
             models_dir: str = "models", device: str | None = None, address: str | None = None,
             workers: int | None = None, cpus_per_worker: int | None = None, threads: int | None = None,
             allow_download: bool = True, progress: bool = True,
             on_result: Callable[[dict], None] | None = None) -> RunSummary:
    """Run every unfinished job of `jobs_path` into `out_dir` (see the module doc). Ctrl-C stops after writing what
    has finished; rerunning the same command goes on from there."""
    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be local or ray, got {engine!r}")
    entries = read_jobs(jobs_path)
    store = ResultStore(out_dir)
    for err in (e for e in entries if isinstance(e, JobError)):
        row = store.write_spec_error(err)
        if row and on_result:
            on_result(row)
    spec_errors = sum(isinstance(e, JobError) for e in entries)
    jobs = [e for e in entries if isinstance(e, Job)]
    todo = [j for j in jobs if not store.finished(j)]
    groups = plan(todo, batch_size)
    bar = Progress(len(todo)) if progress else None
    t0 = time.perf_counter()
    ok = failed = 0
    interrupted = False
    stream: Iterable
    if engine == "local":
        stream = _local_results(groups, models_dir, device, threads, allow_download)
    else:
        stream = _ray_results(groups, models_dir, device, address, workers, cpus_per_worker, allow_download)
    try:
        for group, results in stream:
            by_id = {j.id: j for j in group}
            for r in results:
                row = store.write_result(by_id[r["id"]], r, engine)
                ok, failed = ok + r["ok"], failed + (not r["ok"])
                if bar:
                    bar.update(int(r["ok"]), int(not r["ok"]))
                if on_result:
                    on_result(row)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()  # shuts Ray down when this run started it
        if bar:
            bar.close()
        store.close()
    return RunSummary(len(jobs) + spec_errors, len(jobs) - len(todo), ok, failed, spec_errors,
                      time.perf_counter() - t0, interrupted)
