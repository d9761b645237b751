"""The executor's parts on their own, without LocalStack: the ELF check, the function's
environment, chunked bodies, the log lines, HostInit serving a fake bootstrap to a
recording stand-in for LocalStack, and the SQS event source mapping shim over a fake poller."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import alive, elf_header, fake_bootstrap, wait_until
from localstack_hostmode.elf import architecture_refusal, elf_architecture
from localstack_hostmode.environment import function_environment
from localstack_hostmode.host_init import MAX_RESPONSE_BYTES, FunctionSpec, HostInit, error_payload
from localstack_hostmode.logs import Report, init_failure_logs, invocation_logs
from localstack_hostmode.loopback import read_chunked
from localstack_hostmode.process import exit_description, find_leftovers, kill_leftovers


def test_elf_architecture(tmp_path: Path) -> None:
    for arch in ("x86_64", "arm64"):
        (tmp_path / arch).write_bytes(elf_header(arch))
        assert elf_architecture(tmp_path / arch) == arch
    (tmp_path / "script").write_bytes(b"#!/bin/sh\necho hi\n")
    assert elf_architecture(tmp_path / "script") is None
    assert elf_architecture(Path(sys.executable)) in ("x86_64", "arm64")


def test_architecture_refusal() -> None:
    assert architecture_refusal("arm64", "x86_64", "arm64") == (
        "bootstrap is an arm64 ELF binary but this host runs x86_64: build with Architecture=x86_64 (GOARCH=amd64)"
    )
    assert "declares Architectures [arm64]" in (architecture_refusal("x86_64", "x86_64", "arm64") or "")
    assert architecture_refusal("x86_64", "x86_64", "arm64", ignore_declared=True) is None
    assert architecture_refusal("x86_64", "x86_64", "x86_64") is None
    assert architecture_refusal(None, "x86_64", "arm64") is None  # a script


def test_function_environment_has_only_lambdas_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for leak in ("HOME", "AWS_PROFILE", "HOSTMODE_CANARY"):
        monkeypatch.setenv(leak, "host")
    localstack_env = {
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": 128,  # LocalStack hands some as ints
        "AWS_LAMBDA_FUNCTION_TIMEOUT": 3,
        "LAMBDA_TASK_ROOT": "/var/task",
        "LOCALSTACK_RUNTIME_ENDPOINT": "http://127.0.0.1:4566/_localstack_lambda/x",
        "LOCALSTACK_RUNTIME_ID": "x",
        "LOCALSTACK_MAX_PAYLOAD_SIZE": 6291556,
        "MINE": "1",
    }
    env = function_environment(localstack_env, task_root="/code", user_env={"MINE": "1"})
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128" and env["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "3"
    assert env["LAMBDA_TASK_ROOT"] == "/code" and env["MINE"] == "1"
    assert not {"HOME", "AWS_PROFILE", "HOSTMODE_CANARY"} & set(env)
    assert not any(k.startswith("LOCALSTACK_RUNTIME") or k == "LOCALSTACK_MAX_PAYLOAD_SIZE" for k in env)
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    # A function may set a variable that is otherwise the init's own.
    env = function_environment(
        {"LOCALSTACK_RUNTIME_ID": "mine"}, task_root="/code", user_env={"LOCALSTACK_RUNTIME_ID": "mine"}
    )
    assert env["LOCALSTACK_RUNTIME_ID"] == "mine"


def test_read_chunked() -> None:
    body = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nLambda-Runtime-Function-Error-Type: Oops\r\nX-Other: 1\r\n\r\n"
    data, trailers = read_chunked(io.BytesIO(body))
    assert data == b"hello, world"
    assert trailers == {"lambda-runtime-function-error-type": "Oops", "x-other": "1"}
    assert read_chunked(io.BytesIO(b"0\r\n\r\n")) == (b"", {})
    for broken in (b"5\r\nhel", b"zz\r\n", b"3\r\nabcXX0\r\n\r\n"):
        with pytest.raises(ValueError):
            read_chunked(io.BytesIO(broken))


def test_invocation_logs_text_and_json() -> None:
    report = Report("rid", "$LATEST", 1.234, 128, 20, init_duration_ms=50.5)
    text = invocation_logs("hello\n", report).splitlines()
    assert text[:3] == ["START RequestId: rid Version: $LATEST", "hello", "END RequestId: rid"]
    assert text[3] == (
        "REPORT RequestId: rid\tDuration: 1.23 ms\tBilled Duration: 52 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 20 MB\tInit Duration: 50.50 ms\t"
    )
    report = Report("rid", "$LATEST", 3000.0, 128, 20, status="timeout")
    assert invocation_logs("", report).splitlines()[-1].endswith("\tStatus: timeout\t")
    start, *_, last = invocation_logs("out\n", report, json_format=True).splitlines()
    assert json.loads(start)["type"] == "platform.start"
    assert json.loads(last)["record"]["status"] == "timeout"


def test_init_failure_logs() -> None:
    text = init_failure_logs(
        "booting\n", 12.5, "error", ("Runtime exited with error: exit status 2", "Runtime.ExitError"), False
    )
    assert text.splitlines() == [
        "booting",
        "Error: Runtime exited with error: exit status 2",
        "Runtime.ExitError",
        "INIT_REPORT Init Duration: 12.50 ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError",
    ]
    record = json.loads(init_failure_logs("", 3.0, "timeout", None, True))
    assert record["type"] == "platform.initReport" and record["record"]["status"] == "timeout"


def test_error_payload() -> None:
    body = b'{"errorMessage":"bad","errorType":"errorString"}'
    assert error_payload(body, None) == (body, "errorString")
    payload, kind = error_payload(b"plain text", "My.Error")
    assert kind == "My.Error" and json.loads(payload) == {"errorType": "My.Error", "errorMessage": "plain text"}


def test_exit_description() -> None:
    assert exit_description(2) == "exit status 2"
    assert exit_description(-signal.SIGKILL) == "signal: killed"


class Recorder:
    """LocalStack's side of HostInit, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.done = threading.Event()

    def ready(self) -> None:
        self.calls.append(("ready", None))

    def startup_error(self, payload: bytes) -> None:
        self.calls.append(("startup_error", json.loads(payload)))

    def invocation_logs(self, request_id: str, logs: str) -> None:
        self.calls.append(("logs", logs))

    def invocation_response(self, request_id: str, payload: bytes) -> None:
        self.calls.append(("response", json.loads(payload)))
        self.done.set()

    def invocation_error(self, request_id: str, payload: bytes) -> None:
        self.calls.append(("error", json.loads(payload)))
        self.done.set()


