"""The hostmode executor driven through LocalStack's Lambda API, as the product uses it:
create_function with a zip holding a (fake) bootstrap, invoke, and what LocalStack makes
of the results (payloads, FunctionError, logs in CloudWatch Logs)."""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import (
    ENDPOINT,
    Result,
    alive,
    elf_header,
    find_log_lines,
    host_architecture,
    invoke,
    other_architecture,
    wait_until,
    zip_of,
)

REPORT = re.compile(
    r"REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t"
    r"Memory Size: (\d+) MB\tMax Memory Used: \d+ MB\t"
)


def test_cold_start_then_warm_reuse(lam: Any, create_function: Any) -> None:
    name = create_function(MemorySize=256)
    first = invoke(lam, name, {"hello": 1})
    assert first.function_error is None, first.payload
    assert first.payload["event"] == {"hello": 1}
    assert "Init Duration:" in first.log_tail
    m = REPORT.search(first.log_tail)
    assert m and m[1] == "256", first.log_tail
    assert f"START RequestId: {first.payload['request_id']} Version: $LATEST" in first.log_tail
    assert f"END RequestId: {first.payload['request_id']}" in first.log_tail

    for i in range(2):
        warm = invoke(lam, name, {"n": i})
        assert warm.payload["pid"] == first.payload["pid"], "a warm invoke must reuse the process"
        assert warm.payload["event"] == {"n": i}
        assert "Init Duration" not in warm.log_tail and REPORT.search(warm.log_tail)
    assert first.payload["arn"].endswith(f":function:{name}")


def test_parallel_invokes_get_their_own_environments(lam: Any, create_function: Any) -> None:
    name = create_function()
    with tempfile.TemporaryDirectory() as rendezvous:
        results: list[Result] = []
        event = {"action": "gather", "dir": rendezvous, "count": 2}
        threads = [threading.Thread(target=lambda: results.append(invoke(lam, name, event))) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert len(results) == 2 and all(r.function_error is None for r in results), results
    pids = {r.payload["pid"] for r in results}
    assert len(pids) == 2, "two invocations at once need two environments"
    # Each saw the other's pid: they really ran at the same time.
    assert all(len(r.payload["seen"]) == 2 for r in results)


def test_timeout_kills_the_runtime_and_the_next_invoke_starts_afresh(lam: Any, create_function: Any) -> None:
    name = create_function(Timeout=2)
    pid = invoke(lam, name).payload["pid"]

    timed_out = invoke(lam, name, {"action": "sleep", "seconds": 30})
    assert timed_out.function_error == "Unhandled"
    assert timed_out.payload["errorType"] == "Sandbox.Timedout"
    assert timed_out.payload["errorMessage"].endswith("Task timed out after 2.00 seconds")
    assert "Task timed out after 2.00 seconds" in timed_out.log_tail and "Status: timeout" in timed_out.log_tail
    wait_until(lambda: not alive(pid), 5, "timed-out runtime gone")

    again = invoke(lam, name)
    assert again.function_error is None and again.payload["pid"] != pid
    assert "Init Duration:" in again.log_tail


def test_crash_mid_invoke_is_an_exit_error_and_the_next_invoke_starts_afresh(lam: Any, create_function: Any) -> None:
    name = create_function()
    pid = invoke(lam, name).payload["pid"]

    crashed = invoke(lam, name, {"action": "exit", "code": 2})
    assert crashed.function_error == "Unhandled"
    assert crashed.payload["errorType"] == "Runtime.ExitError"
    assert crashed.payload["errorMessage"].endswith("Error: Runtime exited with error: exit status 2")
    assert "fake: exiting mid-invocation" in crashed.log_tail
    assert "Error Type: Runtime.ExitError" in crashed.log_tail

    again = invoke(lam, name)
    assert again.function_error is None and again.payload["pid"] != pid


def test_handler_error_is_the_function_error_and_keeps_the_runtime(lam: Any, create_function: Any) -> None:
    name = create_function()
    pid = invoke(lam, name).payload["pid"]

    failed = invoke(lam, name, {"action": "fail", "type": "Fake.Error", "message": "boom"})
    assert failed.function_error == "Unhandled"
    assert failed.payload == {"errorType": "Fake.Error", "errorMessage": "boom"}

    streamed = invoke(lam, name, {"action": "stream_error"})
    assert streamed.function_error == "Unhandled"
    assert streamed.payload == {"errorType": "Fake.StreamBroke", "errorMessage": "stream broke"}

    assert invoke(lam, name).payload["pid"] == pid


def test_init_error_posted_by_the_runtime(lam: Any, create_function: Any) -> None:
    name = create_function(Environment={"Variables": {"FAKE_INIT": "error"}})
    r = invoke(lam, name)
    assert r.function_error == "Unhandled"
    assert r.payload == {"errorType": "Fake.InitFailed", "errorMessage": "fake init failed on purpose"}


def test_runtime_exiting_before_ready_is_an_init_error(lam: Any, logs: Any, create_function: Any) -> None:
    name = create_function(Environment={"Variables": {"FAKE_INIT": "exit:3"}})
    r = invoke(lam, name)
    assert r.function_error == "Unhandled"
    assert r.payload == {"errorType": "Runtime.ExitError", "errorMessage": "Runtime exited with error: exit status 3"}
    # What it wrote reaches its log group, as on Lambda (LocalStack itself drops it).
    group = f"/aws/lambda/{name}"
    assert find_log_lines(logs, group, "fake: exiting during init")
    report = find_log_lines(logs, group, "INIT_REPORT")[0]
    assert "Phase: init\tStatus: error\tError Type: Runtime.ExitError" in report


def test_delete_stops_the_runtime(lam: Any, create_function: Any) -> None:
    name = create_function()
    pids = {invoke(lam, name).payload["pid"]}
    lam.delete_function(FunctionName=name)
    wait_until(lambda: not any(alive(p) for p in pids), 15, "runtime gone after DeleteFunction")


def test_update_replaces_the_runtime(lam: Any, create_function: Any) -> None:
    name = create_function(Environment={"Variables": {"GENERATION": "1"}})
    before = invoke(lam, name).payload
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"GENERATION": "2"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 60})
    wait_until(lambda: not alive(before["pid"]), 15, "old runtime gone after UpdateFunctionConfiguration")
    after = invoke(lam, name).payload
    assert after["pid"] != before["pid"] and after["env"]["GENERATION"] == "2"


