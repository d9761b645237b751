"""Starting, ending and finding function processes.

Every function process runs in its own process group (so a kill reaches anything it
started) and gets SIGKILL when LocalStack dies (PR_SET_PDEATHSIG), so a LocalStack that
is killed outright leaves no runtime behind. What the kernel cannot cover (grandchildren
of a killed LocalStack) `kill_leftovers` finds by the code directory they run from.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with(parent: int) -> Callable[[], None]:
    """preexec_fn for a child that must not outlive `parent`. Resolved before the fork,
    as the child of a threaded process should do as little as possible."""
    prctl = _libc.prctl

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return setup


class Spawner:
    """Forks every function process from one thread that lives as long as LocalStack.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process,
    and LocalStack starts environments from short-lived worker threads: a child forked
    from one of those would be killed as soon as that thread finished."""

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[dict[str, Any], Future[subprocess.Popen[bytes]]]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def spawn(self, argv: list[str], *, env: dict[str, str], cwd: str) -> subprocess.Popen[bytes]:
        """Start argv with stdout and stderr on one pipe (their order kept, as Lambda
        interleaves them in one log stream); raises OSError as Popen does."""
        future: Future[subprocess.Popen[bytes]] = Future()
        self._ensure_thread()
        self._requests.put((dict(args=argv, env=env, cwd=cwd), future))
        return future.result()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hostmode-spawner", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        parent = os.getpid()
        while True:
            kwargs, future = self._requests.get()
            try:
                proc = subprocess.Popen(
                    **kwargs,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with(parent),
                    bufsize=0,
                )
            except BaseException as e:  # handed to the caller, whatever it is
                future.set_exception(e)
            else:
                future.set_result(proc)


SPAWNER = Spawner()


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send sig to the process group proc leads (it was started in a new session)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def max_rss_mb(pid: int) -> int | None:
    """Peak resident memory of pid in MB, as Lambda's "Max Memory Used"; None when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return -(-int(line.split()[1]) // 1024)
    except (OSError, ValueError, IndexError):
        pass
    return None


def exit_description(returncode: int) -> str:
    """An exit status worded as Lambda words it ("exit status 2", "signal: killed")."""
    if returncode < 0:
        try:
            name = signal.strsignal(-returncode) or f"signal {-returncode}"
        except ValueError:
            name = f"signal {-returncode}"
        return f"signal: {name.lower()}"
    return f"exit status {returncode}"


## ---- leftovers ---------------------------------------------------------------


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def find_leftovers(code_root: Path) -> Iterator[int]:
    """Pids of function processes running from code under code_root: a runtime
    (AWS_LAMBDA_RUNTIME_API set) whose task root or working directory lies there. The code
    root is one LocalStack's own, so another LocalStack's functions are never matched."""
    root = os.path.realpath(code_root)
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                environ = f.read().split(b"\0")
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
        except OSError:
            continue
        if not any(v.startswith(b"AWS_LAMBDA_RUNTIME_API=") for v in environ):
            continue
        task_root = next(
            (v.split(b"=", 1)[1].decode(errors="replace") for v in environ if v.startswith(b"LAMBDA_TASK_ROOT=")),
            "",
        )
        if (task_root and _is_under(os.path.realpath(task_root), root)) or _is_under(cwd, root):
            yield int(entry.name)


def kill_leftovers(code_root: Path) -> list[int]:
    killed = []
    for pid in find_leftovers(code_root):
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except OSError:
            pass
    return killed
