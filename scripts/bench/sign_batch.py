"""`Signer.sign_batch` over one RecordBatch of N keys: the median rate of RUNS
runs, in references/s (the first, untimed, opens the store and warms up).

Usage: sign_batch.py STORE_URL ROWS RUNS
"""

import statistics
import sys
import time

import pyarrow as pa

import refgen

store, rows, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
batch = pa.record_batch({"key": pa.array([f"images/{i % 1000:03}/{i:07}.jpg" for i in range(rows)])})
signer = refgen.Signer(store)
signer.sign(["warm-up.jpg"])
rates = []
for _ in range(runs):
    started = time.perf_counter()
    out = signer.sign_batch(batch)
    rates.append(rows / (time.perf_counter() - started))
    assert out.num_rows == rows
print(f"{statistics.median(rates):.0f}")
