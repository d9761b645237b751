"""Which machine a bootstrap was built for, and whether it can run here.

A Lambda zip built for arm64 (the template's default) cannot run on an x86_64 host, and
exec would fail with a bare "exec format error". Reading the ELF header first lets the
invocation's error say what is wrong and how to build instead.
"""

from __future__ import annotations

import platform
from pathlib import Path

# e_machine values from the ELF specification, named as Lambda names architectures where
# Lambda has one; the others only make the message name what the file really is.
_MACHINES = {
    3: "x86 (32-bit)",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390x",
    40: "arm (32-bit)",
    62: "x86_64",
    183: "arm64",
    243: "riscv64",
}

_HOST_NAMES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
_GOARCH = {"x86_64": "amd64", "arm64": "arm64"}


def elf_architecture(path: Path) -> str | None:
    """The architecture `path` is an ELF executable for, or None when it is not ELF
    (a script with a #! line runs wherever its interpreter does)."""
    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    machine = int.from_bytes(head[18:20], "big" if head[5] == 2 else "little")
    return _MACHINES.get(machine, f"machine-{machine}")


def host_architecture() -> str:
    machine = platform.machine().lower()
    return _HOST_NAMES.get(machine, machine)


def architecture_refusal(
    binary: str | None, host: str, declared: str | None, ignore_declared: bool = False
) -> str | None:
    """Why a bootstrap of architecture `binary` must not run on `host` for a function that
    declares `declared`; None when it may. Lambda itself fails both cases (exec format
    error), so refusing the declared mismatch keeps local runs honest about deployments.
    `ignore_declared` is LocalStack's LAMBDA_IGNORE_ARCHITECTURE."""
    if binary is None:
        return None
    build = f"build with Architecture={host}" + (f" (GOARCH={_GOARCH[host]})" if host in _GOARCH else "")
    if binary != host:
        return f"bootstrap is an {binary} ELF binary but this host runs {host}: {build}"
    if declared and declared != binary and not ignore_declared:
        return (
            f"bootstrap is an {binary} ELF binary but the function declares Architectures "
            f"[{declared}], which Lambda would refuse too: {build} (or set LAMBDA_IGNORE_ARCHITECTURE=1)"
        )
    return None
