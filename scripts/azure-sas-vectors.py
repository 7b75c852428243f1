#!/usr/bin/env python3
"""User-delegation SAS known answers from Microsoft's official Python SDK.

shared/vectors/azure/sas_vectors.json covers service and account SAS. User-delegation
SAS (refgen's Entra ID mode) has no published vector, so this asks the official SDK,
azure-storage-blob 12.31.1 (service version 2026-10-06, the one refgen pins), to sign
with a made-up delegation key. The cases with a `version_id` sign one version of a
blob (`--pin-versions`: `sr=bv`), with that key and with the account key of
sas_vectors.json (kind `service`). Run it in a virtual environment:

    python3 -m venv /tmp/v && /tmp/v/bin/pip install azure-storage-blob==12.31.1
    /tmp/v/bin/python scripts/azure-sas-vectors.py > crates/refgen-azure/tests/user_delegation_vectors.json
"""
import json
from datetime import datetime, timezone
from urllib.parse import parse_qsl

import azure.storage.blob as blob
from azure.storage.blob import UserDelegationKey, generate_blob_sas, generate_container_sas

assert blob.__version__ == "12.31.1", blob.__version__

# The account key of shared/vectors/azure/sas_vectors.json (Azurite's published one).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

key = UserDelegationKey()
key.signed_oid = "11111111-2222-3333-4444-555555555555"
key.signed_tid = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
key.signed_start = "2029-12-31T00:00:00Z"
key.signed_expiry = "2030-01-07T00:00:00Z"
key.signed_service = "b"
key.signed_version = "2026-10-06"
key.value = "cmVmZ2VuLXRlc3QtZGVsZWdhdGlvbi1rZXktMzItYnl0ZXM="

expiry = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
start = datetime(2029, 12, 31, 23, 55, 0, tzinfo=timezone.utc)
cases = []
for description, kind, blob_name, kwargs in [
    ("user delegation blob SAS read", "blob", "a/1.txt", {}),
    ("user delegation blob SAS, unicode and space, start, https", "blob", "c d/ü 6.txt", {"start": start, "protocol": "https"}),
    ("user delegation container SAS read+list", "container", None, {}),
    ("user delegation SAS of one blob version", "blob", "c d/ü 6.txt", {"version_id": "2029-12-30T10:11:12.1234567Z"}),
    ("account key SAS of one blob version", "service", "a/1.txt", {"version_id": "2029-12-30T10:11:12.1234567Z", "start": start}),
]:
    signer = dict(account_key=ACCOUNT_KEY) if kind == "service" else dict(user_delegation_key=key)
    common = dict(account_name="devstoreaccount1", container_name="testcont", expiry=expiry, **signer, **kwargs)
    if kind in ("blob", "service"):
        token = generate_blob_sas(blob_name=blob_name, permission="r", **common)
    else:
        token = generate_container_sas(permission="rl", **common)
    cases.append({
        "description": description,
        "kind": kind,
        "blob_name": blob_name,
        "permission": "rl" if kind == "container" else "r",
        "version_id": kwargs.get("version_id"),
        "start": kwargs.get("start") and kwargs["start"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "protocol": kwargs.get("protocol"),
        "expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sas_query": token,
        "params": dict(parse_qsl(token)),
    })

print(json.dumps({
    "generator": f"python azure-storage-blob {blob.__version__}",
    "account_name": "devstoreaccount1",
    "container_name": "testcont",
    "user_delegation_key": {k: getattr(key, k) for k in
        ["signed_oid", "signed_tid", "signed_start", "signed_expiry", "signed_service", "signed_version", "value"]},
    "cases": cases,
}, indent=1, ensure_ascii=False))
