"""A function's output, split per invocation, and the lines Lambda adds around it.

LocalStack stores what an executor hands it as the invocation's logs in CloudWatch Logs
(/aws/lambda/<name>), one event per line, so the START/END/REPORT lines written here are
what a developer sees there.
"""

from __future__ import annotations

import json
import math
import os
import select
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

# LocalStack puts an invocation's logs in one PutLogEvents call, which has a 1 MB limit.
MAX_INVOCATION_LOG_BYTES = 512 * 1024
TAIL_BYTES = 64 * 1024


class LogCollector:
    """Reads a process's output pipe in the background and hands it out in pieces.

    `take` must return everything the process wrote before it posted its response: that
    write finished before the POST did, so it is in the pipe, but the reader thread may
    not have got to it yet. Both read under one lock, and `take` drains the pipe itself,
    so nothing written before the call is left behind."""

    def __init__(self, pipe_fd: int) -> None:
        self._fd = pipe_fd
        os.set_blocking(pipe_fd, False)
        self._lock = threading.Lock()
        self._buf = bytearray()
        self._dropped = 0
        self._tail = bytearray()
        self._eof = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostmode-logs", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        """Read what the pipe holds; call with the lock held."""
        while not self._eof.is_set():
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._eof.set()  # the reader thread closes the fd: it may be in select on it
                return
            self._buf += data
            self._tail += data
            if len(self._tail) > TAIL_BYTES:
                del self._tail[: len(self._tail) - TAIL_BYTES]
            if len(self._buf) > MAX_INVOCATION_LOG_BYTES:
                cut = len(self._buf) - MAX_INVOCATION_LOG_BYTES
                del self._buf[:cut]
                self._dropped += cut

    def _run(self) -> None:
        try:
            while not self._eof.is_set():
                select.select([self._fd], [], [])
                with self._lock:
                    self._drain()
        except (OSError, ValueError):
            self._eof.set()
        finally:
            with self._lock:
                os.close(self._fd)

    def take(self) -> str:
        """Everything written since the last take."""
        with self._lock:
            self._drain()
            data, dropped = bytes(self._buf), self._dropped
            self._buf.clear()
            self._dropped = 0
        text = data.decode("utf-8", errors="replace")
        if dropped:
            text = f"[{dropped} bytes of earlier output dropped]\n" + text
        return text

    def wait_closed(self, timeout: float) -> bool:
        """Wait for the end of output (the process and anything holding the pipe are gone)."""
        return self._eof.wait(timeout)

    def tail(self) -> str:
        with self._lock:
            return self._tail.decode("utf-8", errors="replace")


@dataclass
class Report:
    """What Lambda reports about one invocation."""

    request_id: str
    version: str
    duration_ms: float
    memory_size_mb: int
    max_memory_used_mb: int | None
    init_duration_ms: float | None = None
    status: str = "success"  # or "error", "timeout"
    error_type: str | None = None

    @property
    def billed_duration_ms(self) -> int:
        # Custom runtimes are billed for their init too, and Lambda bills whole milliseconds.
        return max(1, math.ceil(self.duration_ms + (self.init_duration_ms or 0)))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def invocation_logs(output: str, report: Report, *, json_format: bool = False, extra: list[str] | None = None) -> str:
    """The invocation's log text: START, the function's output, any lines the platform
    adds about a failure (`extra`), END and REPORT. With LoggingConfig LogFormat JSON,
    Lambda writes its own lines as platform.start/platform.report records instead."""
    lines: list[str] = []
    if json_format:
        lines.append(_record("platform.start", {"requestId": report.request_id, "version": report.version}))
    else:
        lines.append(f"START RequestId: {report.request_id} Version: {report.version}")
    if output:
        lines.append(output.rstrip("\n"))
    lines += extra or []
    if json_format:
        lines.append(_json_report(report))
    else:
        lines.append(f"END RequestId: {report.request_id}")
        lines.append(_text_report(report))
    return "\n".join(lines) + "\n"


def _text_report(r: Report) -> str:
    fields = [
        f"REPORT RequestId: {r.request_id}",
        f"Duration: {r.duration_ms:.2f} ms",
        f"Billed Duration: {r.billed_duration_ms} ms",
        f"Memory Size: {r.memory_size_mb} MB",
        f"Max Memory Used: {r.max_memory_used_mb or 0} MB",
    ]
    if r.init_duration_ms is not None:
        fields.append(f"Init Duration: {r.init_duration_ms:.2f} ms")
    if r.status != "success":
        fields.append(f"Status: {r.status}")
        if r.error_type:
            fields.append(f"Error Type: {r.error_type}")
    return "\t".join(fields) + "\t"


def _json_report(r: Report) -> str:
    metrics: dict[str, float | int] = {
        "durationMs": round(r.duration_ms, 3),
        "billedDurationMs": r.billed_duration_ms,
        "memorySizeMB": r.memory_size_mb,
        "maxMemoryUsedMB": r.max_memory_used_mb or 0,
    }
    if r.init_duration_ms is not None:
        metrics["initDurationMs"] = round(r.init_duration_ms, 3)
    record: dict[str, object] = {"requestId": r.request_id, "metrics": metrics, "status": r.status}
    if r.error_type:
        record["errorType"] = r.error_type
    return _record("platform.report", record)


def _record(kind: str, record: dict[str, object]) -> str:
    return json.dumps({"time": _now(), "type": kind, "record": record}, separators=(",", ":"))


def init_failure_logs(
    output: str, duration_ms: float, status: str, error: tuple[str, str] | None, json_format: bool
) -> str:
    """The log of an init that failed (status "error" or "timeout"): its output, the
    error (message, type) and INIT_REPORT, as Lambda writes them before any START."""
    lines = [output.rstrip("\n")] if output else []
    if error:
        lines += [f"Error: {error[0]}", error[1]]
    if json_format:
        record: dict[str, object] = {
            "initializationType": "on-demand",
            "phase": "init",
            "status": status,
            "metrics": {"durationMs": round(duration_ms, 3)},
        }
        if error:
            record["errorType"] = error[1]
        lines.append(_record("platform.initReport", record))
    else:
        fields = [f"INIT_REPORT Init Duration: {duration_ms:.2f} ms", "Phase: init", f"Status: {status}"]
        if error:
            fields.append(f"Error Type: {error[1]}")
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


def timeout_line(request_id: str, timeout_s: int) -> str:
    return f"{_now()} {request_id} Task timed out after {timeout_s:.2f} seconds"
