"""CloudFormation resource AWS::CloudWatch::Dashboard for LocalStack.

LocalStack 4.14's CloudFormation has no provider for dashboards: it marks one
CREATE_COMPLETE and creates nothing, though its CloudWatch serves PutDashboard. This
provider makes CloudFormation create, update and delete the dashboard through the
CloudWatch API, as AWS does, so a stack's dashboard can be deployed and read back.
"""

from __future__ import annotations

from typing import TypedDict

from localstack.services.cloudformation import provider_utils as util
from localstack.services.cloudformation.resource_provider import (
    CloudFormationResourceProviderPlugin,
    OperationStatus,
    ProgressEvent,
    ResourceProvider,
    ResourceRequest,
)


class DashboardProperties(TypedDict, total=False):
    DashboardName: str
    DashboardBody: str


class DashboardProvider(ResourceProvider[DashboardProperties]):
    TYPE = "AWS::CloudWatch::Dashboard"
    # What CloudFormation needs of the resource type: the name is the identifier.
    SCHEMA = {
        "typeName": TYPE,
        "primaryIdentifier": ["/properties/DashboardName"],
        "createOnlyProperties": ["/properties/DashboardName"],
        "required": ["DashboardBody"],
        "properties": {"DashboardName": {"type": "string"}, "DashboardBody": {"type": "string"}},
    }

    def create(self, request: ResourceRequest[DashboardProperties]) -> ProgressEvent[DashboardProperties]:
        model = request.desired_state
        if not model.get("DashboardName"):
            model["DashboardName"] = util.generate_default_name(
                stack_name=request.stack_name, logical_resource_id=request.logical_resource_id
            )
        request.aws_client_factory.cloudwatch.put_dashboard(
            DashboardName=model["DashboardName"], DashboardBody=model["DashboardBody"]
        )
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    def read(self, request: ResourceRequest[DashboardProperties]) -> ProgressEvent[DashboardProperties]:
        model = request.desired_state
        out = request.aws_client_factory.cloudwatch.get_dashboard(DashboardName=model["DashboardName"])
        model["DashboardBody"] = out["DashboardBody"]
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    def update(self, request: ResourceRequest[DashboardProperties]) -> ProgressEvent[DashboardProperties]:
        model = request.desired_state
        model["DashboardName"] = request.previous_state["DashboardName"]
        request.aws_client_factory.cloudwatch.put_dashboard(
            DashboardName=model["DashboardName"], DashboardBody=model["DashboardBody"]
        )
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    def delete(self, request: ResourceRequest[DashboardProperties]) -> ProgressEvent[DashboardProperties]:
        model = request.desired_state
        request.aws_client_factory.cloudwatch.delete_dashboards(DashboardNames=[model["DashboardName"]])
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)


class DashboardProviderPlugin(CloudFormationResourceProviderPlugin):
    name = "AWS::CloudWatch::Dashboard"

    def __init__(self):
        self.factory: type[ResourceProvider] | None = None

    def load(self):
        self.factory = DashboardProvider
