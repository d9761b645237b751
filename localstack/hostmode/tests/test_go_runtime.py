"""A real aws-lambda-go function (testdata/gofn) through the executor: the client the
product's function uses, with its keep-alive connection, chunked bodies with trailers
and the extension it registers for SIGTERM. Skipped where Go is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import HERE, host_architecture, invoke, other_architecture, zip_of

GOARCH = {"x86_64": "amd64", "arm64": "arm64"}


def build(tmp: Path, arch: str) -> bytes:
    go = shutil.which("go")
    if not go:
        pytest.skip("go is not installed")
    out = tmp / f"bootstrap-{arch}"
    env = dict(os.environ, GOOS="linux", GOARCH=GOARCH[arch], CGO_ENABLED="0", GOWORK="off", GOFLAGS="-mod=readonly")
    subprocess.run([go, "build", "-trimpath", "-o", str(out), "."], cwd=HERE / "testdata" / "gofn", env=env, check=True)
    return out.read_bytes()


@pytest.fixture(scope="module")
def gofn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("gofn")
    return {arch: build(tmp, arch) for arch in (host_architecture(), other_architecture())}


def test_go_function_runs_warm_and_reports_errors(lam: Any, create_function: Any, gofn: dict[str, bytes]) -> None:
    name = create_function(code=zip_of({"bootstrap": gofn[host_architecture()]}))
    first = invoke(lam, name, {"message": "one"})
    assert first.function_error is None and first.payload["message"] == "one"
    assert "gofn: handled one" in first.log_tail and "Init Duration:" in first.log_tail
    # WithEnableSIGTERM registered its extension: no warning that it could not.
    assert "Failed to register internal extension" not in first.log_tail

    failed = invoke(lam, name, {"action": "fail", "message": "bad"})
    assert failed.function_error == "Unhandled"
    assert failed.payload == {"errorMessage": "bad", "errorType": "errorString"}
    assert invoke(lam, name, {"message": "two"}).payload["pid"] == first.payload["pid"]

    panicked = invoke(lam, name, {"action": "panic", "message": "oops"})
    assert panicked.function_error == "Unhandled" and panicked.payload["errorType"] == "string"
    # aws-lambda-go exits after a panic: the next invoke gets a new process.
    after = invoke(lam, name, {"message": "three"})
    assert after.function_error is None and after.payload["pid"] != first.payload["pid"]


def test_go_function_built_for_another_architecture_is_refused(
    lam: Any, create_function: Any, gofn: dict[str, bytes]
) -> None:
    other, host = other_architecture(), host_architecture()
    name = create_function(code=zip_of({"bootstrap": gofn[other]}), Architectures=[other])
    r = invoke(lam, name)
    assert r.function_error == "Unhandled"
    assert r.payload["errorMessage"].startswith(f"bootstrap is an {other} ELF binary but this host runs {host}")
