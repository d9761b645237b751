"""Fixtures for the hostmode executor's tests.

The tests in test_lambda.py and test_go_runtime.py drive a real LocalStack through boto3,
as the product does: `localstack/launcher test` starts one (AWS_ENDPOINT_URL says where).
test_esm.py drives SQS event source mappings the same way. test_units.py needs none.
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

HERE = Path(__file__).parent
# The unit tests import the plugin from this checkout (LocalStack runs the installed copy,
# which `localstack/launcher test` reinstalls when the checkout's differs).
sys.path.insert(0, str(HERE.parent))
ROLE = "arn:aws:iam::000000000000:role/hostmode-test"
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "")


def host_architecture() -> str:
    return {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(os.uname().machine, os.uname().machine)


def other_architecture() -> str:
    return "arm64" if host_architecture() == "x86_64" else "x86_64"


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16  # executable, as `sam build` packs a bootstrap
            z.writestr(info, data)
    return buf.getvalue()


def fake_bootstrap() -> bytes:
    """The fake runtime, run by this Python (which has boto3, for the whoami action)."""
    return f"#!{sys.executable} -u\n".encode() + (HERE / "fake_bootstrap.py").read_bytes()


def elf_header(arch: str) -> bytes:
    """The first bytes of a 64-bit little-endian ELF executable for arch: enough for the
    executor to refuse it, which it must do before trying to run it."""
    machine = {"x86_64": 62, "arm64": 183}[arch]
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    return ident + (2).to_bytes(2, "little") + machine.to_bytes(2, "little") + bytes(44)


@dataclass
class Result:
    function_error: str | None
    payload: Any
    log_tail: str


def _client(service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        # Bounded, so that a test can never hang on LocalStack's 905 s wait.
        config=Config(read_timeout=60, connect_timeout=5, retries={"max_attempts": 0}),
    )


@pytest.fixture(scope="session")
def lam() -> Any:
    if not ENDPOINT:
        pytest.skip("AWS_ENDPOINT_URL is not set: run these through `localstack/launcher test`")
    client = _client("lambda")
    _require_hostmode(client)
    return client


def _require_hostmode(lam: Any) -> None:
    """Stop at once, saying why, when the LocalStack found runs functions some other way
    (one another checkout started, with an older launcher or in Docker)."""
    name = f"hostmode-probe-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name, Runtime="provided.al2023", Handler="bootstrap", Role=ROLE,
        Code={"ZipFile": zip_of({"bootstrap": fake_bootstrap()})}, Architectures=[host_architecture()], Timeout=30,
    )  # fmt: skip
    try:
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 60})
        r = lam.invoke(FunctionName=name, Payload=b"{}")
        ok = "FunctionError" not in r
    except Exception as e:  # noqa: BLE001 - any failure means the same here
        ok, r = False, e
    finally:
        lam.delete_function(FunctionName=name)
    if not ok:
        pytest.exit(f"the LocalStack at {ENDPOINT} does not run functions with the hostmode executor ({r}); "
                    "stop it, or use another LOCALSTACK_PORT", returncode=1)  # fmt: skip


@pytest.fixture(scope="session")
def logs() -> Any:
    return _client("logs")


@pytest.fixture(scope="session")
def sqs() -> Any:
    return _client("sqs")


# Every function process an invocation reported, to check that none outlives the tests.
SEEN_PIDS: set[int] = set()


def invoke(lam: Any, name: str, event: object = None, **kwargs: Any) -> Result:
    r = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}), LogType="Tail", **kwargs)
    raw = r["Payload"].read()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw
    if isinstance(payload, dict) and isinstance(payload.get("pid"), int):
        SEEN_PIDS.add(payload["pid"])
    tail = base64.b64decode(r.get("LogResult", "")).decode(errors="replace")
    return Result(r.get("FunctionError"), payload, tail)


@pytest.fixture
def create_function(lam: Any) -> Iterator[Callable[..., str]]:
    """create_function(**overrides) -> name: a function running the fake bootstrap (or
    the given Code), Active when returned, deleted after the test."""
    names: list[str] = []

    def create(code: bytes | None = None, wait: bool = True, **overrides: Any) -> str:
        name = f"hostmode-{uuid.uuid4().hex[:10]}"
        params: dict[str, Any] = dict(
            FunctionName=name,
            Runtime="provided.al2023",
            Handler="bootstrap",
            Role=ROLE,
            Code={"ZipFile": code if code is not None else zip_of({"bootstrap": fake_bootstrap()})},
            Architectures=[host_architecture()],
            Timeout=10,
            MemorySize=128,
        )
        params.update(overrides)
        lam.create_function(**params)
        names.append(name)
        if wait:
            lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 60})
        return name

    yield create
    for name in names:
        try:
            lam.delete_function(FunctionName=name)
        except lam.exceptions.ResourceNotFoundException:
            pass


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_its_function() -> Iterator[None]:
    """Every test deletes its functions, so at the end every process they ran is gone.
    Waiting for that also lets LocalStack finish stopping them (about a second per
    function) before the launcher stops LocalStack."""
    yield
    wait_until(lambda: not any(alive(p) for p in SEEN_PIDS), 30, "function processes gone after their functions")


def alive(pid: int) -> bool:
    """Whether pid runs (a zombie does not count: its parent just has not reaped it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_until(condition: Callable[[], bool], timeout: float = 15, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


def find_log_lines(logs: Any, group: str, needle: str, timeout: float = 15) -> list[str]:
    """Messages in group containing needle, once there are any (LocalStack stores an
    invocation's logs from a background thread)."""
    found: list[str] = []

    def look() -> bool:
        # Filtered here: LocalStack's FilterLogEvents ignores a quoted-term filterPattern.
        try:
            pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group)
            found[:] = [e["message"] for page in pages for e in page["events"] if needle in e["message"]]
        except logs.exceptions.ResourceNotFoundException:
            return False
        return bool(found)

    wait_until(look, timeout, f"{needle!r} in {group}")
    return found