@pytest.fixture
def host_init(tmp_path: Path):
    (tmp_path / "bootstrap").write_bytes(fake_bootstrap())
    (tmp_path / "bootstrap").chmod(0o755)
    spec = FunctionSpec("fn", "$LATEST", tmp_path, {"PATH": "/usr/bin:/bin"}, timeout_s=5, memory_size_mb=128)
    recorder = Recorder()
    init = HostInit(spec, recorder)
    yield init, recorder
    init.shutdown()


def send(init: HostInit, recorder: Recorder, event: object) -> tuple[str, object]:
    recorder.done.clear()
    payload = {"invoke-id": "rid-1", "invoked-function-arn": "arn", "payload": json.dumps(event), "trace-id": ""}
    assert requests.post(f"http://127.0.0.1:{init.port}/invoke", json=payload, timeout=10).status_code == 202
    assert recorder.done.wait(20)
    return recorder.calls[-1]


def test_host_init_boots_invokes_and_shuts_down(host_init) -> None:
    init, recorder = host_init
    init.boot()
    assert recorder.calls == [("ready", None)]
    pid = init.pid
    assert pid and alive(pid)
    kind, answer = send(init, recorder, {"hello": 1})
    assert kind == "response" and answer["event"] == {"hello": 1} and answer["pid"] == pid  # type: ignore[index]
    assert recorder.calls[-2][0] == "logs" and "fake: init" in str(recorder.calls[-2][1])

    kind, answer = send(init, recorder, {"action": "big", "size": MAX_RESPONSE_BYTES + 1})
    assert kind == "error" and answer["errorType"] == "Function.ResponseSizeTooLarge"  # type: ignore[index]

    init.shutdown()
    wait_until(lambda: not alive(pid), 5, "runtime gone after shutdown")


