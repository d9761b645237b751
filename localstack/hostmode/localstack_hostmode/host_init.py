"""Lambda's init for one execution environment, played on the host.

In a Lambda container (and in LocalStack's Docker executor) an init binary starts the
function's `bootstrap`, serves it the Runtime API, and tells LocalStack over HTTP when the
environment is ready and how each invocation ended. HostInit does the same with a host
process, speaking the same HTTP in both directions:

- to the function: the Runtime API (GET .../invocation/next, POST .../response, .../error,
  .../init/error) and enough of the Extensions API for aws-lambda-go's SIGTERM opt-in;
- to LocalStack: POST {LOCALSTACK_RUNTIME_ENDPOINT}/status/{id}/ready or .../error once,
  then per invocation .../invocations/{request id}/logs and .../response or .../error;
- from LocalStack: POST /invoke on its own port, as ExecutorEndpoint.invoke sends it.

It also does what LocalStack leaves to the init: the function's timeout (LocalStack
would wait 905 s), a process that dies mid-invoke, and a new process for the next invoke
after either, as Lambda resets its sandbox.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import re
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import requests

from .elf import architecture_refusal, elf_architecture, host_architecture
from .logs import LogCollector, Report, init_failure_logs, invocation_logs, timeout_line
from .loopback import LoopbackServer, Reply, Request
from .process import SPAWNER, Spawner, exit_description, max_rss_mb, signal_group

LOG = logging.getLogger(__name__)

RUNTIME = "/2018-06-01/runtime"
EXTENSION = "/2020-01-01/extension"
# Lambda's limit on a buffered response, in the bytes its error message names.
MAX_RESPONSE_BYTES = 6291556
# Lambda gives a runtime that opted into SIGTERM (by registering an extension) this long
# to finish before SIGKILL.
SHUTDOWN_GRACE_S = 0.5
OUTPUT_CLOSE_WAIT_S = 2.0


@dataclass(frozen=True)
class FunctionSpec:
    function_name: str
    version: str
    task_root: Path
    env: dict[str, str]  # the function's environment but AWS_LAMBDA_RUNTIME_API
    timeout_s: int
    memory_size_mb: int
    handler: str = "bootstrap"
    architecture: str | None = None  # as declared (Architectures[0])
    ignore_declared_architecture: bool = False
    json_logs: bool = False

    @property
    def bootstrap(self) -> Path:
        return self.task_root / "bootstrap"


@dataclass
class Invocation:
    request_id: str
    function_arn: str
    payload: bytes
    trace_id: str
    deadline_ms: int
    dispatched: float | None = None  # monotonic time the runtime received it


## ---- what a Sandbox reports to its driver ------------------------------------


@dataclass(frozen=True)
class Ready:
    pass


@dataclass(frozen=True)
class InitFailed:
    error_type: str
    payload: bytes


@dataclass(frozen=True)
class Answered:
    request_id: str
    payload: bytes
    error_type: str | None  # None for a response
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Exited:
    returncode: int
    at: float = field(default_factory=time.monotonic)


Event = Ready | InitFailed | Answered | Exited


def error_payload(body: bytes, error_type: str | None, default_type: str = "Unhandled") -> tuple[bytes, str]:
    """The error a runtime posted, as the invoke's payload, and its type. A JSON object is
    passed on as it came (aws-lambda-go sends errorMessage/errorType/stackTrace); anything
    else becomes the message of an error of the header's type."""
    try:
        obj = json.loads(body) if body else None
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        return body, error_type or str(obj.get("errorType") or default_type)
    kind = error_type or default_type
    return json.dumps({"errorType": kind, "errorMessage": body.decode("utf-8", "replace")}).encode(), kind


