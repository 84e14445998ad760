"""The output folder of a batch run: `results.jsonl` (one row per finished job, appended as jobs finish) and
`images/<id>.png` (plus `images/<id>.source.png` for a generated source).

Crash-safe by construction: an image is written under a temporary name and renamed, then its row is appended
and flushed to disk. A run killed at any point leaves every row it wrote intact (a half-written last line is
dropped when the folder is opened again), so a rerun skips exactly the jobs that finished.
"""
from __future__ import annotations

import base64
import json
import os
import time

from .jobs import Job, JobError

RESULTS = "results.jsonl"
IMAGES = "images"


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):  # a full disk or a kill mid-write leaves no half picture behind
            os.remove(tmp)
        raise


LOCK = ".lock"


def _lock_folder(out_dir: str):
    """An exclusive lock on out_dir/.lock for this run (released with the returned file, or when the process ends,
    however it ends); another run holding it is a clear error."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; runs are not guarded
        return None
    f = open(os.path.join(out_dir, LOCK), "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip()
        f.close()
        raise ValueError(f"another run is writing into {out_dir}" + (f" (process {holder})" if holder else "")
                         + ": wait for it to finish, or give another --out") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def read_rows(path: str) -> list[dict]:
    """Every complete row of a results.jsonl: a torn last line, or a line someone else wrote that is no row of ours
    (not an object, no id, an ok row without its picture), is skipped, so it cannot break later runs."""
    rows = []
    if not os.path.isfile(path):
        return rows
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(row, dict) and isinstance(row.get("id"), str) and (
                    row.get("status") != "ok" or isinstance(row.get("image"), str)):
                rows.append(row)
    return rows


def latest_rows(path: str) -> dict[str, dict]:
    """id -> the last row written for it (a rerun's row replaces an earlier one)."""
    return {r["id"]: r for r in read_rows(path) if "id" in r}


class ResultStore:
    def __init__(self, out_dir: str):
        self.out = out_dir
        self.images = os.path.join(out_dir, IMAGES)
        self.path = os.path.join(out_dir, RESULTS)
        if os.path.exists(out_dir) and not os.path.isdir(out_dir):
            raise ValueError(f"--out {out_dir} is a file, not a folder: give a folder for the results")
        os.makedirs(self.images, exist_ok=True)
        self._lock = _lock_folder(out_dir)  # one run per results folder: two would both do every job
        self._drop_torn_line()
        self.latest = latest_rows(self.path)

    def close(self) -> None:
        """Let another run use the folder (the lock also goes with the process)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _drop_torn_line(self) -> None:
        """A row cut off by a crash has no newline: truncate it away so the next row starts on its own line."""
        if not os.path.isfile(self.path) or os.path.getsize(self.path) == 0:
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            if not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)

    def finished(self, job: Job) -> bool:
        """Done before, with the same content, and its picture still there."""
        row = self.latest.get(job.id)
        return bool(row and row.get("status") == "ok" and row.get("digest") == job.digest
                    and os.path.isfile(os.path.join(self.out, row["image"])))

    def _append(self, row: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.latest[row["id"]] = row

    def write_result(self, job: Job, result: dict, engine: str) -> dict:
        try:
            return self._write_result(job, result, engine)
        except OSError as e:  # a full disk, a folder made read-only mid-run: what was written before stands
            raise OSError(e.errno, f"cannot write the result of job {job.id!r} into {self.out}: "
                                   f"{e.strerror or e}; the jobs finished before it are saved, and the same "
                                   f"command goes on from there once it can write") from None

    def _write_result(self, job: Job, result: dict, engine: str) -> dict:
        row = {"id": job.id, "line": job.line, "status": "ok" if result["ok"] else "error", "method": job.method,
               "prompt": job.prompt, "seed": job.seed, "params": job.params, "models": job.models,
               "source": job.source_image or {"prompt": job.source_prompt, "seed": job.source_seed}}
        if result["ok"]:
            row["image"] = f"{IMAGES}/{job.id}.png"
            _write_atomic(os.path.join(self.out, row["image"]), _bytes(result["png"]))
            if result.get("source_png"):
                row["source_image"] = f"{IMAGES}/{job.id}.source.png"
                _write_atomic(os.path.join(self.out, row["source_image"]), _bytes(result["source_png"]))
        for k in ("expected", "mask", "region", "kind", "label"):
            if getattr(job, k):
                row[k] = getattr(job, k)
        row.update(result["row"])
        row.update(engine=engine, digest=job.digest, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        self._append(row)
        return row

    def write_spec_error(self, err: JobError) -> dict | None:
        """A line that could not be read: recorded once (not again on every rerun while it stays the same)."""
        last = self.latest.get(err.id)
        if last and last.get("status") == "error" and last.get("digest") == err.digest and last.get("error") == err.error:
            return None
        row = {"id": err.id, "line": err.line, "status": "error", "error": err.error, "digest": err.digest,
               "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if isinstance(err.spec.get("id"), str):
            row["given_id"] = err.spec["id"]
        self._append(row)
        return row


def _bytes(data) -> bytes:
    return base64.b64decode(data) if isinstance(data, str) else data