# What a function may see: Lambda's variables (those LocalStack defines, and those an
# init adds), LocalStack's pointers to itself, and the function's own.
LAMBDA_VARIABLES = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION",
    "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_TIMEOUT",
    "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API", "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS",
    "_AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_PORT", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "_HANDLER",
    "AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL", "LANG", "LD_LIBRARY_PATH", "PATH", "TZ",
    "AWS_ENDPOINT_URL", "LOCALSTACK_HOSTNAME", "EDGE_PORT",
}  # fmt: skip


def test_environment_is_lambdas_and_the_functions_own(lam: Any, create_function: Any) -> None:
    name = create_function(MemorySize=192, Environment={"Variables": {"MY_SETTING": "42"}})
    r = invoke(lam, name)
    env, port = r.payload["env"], ENDPOINT.rsplit(":", 1)[1]

    assert set(env) - LAMBDA_VARIABLES == {"MY_SETTING"}, "only Lambda's variables and the function's own"
    for leak in ("HOME", "AWS_PROFILE", "HOSTMODE_CANARY", "USER", "VIRTUAL_ENV", "PYTHONPATH"):
        assert leak not in env
    assert env["MY_SETTING"] == "42"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "192"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_REGION"] == "us-east-1" and env["_HANDLER"] == "bootstrap"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    assert env["LAMBDA_TASK_ROOT"] == r.payload["cwd"] != "/var/task"
    assert os.path.isfile(os.path.join(env["LAMBDA_TASK_ROOT"], "bootstrap"))
    assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
    assert env["LOCALSTACK_HOSTNAME"] == "127.0.0.1" and env["EDGE_PORT"] == port
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"


def test_function_reaches_localstack_with_its_own_credentials(lam: Any, create_function: Any) -> None:
    name = create_function(Timeout=60)  # importing boto3 and making a client take seconds on a busy machine
    r = invoke(lam, name, {"action": "whoami"})
    assert r.function_error is None, r.payload
    assert r.payload["arn"].startswith("arn:aws:sts::000000000000:assumed-role/hostmode-test/")