def test_children_die_with_their_parent(tmp_path: Path) -> None:
    """A LocalStack killed with SIGKILL takes its function processes with it."""
    script = textwrap.dedent(
        """
        import sys, time
        from localstack_hostmode.process import SPAWNER
        proc = SPAWNER.spawn(["/bin/sleep", "60"], env={}, cwd="/")
        print(proc.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
    finally:
        parent.kill()
        parent.wait()
    wait_until(lambda: not alive(child), 5, "child gone after its parent was killed")


def test_leftovers_are_found_by_their_code_directory(tmp_path: Path) -> None:
    code = tmp_path / "lambda" / "fn" / "code"
    code.mkdir(parents=True)
    env = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1", "LAMBDA_TASK_ROOT": str(code)}
    ours = subprocess.Popen(["/bin/sleep", "60"], cwd=code, env=env)
    other = subprocess.Popen(["/bin/sleep", "60"], cwd=tmp_path, env={"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1"})
    try:
        assert list(find_leftovers(tmp_path / "lambda")) == [ours.pid]
        assert kill_leftovers(tmp_path / "lambda") == [ours.pid]
        assert ours.wait(5) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        for p in (ours, other):
            p.kill()
            p.wait()
    assert not os.path.exists(f"/proc/{ours.pid}/cwd")


# ---- the SQS event source mapping shim (esm.py) -------------------------------------


class FakeSqs:
    """receive_message over a list of messages, as the poller's SQS client."""

    def __init__(self, count: int, error: Exception | None = None) -> None:
        self.pending = [{"MessageId": str(i), "Attributes": {}} for i in range(count)]
        self.error = error
        self.calls = 0
        self.lock = threading.Lock()

    def receive_message(self, **params: object) -> dict:
        with self.lock:
            self.calls += 1
            if self.error:
                raise self.error
            n = params["MaxNumberOfMessages"]
            assert isinstance(n, int)
            taken, self.pending = self.pending[:n], self.pending[n:]
            return {"Messages": taken}


class FakePoller:
    """What ConcurrentPolling uses of LocalStack's SqsPoller; handle_messages records
    its batches and how many run at once."""

    def __init__(self, count: int, batch_size: int = 5, error: Exception | None = None, fail: bool = False) -> None:
        self.source_client = FakeSqs(count, error)
        self.queue_url = "http://127.0.0.1/000000000000/q"
        self.source_arn = "arn:aws:sqs:us-east-1:000000000000:q"
        self.batch_size = batch_size
        self.maximum_batching_window = 0
        self.fail = fail
        self.batches: list[list[str]] = []
        self.running = self.peak = 0
        self.lock = threading.Lock()

    def handle_messages(self, messages: list[dict]) -> None:
        with self.lock:
            self.batches.append([m["MessageId"] for m in messages])
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
        if self.fail:
            raise RuntimeError("function failed")


def test_esm_polling_keeps_k_batches_in_flight() -> None:
    from localstack.services.lambda_.event_source_mapping.pollers.poller import EmptyPollResultsException
    from localstack_hostmode.esm import ConcurrentPolling

    poller = FakePoller(23)
    polling = ConcurrentPolling(3, threading.Event(), "test")
    polling.poll(poller)
    assert sorted(int(i) for b in poller.batches for i in b) == list(range(23))
    assert max(len(b) for b in poller.batches) == 5
    assert poller.peak == 3
    with pytest.raises(EmptyPollResultsException):
        polling.poll(poller)


def test_esm_polling_failed_batches_are_logged_and_the_poll_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    from localstack_hostmode.esm import ConcurrentPolling

    poller = FakePoller(12, fail=True)
    ConcurrentPolling(2, threading.Event(), "test").poll(poller)
    assert sum(len(b) for b in poller.batches) == 12
    assert "Polling or batch processing failed: function failed" in caplog.text


def test_esm_polling_stops_and_raises_receive_errors() -> None:
    from localstack.services.lambda_.event_source_mapping.pollers.poller import EmptyPollResultsException
    from localstack_hostmode.esm import ConcurrentPolling

    stopped = threading.Event()
    stopped.set()
    poller = FakePoller(10)
    with pytest.raises(EmptyPollResultsException):
        ConcurrentPolling(3, stopped, "test").poll(poller)
    assert poller.source_client.calls == 0

    poller = FakePoller(10, error=ConnectionError("queue gone"))
    with pytest.raises(ConnectionError):
        ConcurrentPolling(3, threading.Event(), "test").poll(poller)


def test_esm_shim_applies_only_to_sqs_mappings_with_maximum_concurrency() -> None:
    from localstack.services.lambda_.event_source_mapping.pollers.sqs_poller import SqsPoller
    from localstack_hostmode import esm

    assert esm.maximum_concurrency({}) is None
    assert esm.maximum_concurrency({"ScalingConfig": {}}) is None
    assert esm.maximum_concurrency({"ScalingConfig": {"MaximumConcurrency": 3}}) == 3

    class Worker:
        uuid = "u"
        _shutdown_event = threading.Event()

        def __init__(self, poller: object) -> None:
            self.poller = poller

    class Factory:
        def __init__(self, config: dict) -> None:
            self.esm_config = config

    sqs_poller = object.__new__(SqsPoller)
    worker = esm._get_esm_worker(lambda f: Worker(sqs_poller), Factory({"ScalingConfig": {"MaximumConcurrency": 4}}))
    assert worker.poller.hostmode_concurrency.k == 4
    assert worker.poller.hostmode_concurrency.stop is Worker._shutdown_event
    for config in ({}, {"ScalingConfig": {}}):
        plain = object.__new__(SqsPoller)
        assert not hasattr(esm._get_esm_worker(lambda f: Worker(plain), Factory(config)).poller, "hostmode_concurrency")
    other = object()  # a Kinesis or DynamoDB poller
    with_k = Factory({"ScalingConfig": {"MaximumConcurrency": 4}})
    assert esm._get_esm_worker(lambda f: Worker(other), with_k).poller is other


def test_esm_shim_patches_localstacks_poller() -> None:
    from localstack.services.lambda_.event_source_mapping.pollers.poller import EmptyPollResultsException
    from localstack.services.lambda_.event_source_mapping.pollers.sqs_poller import SqsPoller
    from localstack_hostmode import esm

    original = SqsPoller.poll_events
    esm.install()
    try:
        esm.install()  # once only
        assert len(esm.PATCHES.patches) == 2
        assert SqsPoller.poll_events is not original

        class Polling:
            polled: list[object] = []

            def poll(self, poller: object) -> None:
                self.polled.append(poller)

        with_k = object.__new__(SqsPoller)
        with_k.hostmode_concurrency = Polling()  # type: ignore[attr-defined]
        with_k.poll_events()
        assert Polling.polled == [with_k]

        # Without it, LocalStack's own poll_events runs (here on an empty queue).
        plain = FakePoller(0)
        with pytest.raises(EmptyPollResultsException):
            SqsPoller.poll_events(plain)  # type: ignore[arg-type]
        assert plain.source_client.calls == 1
    finally:
        esm.PATCHES.undo()
        esm.PATCHES.patches.clear()
    assert SqsPoller.poll_events is original


def test_esm_polling_an_empty_queue_costs_one_receive() -> None:
    from localstack.services.lambda_.event_source_mapping.pollers.poller import EmptyPollResultsException
    from localstack_hostmode.esm import ConcurrentPolling

    poller = FakePoller(0)
    with pytest.raises(EmptyPollResultsException):
        ConcurrentPolling(50, threading.Event(), "test").poll(poller)
    assert poller.source_client.calls == 1