def platform_error(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class Sandbox:
    """One function process, its Runtime API server (a port of its own, so a request from
    a process that was killed can never be taken for one from its successor) and its
    output. Events reach the driver (HostInit) through `events`."""

    def __init__(self, spec: FunctionSpec, spawner: Spawner) -> None:
        self.spec = spec
        self.events: queue.Queue[Event] = queue.Queue()
        self.exited = threading.Event()
        self.returncode: int | None = None
        self.max_memory_mb: int | None = None
        self._pending: queue.Queue[Invocation | None] = queue.Queue()
        self._lock = threading.Lock()
        self._current: Invocation | None = None  # handed to the runtime, not yet answered
        self._ready = False
        self._closed = threading.Event()
        self._shutdown_reason = "spindown"
        self._extensions: dict[str, list[str]] = {}
        self._server = LoopbackServer(self._handle, name=f"hostmode-api-{spec.function_name}")
        env = dict(spec.env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{self._server.port}")
        try:
            self.proc = spawner.spawn([str(spec.bootstrap)], env=env, cwd=str(spec.task_root))
        except OSError:
            self._server.close()
            raise
        assert self.proc.stdout is not None
        # The collector owns a copy of the pipe, so that closing it cannot race Popen's own.
        fd = os.dup(self.proc.stdout.fileno())
        self.proc.stdout.close()
        self.logs = LogCollector(fd)
        threading.Thread(target=self._watch, name=f"hostmode-wait-{self.proc.pid}", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _watch(self) -> None:
        returncode = self.proc.wait()
        # What the runtime started dies with it, as in a sandbox that Lambda resets. Right
        # after the wait, as the group's id is the runtime's pid, which is now free for reuse.
        signal_group(self.proc, signal.SIGKILL)
        self.returncode = returncode
        self.exited.set()
        self.events.put(Exited(returncode))

    def sample_memory(self) -> int | None:
        if (mb := max_rss_mb(self.proc.pid)) is not None and not self.exited.is_set():
            self.max_memory_mb = mb
        return self.max_memory_mb

    def deliver(self, invocation: Invocation) -> None:
        self._pending.put(invocation)

    def close(self, graceful: bool = False, reason: str = "spindown") -> None:
        """End the process (and its group) and the Runtime API server. Graceful is
        Lambda's shutdown: a runtime that registered an extension gets SIGTERM and a
        moment; otherwise, and after a timeout or crash, SIGKILL at once."""
        self._shutdown_reason = reason
        self._closed.set()
        if graceful and self._extensions and not self.exited.is_set():
            signal_group(self.proc, signal.SIGTERM)
            self.exited.wait(SHUTDOWN_GRACE_S)
        if not self.exited.is_set():
            signal_group(self.proc, signal.SIGKILL)  # the runtime and all it started
            self.exited.wait(5)
        self._pending.put(None)
        self._server.close()

    ## ---- Runtime API, on the server's threads ----

    def _handle(self, req: Request) -> Reply | None:
        path, method = req.path, req.method
        if method == "GET" and path == f"{RUNTIME}/invocation/next":
            return self._next()
        if method == "POST" and (m := re.fullmatch(f"{RUNTIME}/invocation/([^/]+)/(response|error)", path)):
            return self._answer(m[1], req, is_error=m[2] == "error")
        if method == "POST" and path == f"{RUNTIME}/init/error":
            return self._init_error(req)
        if method == "POST" and path == f"{EXTENSION}/register":
            return self._register_extension(req)
        if method == "GET" and path == f"{EXTENSION}/event/next":
            return self._extension_next(req)
        if method == "POST" and path == f"{EXTENSION}/init/error":
            return self._init_error(req)
        if method == "POST" and path == f"{EXTENSION}/exit/error":
            return Reply.json(202, {"status": "OK"})
        return Reply.json(404, {"errorType": "NotFound", "errorMessage": f"{method} {path} is not served here"})

    def _next(self) -> Reply | None:
        with self._lock:
            first, self._ready = not self._ready, True
        if first:
            self.events.put(Ready())
        invocation = self._pending.get()
        if invocation is None:
            return None
        with self._lock:
            invocation.dispatched = time.monotonic()
            self._current = invocation
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
        }
        if invocation.trace_id:
            headers["Lambda-Runtime-Trace-Id"] = invocation.trace_id
        return Reply(200, invocation.payload, headers)

    def _answer(self, request_id: str, req: Request, is_error: bool) -> Reply:
        with self._lock:
            if self._current is None or self._current.request_id != request_id:
                return Reply.json(400, {"errorType": "InvalidRequestID", "errorMessage": "Invalid request ID"})
            self._current = None
        reply = Reply.json(202, {"status": "OK"})
        if is_error:
            payload, kind = error_payload(req.body, req.header("Lambda-Runtime-Function-Error-Type"))
            event = Answered(request_id, payload, kind)
        elif trailer_type := req.trailers.get("lambda-runtime-function-error-type"):
            # aws-lambda-go met an error while streaming the response: its trailers carry it.
            body = req.trailers.get("lambda-runtime-function-error-body", "")
            try:
                payload = base64.b64decode(body, validate=True) if body else b""
            except ValueError:
                payload = b""
            event = Answered(request_id, error_payload(payload, trailer_type)[0], trailer_type)
        elif len(req.body) > MAX_RESPONSE_BYTES:
            message = f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            event = Answered(
                request_id, platform_error("Function.ResponseSizeTooLarge", message), "Function.ResponseSizeTooLarge"
            )
            reply = Reply.json(413, {"errorType": "RequestEntityTooLarge", "errorMessage": message})
        else:
            event = Answered(request_id, req.body, None)
        self.events.put(event)
        return reply

    def _init_error(self, req: Request) -> Reply:
        with self._lock:
            if self._ready:
                return Reply.json(403, {"errorType": "InvalidStateTransition", "errorMessage": "init has finished"})
        payload, kind = error_payload(req.body, req.header("Lambda-Runtime-Function-Error-Type"), "Runtime.Unknown")
        self.events.put(InitFailed(kind, payload))
        return Reply.json(202, {"status": "OK"})

    def _register_extension(self, req: Request) -> Reply:
        try:
            events = list(json.loads(req.body or b"{}").get("events") or [])
        except (ValueError, AttributeError):
            events = []
        ext_id = str(uuid.uuid4())
        with self._lock:
            self._extensions[ext_id] = events
        body = {
            "functionName": self.spec.function_name,
            "functionVersion": self.spec.version,
            "handler": self.spec.handler,
        }
        return Reply.json(200, body, {"Lambda-Extension-Identifier": ext_id})

    def _extension_next(self, req: Request) -> Reply | None:
        """Blocks until shutdown: INVOKE events are not sent (extensions come in layers,
        which are refused; aws-lambda-go's internal one subscribes to nothing)."""
        events = self._extensions.get(req.header("Lambda-Extension-Identifier") or "")
        if events is None:
            return Reply.json(
                403, {"errorType": "Extension.InvalidExtensionIdentifier", "errorMessage": "unknown extension"}
            )
        self._closed.wait()
        if "SHUTDOWN" not in events:
            return None
        deadline = int((time.time() + SHUTDOWN_GRACE_S) * 1000)
        return Reply.json(
            200, {"eventType": "SHUTDOWN", "shutdownReason": self._shutdown_reason, "deadlineMs": deadline}
        )


## ---- LocalStack's side ------------------------------------------------------


class Callbacks(Protocol):
    def ready(self) -> None: ...
    def startup_error(self, payload: bytes) -> None: ...
    def invocation_logs(self, request_id: str, logs: str) -> None: ...
    def invocation_response(self, request_id: str, payload: bytes) -> None: ...
    def invocation_error(self, request_id: str, payload: bytes) -> None: ...


class LocalStackCallbacks:
    """The routes of LocalStack's ExecutorEndpoint, over HTTP as its init reaches them."""

    def __init__(self, runtime_endpoint: str, runtime_id: str) -> None:
        self._base = runtime_endpoint.rstrip("/")
        self._id = runtime_id
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy from LocalStack's environment for a loopback call
        self._lock = threading.Lock()

    def _post(self, path: str, **kwargs: object) -> None:
        with self._lock:
            try:
                r = self._session.post(self._base + path, timeout=60, **kwargs)  # type: ignore[arg-type]
            except requests.RequestException as e:
                LOG.warning("hostmode: POST %s failed: %s", path, e)
                return
        if not r.ok:
            LOG.debug("hostmode: POST %s: HTTP %s", path, r.status_code)

    def ready(self) -> None:
        self._post(f"/status/{self._id}/ready")

    def startup_error(self, payload: bytes) -> None:
        self._post(f"/status/{self._id}/error", data=payload)

    def invocation_logs(self, request_id: str, logs: str) -> None:
        self._post(f"/invocations/{request_id}/logs", json={"logs": logs})

    def invocation_response(self, request_id: str, payload: bytes) -> None:
        self._post(f"/invocations/{request_id}/response", data=payload)

    def invocation_error(self, request_id: str, payload: bytes) -> None:
        self._post(f"/invocations/{request_id}/error", data=payload)


@dataclass(frozen=True)
class InitError:
    error_type: str
    message: str
    payload: bytes
    timed_out: bool = False

    @classmethod
    def platform(cls, error_type: str, message: str) -> InitError:
        return cls(error_type, message, platform_error(error_type, message))


@dataclass(frozen=True)
class Ending:
    """How an invocation ended, for its result and REPORT line."""

    status: str  # "success" (a response or the function's own error), "error", "timeout"
    error_type: str | None  # of a platform error, for REPORT
    payload: bytes
    is_error: bool
    at: float  # monotonic
    extra: list[str] = field(default_factory=list)  # lines the platform adds to the logs


class HostInit:
    """Runs one execution environment: `boot` for LocalStack's start, then one
    invocation at a time from POST /invoke on `port`, until `shutdown`."""

    def __init__(self, spec: FunctionSpec, callbacks: Callbacks, spawner: Spawner = SPAWNER) -> None:
        self.spec = spec
        self._callbacks = callbacks
        self._spawner = spawner
        self._lock = threading.Lock()
        self._busy = threading.Lock()
        self._stopped = threading.Event()
        self._sandbox: Sandbox | None = None
        self._carry = ""  # output not yet part of an invocation's logs (init, a process that died idle)
        self._init_ms: float | None = None  # of the last init, reported with the next invocation
        self._tail = ""
        self._boot: tuple[float, InitError | None] = (0.0, None)
        self._control = LoopbackServer(self._handle_control, name=f"hostmode-invoke-{spec.function_name}")
        self.port = self._control.port

    @property
    def pid(self) -> int | None:
        sb = self._sandbox
        return sb.pid if sb else None

    def output_tail(self) -> str:
        sb = self._sandbox
        return sb.logs.tail() if sb else self._tail

    def take_output(self) -> str:
        carry, self._carry = self._carry, ""
        return carry

    def boot(self) -> None:
        """The first init, as LocalStack starts the environment; reports ready or error."""
        started = time.monotonic()
        error = self._init(deadline=None)
        self._boot = ((time.monotonic() - started) * 1000, error)
        if self._stopped.is_set():
            return
        if error is None:
            self._callbacks.ready()
        else:
            self._callbacks.startup_error(error.payload)

    def boot_failure_logs(self) -> str:
        """The log of a boot that failed: LocalStack keeps no logs of an environment that
        did not start, so the executor stores these itself. A boot that LocalStack's
        startup timer stopped counts as a timeout."""
        duration_ms, error = self._boot
        if self._stopped.is_set() or error is None:
            return init_failure_logs(self.take_output(), duration_ms, "timeout", None, self.spec.json_logs)
        detail = (error.message, error.error_type)
        return init_failure_logs(self.take_output(), duration_ms, "error", detail, self.spec.json_logs)

    def shutdown(self) -> None:
        self._stopped.set()
        with self._lock:
            sb, self._sandbox = self._sandbox, None
        if sb:
            sb.close(graceful=True)
            self._tail = sb.logs.tail()
        self._control.close()

    ## ---- init ----

    def _refusal(self) -> InitError | None:
        bootstrap = self.spec.bootstrap
        if not bootstrap.is_file():
            return InitError.platform("Runtime.InvalidEntrypoint", f"Couldn't find valid bootstrap(s): [{bootstrap}]")
        if not os.access(bootstrap, os.X_OK):
            return InitError.platform("Runtime.InvalidEntrypoint", f"fork/exec {bootstrap}: permission denied")
        reason = architecture_refusal(
            elf_architecture(bootstrap),
            host_architecture(),
            self.spec.architecture,
            self.spec.ignore_declared_architecture,
        )
        return InitError.platform("Runtime.InvalidEntrypoint", reason) if reason else None

    def _init(self, deadline: float | None) -> InitError | None:
        """Start a process and wait for its first GET .../next (Lambda's "ready")."""
        started = time.monotonic()
        if refusal := self._refusal():
            return refusal
        try:
            sb = Sandbox(self.spec, self._spawner)
        except OSError as e:
            message = f"fork/exec {self.spec.bootstrap}: {(e.strerror or str(e)).lower()}"
            return InitError.platform("Runtime.InvalidEntrypoint", message)
        with self._lock:
            if self._stopped.is_set():
                sb.close()
                return InitError.platform("Runtime.Stopped", "the execution environment was stopped")
            self._sandbox = sb
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                event = sb.events.get(timeout=remaining)
            except queue.Empty:
                self._retire(sb)
                message = f"Task timed out after {self.spec.timeout_s:.2f} seconds"
                return InitError("Sandbox.Timedout", message, platform_error("Sandbox.Timedout", message), True)
            match event:
                case Ready():
                    self._init_ms = (time.monotonic() - started) * 1000
                    return None
                case InitFailed(error_type=kind, payload=payload):
                    self._retire(sb)
                    return InitError(kind, json.loads(payload).get("errorMessage", ""), payload)
                case Exited(returncode=code):
                    self._retire(sb)
                    return InitError.platform("Runtime.ExitError", self._exit_message(code))

    @staticmethod
    def _exit_message(code: int) -> str:
        return (
            "Runtime exited without providing a reason"
            if code == 0
            else f"Runtime exited with error: {exit_description(code)}"
        )

    def _retire(self, sb: Sandbox) -> None:
        """End a sandbox for good; what it wrote and nobody took goes to the next logs."""
        sb.close()
        sb.logs.wait_closed(OUTPUT_CLOSE_WAIT_S)
        self._carry += sb.logs.take()
        self._tail = sb.logs.tail()
        with self._lock:
            if self._sandbox is sb:
                self._sandbox = None

    ## ---- invocations ----

    def _handle_control(self, req: Request) -> Reply:
        if req.method == "POST" and req.path == "/invoke":
            payload = json.loads(req.body)
            name = f"hostmode-invoke-{payload.get('invoke-id', '')[:8]}"
            threading.Thread(target=self._invoke, args=(payload,), name=name, daemon=True).start()
            return Reply(202)
        return Reply.json(404, {"errorType": "NotFound"})

    def _invoke(self, payload: dict[str, str]) -> None:
        arrived = time.monotonic()
        invocation = Invocation(
            request_id=payload["invoke-id"],
            function_arn=payload.get("invoked-function-arn", ""),
            payload=(payload.get("payload") or "").encode(),
            trace_id=payload.get("trace-id", ""),
            deadline_ms=int(time.time() * 1000) + self.spec.timeout_s * 1000,
        )
        with self._busy:
            try:
                self._run(invocation, arrived, arrived + self.spec.timeout_s)
            except Exception as e:  # an invocation must always end, or LocalStack waits 905 s
                LOG.exception("hostmode: invocation %s failed", invocation.request_id)
                self._finish(invocation, "", platform_error("Runtime.Unknown", f"host-mode executor: {e}"), True)

    def _run(self, invocation: Invocation, arrived: float, deadline: float) -> None:
        sb = self._sandbox
        if sb is None or sb.exited.is_set():
            # Lambda's suppressed init: after a timeout or crash, the next invoke starts afresh.
            if sb is not None:
                self._retire(sb)
            if error := self._init(deadline):
                self._fail_init(invocation, arrived, error)
                return
            sb = self._sandbox
            assert sb is not None
        before = self.take_output() + sb.logs.take()
        init_ms, self._init_ms = self._init_ms, None
        sb.deliver(invocation)

        outcome = self._await(sb, invocation.request_id, deadline)
        memory = sb.sample_memory()
        ending = self._ending(sb, invocation.request_id, outcome, deadline)
        if ending.status != "success":  # the process is gone or going: collect all it wrote
            sb.exited.wait(5)
            sb.logs.wait_closed(OUTPUT_CLOSE_WAIT_S)
        output = sb.logs.take()
        if ending.status != "success":
            self._retire(sb)
        if self._stopped.is_set():
            return  # LocalStack stopped the environment and has given up on this invocation
        report = self._report(invocation.request_id, ending.at - (invocation.dispatched or arrived), memory, init_ms)
        report.status, report.error_type = ending.status, ending.error_type
        logs = before + invocation_logs(output, report, json_format=self.spec.json_logs, extra=ending.extra)
        self._finish(invocation, logs, ending.payload, ending.is_error)

    def _ending(self, sb: Sandbox, rid: str, outcome: Answered | Exited | None, deadline: float) -> Ending:
        if isinstance(outcome, Answered):
            return Ending("success", None, outcome.payload, outcome.error_type is not None, outcome.at)
        if outcome is None:  # timed out: Lambda kills the runtime and resets the sandbox
            signal_group(sb.proc, signal.SIGKILL)
            message = f"Task timed out after {self.spec.timeout_s:.2f} seconds"
            payload = platform_error("Sandbox.Timedout", f"RequestId: {rid} Error: {message}")
            return Ending("timeout", None, payload, True, deadline, [timeout_line(rid, self.spec.timeout_s)])
        message = f"RequestId: {rid} Error: {self._exit_message(outcome.returncode)}"
        payload = platform_error("Runtime.ExitError", message)
        return Ending("error", "Runtime.ExitError", payload, True, outcome.at, [message, "Runtime.ExitError"])

    def _fail_init(self, invocation: Invocation, arrived: float, error: InitError) -> None:
        """An invocation whose process could not be started: Lambda reports the init's
        error (or its timeout) as the invocation's, with what the process wrote."""
        rid = invocation.request_id
        report = self._report(rid, time.monotonic() - arrived, None, init_ms=None)
        if error.timed_out:
            report.status, extra = "timeout", [timeout_line(rid, self.spec.timeout_s)]
        else:
            report.status, report.error_type = "error", error.error_type
            extra = [f"RequestId: {rid} Error: {error.message}", error.error_type]
        logs = self.take_output() + invocation_logs("", report, json_format=self.spec.json_logs, extra=extra)
        self._finish(invocation, logs, error.payload, True)

    def _await(self, sb: Sandbox, request_id: str, deadline: float) -> Answered | Exited | None:
        """The runtime's answer, its exit, or None when the function's time is up."""
        while True:
            try:
                event = sb.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if isinstance(event, Answered) and event.request_id == request_id:
                return event
            if isinstance(event, Exited):
                return event

    def _report(self, request_id: str, seconds: float, memory: int | None, init_ms: float | None) -> Report:
        return Report(
            request_id=request_id,
            version=self.spec.version,
            duration_ms=seconds * 1000,
            memory_size_mb=self.spec.memory_size_mb,
            max_memory_used_mb=memory,
            init_duration_ms=init_ms,
        )

    def _finish(self, invocation: Invocation, logs: str, payload: bytes, is_error: bool) -> None:
        if self._stopped.is_set():
            return
        # Logs first: LocalStack attaches the logs it has when the result arrives.
        self._callbacks.invocation_logs(invocation.request_id, logs)
        if is_error:
            self._callbacks.invocation_error(invocation.request_id, payload)
        else:
            self._callbacks.invocation_response(invocation.request_id, payload)