@pytest.mark.parametrize("declared", ["binary's", "host's"])
def test_bootstrap_for_another_architecture_is_refused(lam: Any, create_function: Any, declared: str) -> None:
    """The template's default: an arm64 build on an x86_64 host, declared either way."""
    other, host = other_architecture(), host_architecture()
    name = create_function(
        code=zip_of({"bootstrap": elf_header(other)}), Architectures=[other if declared == "binary's" else host]
    )
    r = invoke(lam, name)
    assert r.function_error == "Unhandled"
    assert r.payload["errorType"] == "Runtime.InvalidEntrypoint"
    assert r.payload["errorMessage"].startswith(
        f"bootstrap is an {other} ELF binary but this host runs {host}: build with Architecture={host}"
    )


def test_bootstrap_whose_architecture_differs_from_the_declared_one_is_refused(lam: Any, create_function: Any) -> None:
    host = host_architecture()
    name = create_function(code=zip_of({"bootstrap": elf_header(host)}), Architectures=[other_architecture()])
    r = invoke(lam, name)
    assert r.function_error == "Unhandled"
    assert (
        f"bootstrap is an {host} ELF binary but the function declares Architectures [{other_architecture()}]"
        in (r.payload["errorMessage"])
    )


def test_missing_bootstrap_is_an_init_error(lam: Any, create_function: Any) -> None:
    name = create_function(code=zip_of({"main": b"#!/bin/sh\n"}))
    r = invoke(lam, name)
    assert r.function_error == "Unhandled"
    assert r.payload["errorType"] == "Runtime.InvalidEntrypoint"
    assert r.payload["errorMessage"].startswith("Couldn't find valid bootstrap(s)")


def test_other_runtimes_are_refused(lam: Any, create_function: Any) -> None:
    name = create_function(
        Runtime="python3.12", Handler="index.handler", code=zip_of({"index.py": b"def handler(e, c): pass\n"})
    )
    with pytest.raises(ClientError) as e:
        invoke(lam, name)
    assert "runtime python3.12 cannot run in LocalStack host mode" in str(e.value)


def test_layers_are_refused(lam: Any, create_function: Any) -> None:
    layer = f"hostmode-{uuid.uuid4().hex[:8]}"
    arn = lam.publish_layer_version(LayerName=layer, Content={"ZipFile": zip_of({"bin/tool": b"#!/bin/sh\n"})})[
        "LayerVersionArn"
    ]
    try:
        name = create_function(Layers=[arn])
        with pytest.raises(ClientError) as e:
            invoke(lam, name)
        assert "layers are not supported in LocalStack host mode" in str(e.value)
    finally:
        lam.delete_layer_version(LayerName=layer, VersionNumber=1)


def test_logs_reach_cloudwatch_logs(lam: Any, logs: Any, create_function: Any) -> None:
    name = create_function()
    marker = uuid.uuid4().hex
    r = invoke(lam, name, {"action": "print", "lines": [f"out {marker}"], "errors": [f"err {marker}"]})
    group = f"/aws/lambda/{name}"
    assert sorted(find_log_lines(logs, group, marker)) == [f"err {marker}\n", f"out {marker}\n"]
    report = find_log_lines(logs, group, f"REPORT RequestId: {r.payload['request_id']}")
    assert REPORT.search(report[0]) and "Init Duration:" in report[0]


def test_event_invocation_runs_and_logs(lam: Any, logs: Any, create_function: Any) -> None:
    name = create_function()
    marker = uuid.uuid4().hex
    resp = lam.invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps({"action": "print", "lines": [marker]})
    )
    assert resp["StatusCode"] == 202
    assert find_log_lines(logs, f"/aws/lambda/{name}", marker) == [f"{marker}\n"]


def test_json_log_format_writes_platform_records(lam: Any, create_function: Any) -> None:
    name = create_function(LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO"})
    r = invoke(lam, name)
    records = [json.loads(line) for line in r.log_tail.splitlines() if line.startswith("{")]
    kinds = [rec["type"] for rec in records]
    assert kinds == ["platform.start", "platform.report"], r.log_tail
    metrics = records[1]["record"]["metrics"]
    assert {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs"} <= set(metrics)
    assert r.payload["env"]["AWS_LAMBDA_LOG_FORMAT"] == "JSON"
