"""Lambda runtime executor "nodocker": functions deploy and become Active, invokes fail.

LocalStack runs Lambda functions in Docker containers. In host mode there is no Docker,
and LocalStack's own executor then marks every new function Failed, which fails any
CloudFormation stack that has one. This executor prepares nothing, so functions become
Active, and refuses to start an execution environment, so an Invoke gets a
ServiceException that names the reason.
"""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

MESSAGE = "Lambda functions cannot run in LocalStack host mode (no Docker): use LOCALSTACK_USE_DOCKER=1"


class NoDockerRuntimeExecutor(RuntimeExecutor):
    def start(self, env_vars: dict[str, str]) -> None:
        raise LambdaRuntimeException(MESSAGE)

    def stop(self) -> None:
        pass

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        return "http://127.0.0.1:4566"

    def invoke(self, payload: dict[str, str]):
        raise LambdaRuntimeException(MESSAGE)

    def get_logs(self) -> str:
        return ""

    @classmethod
    def prepare_version(cls, function_version) -> None:
        pass

    @classmethod
    def cleanup_version(cls, function_version) -> None:
        pass


class NoDockerRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "nodocker"

    def load(self, *args, **kwargs):
        return NoDockerRuntimeExecutor
