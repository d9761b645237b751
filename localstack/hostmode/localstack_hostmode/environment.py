"""The environment a function process gets: Lambda's variables and the function's own.

Nothing of the host's environment gets through (LocalStack's AWS profile, HOME, proxies,
a developer's PATH), because a function that works here only thanks to one of those
would fail on Lambda.
"""

from __future__ import annotations

from collections.abc import Mapping

# What Lambda's provided.al2023 runtime has, without the paths that exist only there
# (/opt/bin, /var/lang/lib, ...).
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

# Variables LocalStack passes for its own init to consume; Lambda's runtime never sees an
# init's configuration, so neither does the function here (unless it sets one itself).
INIT_ONLY = frozenset(
    {
        "LOCALSTACK_RUNTIME_ID",
        "LOCALSTACK_RUNTIME_ENDPOINT",
        "LOCALSTACK_FUNCTION_ACCOUNT_ID",
        "LOCALSTACK_CHMOD_PATHS",
        "LOCALSTACK_USER",
        "LOCALSTACK_INIT_LOG_LEVEL",
        "LOCALSTACK_POST_INVOKE_WAIT_MS",
        "LOCALSTACK_MAX_PAYLOAD_SIZE",
        "LOCALSTACK_HOT_RELOADING_PATHS",
    }
)


def function_environment(
    localstack_env: Mapping[str, object],
    *,
    task_root: str,
    user_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Lambda's defaults, then what LocalStack defines for the function (its reserved
    variables, credentials, endpoint and the function's own variables, which it merges
    last), less the init's private settings. LocalStack hands some values as ints.

    LAMBDA_TASK_ROOT (and LAMBDA_RUNTIME_DIR, which only matters to managed runtimes)
    point at the unpacked code, as /var/task does not exist on the host.
    AWS_LAMBDA_RUNTIME_API is added per process, as each gets its own Runtime API port."""
    user_env = user_env or {}
    env = {
        "PATH": DEFAULT_PATH,
        "LANG": "en_US.UTF-8",
        "LD_LIBRARY_PATH": f"{task_root}:{task_root}/lib",
    }
    for key, value in localstack_env.items():
        if value is None or (key in INIT_ONLY and key not in user_env):
            continue
        env[key] = str(value)
    env["LAMBDA_TASK_ROOT"] = task_root
    env["LAMBDA_RUNTIME_DIR"] = task_root
    return env
