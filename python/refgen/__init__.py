"""refgen from Python: signed-URL references files for Roboflow Batch Processing.

The same library as the ``refgen`` command (which this package also installs):

- :func:`generate` lists a bucket (S3, GCS, Azure), keeps what the filters
  select, signs and writes the references file, and returns a :class:`Report`.
- :func:`plan` cuts a bucket's listing into key ranges that workers list
  apart: ``generate(plan=p, shard=k)`` lists part ``k`` only.
- :class:`Signer` signs GET URLs for keys you already have, inside a Ray, Spark
  or Dask worker: it pickles as its settings, and each worker resolves its own
  credentials from its environment, as the cloud's CLI would there.

Errors are :class:`RefgenError` (:class:`UsageError`, :class:`StorageError`,
:class:`RoboflowError`), each with the command line's one line, secrets removed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

from ._refgen import RefgenError, RoboflowError, Signer, StorageError, UsageError, __version__
from . import _refgen

__all__ = [
    "generate",
    "plan",
    "RangePlan",
    "references",
    "References",
    "submit",
    "batches",
    "batch",
    "jobs",
    "job",
    "export",
    "Report",
    "verify",
    "VerifyReport",
    "Signer",
    "RefgenError",
    "UsageError",
    "StorageError",
    "RoboflowError",
    "__version__",
]


def _from_json(cls, text):
    """A report dataclass from the library's JSON document; fields a newer
    library adds are left out rather than refused."""
    return cls(**{k: v for k, v in json.loads(text).items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Report:
    """What a :func:`generate` run did (the command line's ``--json`` document)."""

    listed: int
    """Objects the listing (or the inventory report) returned."""
    matched: int
    """Objects that passed the filters."""
    written: int
    """References written."""
    pinned: int
    """References whose URL names the exact version listed (``pin_versions``)."""
    skipped: Dict[str, int]
    """Objects not written, by reason (``filtered``, ``archived``, ``too_large``, …)."""
    limited: bool
    """Whether the run stopped at its ``limit``."""
    dry_run: bool
    """Whether nothing was signed or written (no ``output``)."""
    output: Optional[str]
    """The file written."""
    expires_in_seconds: int
    """How long each URL is valid."""
    expires_at: Optional[str]
    """When the first URL signed expires (RFC 3339)."""
    expiry_limit: str
    """What bounds the expiry (the signer's cap, or the credentials)."""
    elapsed_seconds: float
    """How long the run took."""
    parts: List[str] = field(default_factory=list)
    shard: Optional[str] = None
    plan: Optional[str] = None
    """The plan's fingerprint, for a run of one of its parts."""
    range: Optional[Dict[str, Optional[str]]] = None
    """The key range listed (``after``, ``until``), for a run of a plan's part."""


@dataclass(frozen=True)
class RangePlan:
    """A plan of key ranges (what :func:`plan` and ``refgen plan`` write).

    ``parts[k]`` holds ``after`` and ``until`` (part ``k`` lists the keys after
    the one and up to the other; ``None`` leaves that side open) and
    ``estimated_objects``. Give it (or its file) to :func:`generate` with
    ``shard=k``.
    """

    format: str
    source: str
    selection: Dict[str, object]
    parts: List[Dict[str, object]]
    estimated_objects: int
    """Objects under the source's prefix (listed, before the selection)."""
    exact: bool
    """Whether the counts are exact (the whole prefix was listed)."""
    requests: int
    created_at: str
    fingerprint: str

    def __len__(self) -> int:
        return len(self.parts)

    def to_json(self) -> str:
        """The plan file's JSON document."""
        return json.dumps(self.__dict__)

    @classmethod
    def read(cls, path: Union[str, "os.PathLike[str]"]) -> "RangePlan":
        """A plan file (checked when a run uses it)."""
        with open(os.fspath(path), encoding="utf-8") as f:
            return _from_json(cls, f.read())


def plan(
    source: str,
    parts: int,
    output: Union[str, "os.PathLike[str]", None] = None,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    images: bool = False,
    videos: bool = False,
    ignore_case: bool = False,
    max_size: Optional[str] = None,
    endpoint_url: Optional[str] = None,
    concurrency: int = 16,
) -> RangePlan:
    """Cut the listing of ``source`` into ``parts`` key ranges, as ``refgen plan`` does.

    The ranges hold about as many objects each: exactly when the source lists
    within 256 pages, else estimated from a sample. Whatever the estimate, they
    cover every key, and objects added after the plan fall in exactly one part.
    The selection (``include``, ``images``, …) is the plan's: its runs keep it.
    Written to ``output`` when given (atomically). The store must list in byte
    order (S3, GCS and Azure do; a local folder is refused).

    A Ray, Dask or Kubernetes job then runs ``generate(plan=p, shard=k)`` for
    each ``k`` in ``range(len(p))``.
    """
    text = _refgen.plan(
        source,
        parts,
        None if output is None else os.fspath(output),
        include=list(include),
        exclude=list(exclude),
        images=images,
        videos=videos,
        ignore_case=ignore_case,
        max_size=max_size,
        endpoint_url=endpoint_url,
        concurrency=concurrency,
    )
    return _from_json(RangePlan, text)


def _run_args(
    source, include, exclude, images, videos, ignore_case, name, expires_in, limit, max_size,
    endpoint_url, allow_empty, allow_short_expiry, pin_versions, inventory, concurrency, plan, shard,
):
    """The options of a run, as the binding takes them (a plan as its JSON document)."""
    plan_json = None
    if isinstance(plan, RangePlan):
        plan_json = plan.to_json()
    elif plan is not None:
        with open(os.fspath(plan), encoding="utf-8") as f:
            plan_json = f.read()
    if isinstance(shard, int):
        if plan_json is None:
            raise UsageError("shard: an index needs a plan (without one, give \"K/N\")")
        shard = f"{shard}/{len(json.loads(plan_json)['parts'])}"
    return dict(
        source=source, include=list(include), exclude=list(exclude), images=images, videos=videos,
        ignore_case=ignore_case, name=name, expires_in=expires_in, limit=limit, max_size=max_size,
        endpoint_url=endpoint_url, allow_empty=allow_empty, allow_short_expiry=allow_short_expiry,
        pin_versions=pin_versions, inventory=inventory, concurrency=concurrency, plan=plan_json, shard=shard,
    )


def generate(
    source: Optional[str] = None,
    output: Union[str, "os.PathLike[str]", None] = None,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    images: bool = False,
    videos: bool = False,
    ignore_case: bool = False,
    name: str = "flat",
    expires_in: str = "24h",
    limit: Optional[int] = None,
    max_size: Optional[str] = None,
    endpoint_url: Optional[str] = None,
    allow_empty: bool = False,
    allow_short_expiry: bool = False,
    pin_versions: bool = False,
    inventory: Optional[str] = None,
    concurrency: int = 16,
    plan: Union[RangePlan, str, "os.PathLike[str]", None] = None,
    shard: Union[int, str, None] = None,
) -> Report:
    """Write the references file of ``source`` to ``output``, as ``refgen generate`` does.

    ``source`` is ``s3://bucket/prefix``, ``gs://bucket/prefix``,
    ``az://account/container/prefix`` (a glob may end it: ``s3://b/imgs/**/*.jpg``).
    The file is replaced atomically once whole, or left as it was on failure.
    Without ``output``, nothing is signed or written: the report counts what
    would be (a dry run). Credentials come from each cloud's own chain (the
    environment, profiles, metadata), as its CLI finds them.

    ``include``/``exclude`` are globs relative to the source's folder; ``images``
    and ``videos`` keep Roboflow's media types; ``name`` is ``flat``, ``key`` or
    ``basename``; ``expires_in`` is ``3600``, ``90m``, ``12h``, ``7d``…;
    ``max_size`` is ``20MiB``, ``500MB``…; ``inventory`` reads an inventory
    report instead of listing; ``pin_versions`` signs the version listed.

    With ``plan`` (a :class:`RangePlan` or its file), only part ``shard`` of
    it is listed (an index, ``"K/N"``, or ``"auto"`` for the scheduler's); the
    source and the selection are the plan's. Without a plan, ``shard="K/N"``
    keeps the objects whose key hashes to K (every worker lists everything).

    Raises :class:`UsageError` for what cannot be used, :class:`StorageError`
    when listing, signing or writing fails.
    """
    args = _run_args(
        source, include, exclude, images, videos, ignore_case, name, expires_in, limit, max_size,
        endpoint_url, allow_empty, allow_short_expiry, pin_versions, inventory, concurrency, plan, shard,
    )
    text = _refgen.generate(args, None if output is None else os.fspath(output))
    return _from_json(Report, text)


class References:
    """The references of a run as they are signed (what :func:`references` returns).

    Iterating gives ``(name, url)`` pairs, or with ``batch_size`` pyarrow
    ``RecordBatch``es of ``name``, ``url``, ``key``, ``size`` and ``expires_at``.
    A failure of the run is raised where the iteration stands. Once it is
    exhausted, :attr:`report` is the run's :class:`Report`; stopping early (or
    dropping the iterator) stops the run.
    """

    def __init__(self, inner):
        self._inner = inner

    def __iter__(self) -> "References":
        return self

    def __next__(self):
        return next(self._inner)

    @property
    def report(self) -> Optional[Report]:
        """The run's report, once the iteration has ended; ``None`` before."""
        text = self._inner.report()
        return None if text is None else _from_json(Report, text)


def references(
    source: Optional[str] = None,
    *,
    batch_size: Optional[int] = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    images: bool = False,
    videos: bool = False,
    ignore_case: bool = False,
    name: str = "flat",
    expires_in: str = "24h",
    limit: Optional[int] = None,
    max_size: Optional[str] = None,
    endpoint_url: Optional[str] = None,
    allow_empty: bool = False,
    allow_short_expiry: bool = False,
    pin_versions: bool = False,
    inventory: Optional[str] = None,
    concurrency: int = 16,
    plan: Union[RangePlan, str, "os.PathLike[str]", None] = None,
    shard: Union[int, str, None] = None,
) -> References:
    """The references :func:`generate` would write, handed over as they are signed.

    Lazily, with bounded memory: the listing runs a few pages ahead of the
    iteration, whatever the size of the bucket. Without ``batch_size``, each
    item is a ``(name, url)`` pair; with it, a ``pyarrow.RecordBatch`` of up to
    ``batch_size`` rows: ``name``, ``url``, ``key``, ``size`` (bytes) and
    ``expires_at`` (a UTC timestamp, when the batch's URLs stop working). The
    options are :func:`generate`'s. The GIL is released while it waits, and
    Ctrl-C stops it.
    """
    args = _run_args(
        source, include, exclude, images, videos, ignore_case, name, expires_in, limit, max_size,
        endpoint_url, allow_empty, allow_short_expiry, pin_versions, inventory, concurrency, plan, shard,
    )
    return References(_refgen.references(args, batch_size))


def submit(
    batch_id: str,
    source: Optional[str] = None,
    *,
    references: Sequence[Union[str, "os.PathLike[str]"]] = (),
    kind: Optional[str] = None,
    upload_to: Optional[str] = None,
    wait: bool = False,
    timeout: float = 7200.0,
    poll: float = 10.0,
    workflow_id: Optional[str] = None,
    job_id: Optional[str] = None,
    download_results: Union[str, "os.PathLike[str]", None] = None,
    verify: bool = False,
    dry_run: bool = False,
    batch_name: Optional[str] = None,
    notifications_url: Optional[str] = None,
    api_key: Optional[str] = None,
    workspace: Optional[str] = None,
    **generate_options,
) -> Dict[str, object]:
    """Submit references to a Roboflow batch, as ``refgen submit`` does; the report as plain data.

    The references are made from ``source`` (with :func:`generate`'s keyword
    options: ``images=True``, ``include=…``, ``plan=…``, ``shard=…``), or are
    the ``references`` files. They go inline, or uploaded to ``upload_to``
    (a bucket URL) and handed over as its signed URL. ``wait`` follows the
    ingest (and the job ``workflow_id`` starts once it is done, its results
    downloaded to ``download_results``) until ``timeout`` seconds; the GIL is
    released meanwhile and Ctrl-C stops it. ``kind`` is ``"images"`` or
    ``"videos"`` (told from the names when not given). ``api_key`` and
    ``workspace`` default to the environment's (``ROBOFLOW_API_KEY``).
    """
    generate_args = None
    if source is not None or generate_options.get("plan") is not None:
        defaults = dict(
            include=(), exclude=(), images=kind == "images", videos=kind == "videos", ignore_case=False,
            name="flat", expires_in="24h", limit=None, max_size=None, endpoint_url=None, allow_empty=False,
            allow_short_expiry=False, pin_versions=False, inventory=None, concurrency=16, plan=None, shard=None,
        )
        unknown = set(generate_options) - set(defaults)
        if unknown:
            raise UsageError(f"submit has no option {', '.join(sorted(unknown))}")
        defaults.update(generate_options)
        generate_args = _run_args(source, **defaults)
    elif generate_options:
        raise UsageError(f"{', '.join(sorted(generate_options))}: options of a source, and no source is given")
    text = _refgen.submit(
        batch_id,
        generate=generate_args,
        references=[os.fspath(r) for r in references],
        kind=kind,
        upload_to=upload_to,
        expires_in=generate_options.get("expires_in", "24h"),
        wait=wait,
        timeout=timeout,
        poll=poll,
        workflow_id=workflow_id,
        job_id=job_id,
        download_results=None if download_results is None else os.fspath(download_results),
        verify=verify,
        dry_run=dry_run,
        batch_name=batch_name,
        notifications_url=notifications_url,
        api_key=api_key,
        workspace=workspace,
    )
    return json.loads(text)


def batches(limit: Optional[int] = None, *, api_key: Optional[str] = None, workspace: Optional[str] = None) -> List[Dict[str, object]]:
    """The workspace's batches (``refgen batches list --json``'s items), up to ``limit``."""
    return json.loads(_refgen.batches(limit, api_key=api_key, workspace=workspace))


def batch(batch_id: str, *, api_key: Optional[str] = None, workspace: Optional[str] = None) -> Dict[str, object]:
    """One batch whole: ``batch``, ``count``, ``shards``, ``failedShards``, ``parts``."""
    return json.loads(_refgen.batch(batch_id, api_key=api_key, workspace=workspace))


def jobs(limit: Optional[int] = None, *, api_key: Optional[str] = None, workspace: Optional[str] = None) -> List[Dict[str, object]]:
    """The workspace's jobs (``refgen jobs list --json``'s items), up to ``limit``."""
    return json.loads(_refgen.jobs(limit, api_key=api_key, workspace=workspace))


def job(job_id: str, *, api_key: Optional[str] = None, workspace: Optional[str] = None) -> Dict[str, object]:
    """One job whole, with its stages."""
    return json.loads(_refgen.job(job_id, api_key=api_key, workspace=workspace))


def export(
    batch_id: str,
    folder: Union[str, "os.PathLike[str]"],
    *,
    parts: Sequence[str] = (),
    overwrite: bool = False,
    concurrency: int = 8,
    api_key: Optional[str] = None,
    workspace: Optional[str] = None,
) -> Dict[str, object]:
    """Download every file of a batch (a job's results) into ``folder``, resumably, as ``refgen export`` does."""
    return json.loads(
        _refgen.export(
            batch_id, os.fspath(folder), parts=list(parts), overwrite=overwrite, concurrency=concurrency,
            api_key=api_key, workspace=workspace,
        )
    )


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found (the command line's ``verify --json`` document)."""

    references: int
    """References in the file."""
    fetched: int
    """URLs fetched."""
    problems: Dict[str, Dict[str, object]]
    """By kind (``missing``, ``expired``, ``signature-refused``, ``customer-key``, …):
    ``count`` and the first ``names``; empty when all is well."""
    ok: bool
    """Whether nothing was found."""
    expires_at: Optional[str] = None
    """When the file's first URL stops working (RFC 3339)."""


def verify(
    path: Union[str, "os.PathLike[str]"],
    *,
    sample: Optional[int] = 100,
    min_valid: str = "48h",
    kind: Optional[str] = None,
    concurrency: int = 16,
) -> VerifyReport:
    """Check a references file before a batch is spent on it, as ``refgen verify`` does.

    Every line is read (JSON, names, extensions, signature dates); ``sample`` URLs
    are fetched (all of them with ``sample=None``), each checked to exist, be
    readable and small enough. ``min_valid`` is how long the URLs must stay valid
    (the batch's processing window); ``kind`` is ``"images"`` or ``"videos"``.
    Problems are in the report (``ok`` is false), not raised.
    """
    text = _refgen.verify(os.fspath(path), sample=sample, min_valid=min_valid, kind=kind, concurrency=concurrency)
    return _from_json(VerifyReport, text)
