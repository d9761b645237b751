"""Cold and warm invoke latency through LocalStack with the hostmode executor.

    localstack/launcher run -- .venv/localstack/bin/python localstack/hostmode/tests/measure_latency.py [N]

Times Invoke as a client sees it (boto3, wall clock), median of N (default 20): cold is
the first invoke of a new function (LocalStack creates the environment, the executor
starts the process and waits for its first GET .../next), warm the ones after. For two
trivial bootstraps: the Go function in testdata/gofn (built here; skipped without Go)
and the Python fake runtime. GetFunctionConfiguration is timed too, as the cost of any
LocalStack call. A measurement, not a test: it asserts nothing.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from conftest import HERE, ROLE, _client, fake_bootstrap, host_architecture, zip_of

GOARCH = {"x86_64": "amd64", "arm64": "arm64"}


def go_bootstrap() -> bytes | None:
    if not shutil.which("go"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bootstrap"
        env = dict(os.environ, CGO_ENABLED="0", GOARCH=GOARCH[host_architecture()], GOWORK="off")
        subprocess.run(
            ["go", "build", "-trimpath", "-o", str(out), "."], cwd=HERE / "testdata" / "gofn", env=env, check=True
        )
        return out.read_bytes()


def ms(seconds: list[float]) -> str:
    values = sorted(s * 1000 for s in seconds)
    return f"median {statistics.median(values):6.1f} ms  (min {values[0]:.1f}, max {values[-1]:.1f})"


def measure(lam, label: str, bootstrap: bytes, n: int) -> None:
    code = zip_of({"bootstrap": bootstrap})
    cold, init, names = [], [], []
    for _ in range(n):
        name = f"latency-{uuid.uuid4().hex[:10]}"
        names.append(name)
        lam.create_function(
            FunctionName=name, Runtime="provided.al2023", Handler="bootstrap", Role=ROLE,
            Code={"ZipFile": code}, Architectures=[host_architecture()], Timeout=10,
        )  # fmt: skip
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.2})
        t0 = time.perf_counter()
        r = lam.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
        cold.append(time.perf_counter() - t0)
        tail = base64.b64decode(r["LogResult"]).decode()
        if m := re.search(r"Init Duration: ([\d.]+) ms", tail):
            init.append(float(m[1]) / 1000)
        if len(names) > 1:
            # Deleted as it goes: LocalStack takes ~1 s to stop a function (its event
            # poller), and abandons what it has not stopped 5 s into a shutdown.
            lam.delete_function(FunctionName=name)
    warm = []
    for _ in range(n):
        t0 = time.perf_counter()
        lam.invoke(FunctionName=names[0], Payload=b"{}")
        warm.append(time.perf_counter() - t0)
    api = []
    for _ in range(n):
        t0 = time.perf_counter()
        lam.get_function_configuration(FunctionName=names[0])
        api.append(time.perf_counter() - t0)
    lam.delete_function(FunctionName=names[0])
    print(f"{label}: cold invoke   {ms(cold)}")
    print(f"{label}: Init Duration {ms(init)}")
    print(f"{label}: warm invoke   {ms(warm)}")
    print(f"{label}: GetFunctionConfiguration {ms(api)}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    lam = _client("lambda")
    if (go := go_bootstrap()) is not None:
        measure(lam, "go (aws-lambda-go)", go, n)
    measure(lam, "python fake", fake_bootstrap(), n)


if __name__ == "__main__":
    main()
