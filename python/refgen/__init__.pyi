import os

import pyarrow
from typing import Dict, List, Optional, Sequence, Tuple, Union

__version__: str

class RefgenError(Exception): ...
class UsageError(RefgenError): ...
class StorageError(RefgenError): ...
class RoboflowError(RefgenError): ...

class Report:
    listed: int
    matched: int
    written: int
    pinned: int
    skipped: Dict[str, int]
    limited: bool
    dry_run: bool
    output: Optional[str]
    expires_in_seconds: int
    expires_at: Optional[str]
    expiry_limit: str
    elapsed_seconds: float
    parts: List[str]
    shard: Optional[str]
    plan: Optional[str]
    range: Optional[Dict[str, Optional[str]]]

class RangePlan:
    format: str
    source: str
    selection: Dict[str, object]
    parts: List[Dict[str, object]]
    estimated_objects: int
    exact: bool
    requests: int
    created_at: str
    fingerprint: str
    def __len__(self) -> int: ...
    def to_json(self) -> str: ...
    @classmethod
    def read(cls, path: Union[str, "os.PathLike[str]"]) -> "RangePlan": ...

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
) -> RangePlan: ...

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
) -> Report: ...

class References:
    def __iter__(self) -> "References": ...
    def __next__(self) -> Union[Tuple[str, str], pyarrow.RecordBatch]: ...
    @property
    def report(self) -> Optional[Report]: ...

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
) -> References: ...

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
    **generate_options: object,
) -> Dict[str, object]: ...
def batches(limit: Optional[int] = None, *, api_key: Optional[str] = None, workspace: Optional[str] = None) -> List[Dict[str, object]]: ...
def batch(batch_id: str, *, api_key: Optional[str] = None, workspace: Optional[str] = None) -> Dict[str, object]: ...
def jobs(limit: Optional[int] = None, *, api_key: Optional[str] = None, workspace: Optional[str] = None) -> List[Dict[str, object]]: ...
def job(job_id: str, *, api_key: Optional[str] = None, workspace: Optional[str] = None) -> Dict[str, object]: ...
def export(
    batch_id: str,
    folder: Union[str, "os.PathLike[str]"],
    *,
    parts: Sequence[str] = (),
    overwrite: bool = False,
    concurrency: int = 8,
    api_key: Optional[str] = None,
    workspace: Optional[str] = None,
) -> Dict[str, object]: ...

class Signer:
    def __init__(
        self,
        store_url: str,
        *,
        expires_in: str = "24h",
        name: str = "flat",
        endpoint_url: Optional[str] = None,
    ) -> None: ...
    def sign(self, keys: List[str]) -> List[str]: ...
    def references(self, keys: List[str]) -> List[Tuple[str, str]]: ...
    def sign_batch(self, batch: "pyarrow.RecordBatch | pyarrow.Table") -> "pyarrow.RecordBatch": ...

class VerifyReport:
    references: int
    fetched: int
    problems: Dict[str, Dict[str, object]]
    ok: bool
    expires_at: Optional[str]

def verify(
    path: Union[str, "os.PathLike[str]"],
    *,
    sample: Optional[int] = 100,
    min_valid: str = "48h",
    kind: Optional[str] = None,
    concurrency: int = 16,
) -> VerifyReport: ...
