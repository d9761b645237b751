"""Lambda runtime executor "hostmode": functions run as host processes, without Docker.

LocalStack's own executor runs each execution environment in a Docker container with an
init binary it downloads. This one runs the function's `bootstrap` on the host, with
HostInit (host_init.py) in the init's place. It supports the runtimes whose whole
runtime is the bootstrap (provided.al2023, provided.al2), which is what a Go function is.

LocalStack meets an executor only here: start/stop/invoke from ExecutionEnvironment,
prepare_version/cleanup_version from the version manager, and the HTTP routes of the
ExecutorEndpoint (ready, error, logs, response), which HostInit calls as the init would.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from localstack import config
from localstack.aws.connect import connect_to
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.executor_endpoint import ExecutorEndpoint
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor
from localstack.utils.aws.client_types import ServicePrincipal

from .environment import function_environment
from .host_init import FunctionSpec, HostInit, LocalStackCallbacks

LOG = logging.getLogger(__name__)

SUPPORTED_RUNTIMES = ("provided.al2023", "provided.al2", "provided")


def unsupported(function_version: FunctionVersion) -> str | None:
    """Why this executor cannot run the function at all, in words for the invoker."""
    cfg = function_version.config
    name = function_version.id.function_name
    if cfg.package_type != PackageType.Zip or not cfg.code:
        return (
            f"function {name}: container images cannot run in LocalStack host mode (no Docker): "
            "use a zip with a bootstrap"
        )
    if cfg.runtime not in SUPPORTED_RUNTIMES:
        return (
            f"function {name}: runtime {cfg.runtime} cannot run in LocalStack host mode (no Docker): "
            f"only {', '.join(SUPPORTED_RUNTIMES[:2])} (a bootstrap executable) run as host processes"
        )
    if cfg.layers:
        return (
            f"function {name}: layers are not supported in LocalStack host mode (they would need /opt): "
            "bundle them into the zip"
        )
    return None


def _loopback_host() -> str:
    """Where a function process reaches LocalStack: its gateway's own address when that
    is a specific one, else loopback (the launcher binds 127.0.0.1)."""
    host = config.GATEWAY_LISTEN[0].host
    return host if host not in ("", "0.0.0.0", "::", "localhost") else "127.0.0.1"


class HostModeRuntimeExecutor(RuntimeExecutor):
    executor_endpoint: ExecutorEndpoint
    host_init: HostInit | None

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.executor_endpoint = ExecutorEndpoint(self.id, container_address="127.0.0.1", container_port=None)
        self.host_init = None

    def start(self, env_vars: dict[str, Any]) -> None:
        self.executor_endpoint.start()
        if reason := unsupported(self.function_version):
            raise LambdaRuntimeException(reason)
        cfg = self.function_version.config
        code = cfg.code
        assert code is not None
        code.prepare_for_execution()
        task_root = str(Path(code.get_unzipped_code_location()).resolve())
        spec = FunctionSpec(
            function_name=self.function_version.id.function_name,
            version=self.function_version.id.qualifier,
            task_root=Path(task_root),
            env=function_environment(env_vars, task_root=task_root, user_env=cfg.environment),
            timeout_s=int(cfg.timeout),
            memory_size_mb=int(cfg.memory_size),
            handler=cfg.handler or "bootstrap",
            architecture=cfg.architectures[0] if cfg.architectures else None,
            ignore_declared_architecture=bool(config.LAMBDA_IGNORE_ARCHITECTURE),
            json_logs=(cfg.logging_config or {}).get("LogFormat") == "JSON",
        )
        callbacks = LocalStackCallbacks(
            str(env_vars["LOCALSTACK_RUNTIME_ENDPOINT"]), str(env_vars["LOCALSTACK_RUNTIME_ID"])
        )
        self.host_init = HostInit(spec, callbacks)
        self.executor_endpoint.container_port = self.host_init.port
        self.host_init.boot()
        try:
            self.executor_endpoint.wait_for_startup()
        except Exception:
            self._store_init_logs(env_vars, self.host_init.boot_failure_logs())
            raise

    def _store_init_logs(self, env_vars: dict[str, Any], text: str) -> None:
        """Put a failed init's log in the function's log stream, as Lambda does, with
        LocalStack's own client for function logs (LocalStack drops them otherwise)."""
        fv = self.function_version
        group, stream = str(env_vars["AWS_LAMBDA_LOG_GROUP_NAME"]), str(env_vars["AWS_LAMBDA_LOG_STREAM_NAME"])
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line + "\n"} for line in text.splitlines() if line]
        try:
            logs = connect_to.with_assumed_role(
                region_name=fv.id.region,
                role_arn=fv.config.role,
                service_principal=ServicePrincipal.lambda_,  # type: ignore[arg-type]
            ).logs
            try:
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
            except logs.exceptions.ResourceNotFoundException:
                try:
                    logs.create_log_group(logGroupName=group)
                except logs.exceptions.ResourceAlreadyExistsException:
                    pass
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except Exception as e:
            LOG.warning("hostmode: could not store the init log of %s (%s):\n%s", fv.id.function_name, e, text.rstrip())

    def stop(self) -> None:
        if self.host_init:
            self.host_init.shutdown()
        try:
            self.executor_endpoint.shutdown()
        except Exception as e:  # not registered (a refused start) or already shut down
            LOG.debug("hostmode: endpoint of %s: %s", self.id, e)

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return _loopback_host()

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://{_loopback_host()}:{port}{self.executor_endpoint.get_endpoint_prefix()}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        return self.executor_endpoint.invoke(payload)

    def get_logs(self) -> str:
        return self.host_init.output_tail() if self.host_init else ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        # Unpack now, as the Docker executor does, so that the first invoke is not slower.
        # An unsupported function still becomes Active (so stacks that hold one deploy);
        # each invoke then fails with the reason, which is also logged here once.
        if reason := unsupported(function_version):
            LOG.warning("hostmode: %s", reason)
            return
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        LOG.info("hostmode: Lambda functions of runtime provided.al2023/provided.al2 run as host processes")
        return True


class HostModeRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "hostmode"

    def load(self, *args: Any, **kwargs: Any) -> type[RuntimeExecutor]:
        return HostModeRuntimeExecutor
