"""Checks of the SAM stack deployed to LocalStack, for scripts/sam-deploy-local.

usage: sam-local-checks.py bucket NAME | verify STACK | events STACK | outputs STACK | delete STACK | delete-prefix PREFIX

Runs with the tools venv's Python (boto3 comes with aws-sam-cli) and the AWS_*
settings the calling script exports (LocalStack endpoint, test credentials).
`verify` prints one line per check and exits 1 when any failed.
"""

import json
import pathlib
import sys
import time

import boto3
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import template_checks  # noqa: E402
from botocore.exceptions import ClientError

REPO = pathlib.Path(__file__).resolve().parent.parent
REGION = "us-east-1"
FAILED = []


def client(name):
    return boto3.client(name, region_name=REGION)


def check(name, fn):
    try:
        detail = fn()
        print(f"PASS {name}{': ' + detail if detail else ''}")
    except Exception as e:  # noqa: BLE001 - report whatever broke, go on with the rest
        print(f"FAIL {name}: {type(e).__name__}: {e}")
        FAILED.append(name)


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: short-form intrinsics (!Ref, !Sub, ...) as {"Ref": ...} etc."""


def _intrinsic(loader, tag_suffix, node):
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def yaml_or_json(text):
    return yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - safe loader plus intrinsic tags


def stack_status(cfn, stack):
    try:
        return cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except ClientError as e:
        if "does not exist" in str(e):
            return None
        raise


def cmd_bucket(name):
    s3 = client("s3")
    try:
        s3.head_bucket(Bucket=name)
    except ClientError:
        s3.create_bucket(Bucket=name)


def cmd_events(stack):
    """Print the stack's failed resource events: what LocalStack could not create, and why."""
    cfn = client("cloudformation")
    try:
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    except ClientError as e:
        print(f"no stack events: {e}")
        return
    for ev in reversed(events):
        if ev["ResourceStatus"].endswith("FAILED") or ev.get("ResourceStatusReason"):
            print(f"  {ev['LogicalResourceId']} ({ev['ResourceType']}): {ev['ResourceStatus']}: "
                  f"{ev.get('ResourceStatusReason', '')}")


def delete(cfn, stack, retain=()):
    cfn.delete_stack(StackName=stack, **({"RetainResources": list(retain)} if retain else {}))
    deadline = time.monotonic() + 300
    while (status := stack_status(cfn, stack)) not in (None, "DELETE_COMPLETE", "DELETE_FAILED"):
        if time.monotonic() > deadline:
            break
        time.sleep(2)
    return status


def cmd_delete(stack):
    cfn = client("cloudformation")
    if stack_status(cfn, stack) is None:
        return
    print(f"deleting stack {stack} ...", file=sys.stderr)
    status = delete(cfn, stack)
    if status == "DELETE_FAILED":
        # Resources that never got created (after a failed create) can fail to
        # delete in LocalStack; a second delete that retains them removes the stack.
        failed = [r["LogicalResourceId"] for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
                  if r["ResourceStatus"] == "DELETE_FAILED"]
        print(f"delete failed for {', '.join(failed)}; deleting again without them ...", file=sys.stderr)
        status = delete(cfn, stack, failed)
    if status not in (None, "DELETE_COMPLETE"):
        cmd_events(stack)
        sys.exit(f"stack {stack} not deleted: {status}")
    print(f"PASS stack {stack} deleted", file=sys.stderr)


def cmd_outputs(stack):
    """Print the stack's outputs as "output KEY=VALUE" lines, for scripts and tests."""
    for o in client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", []):
        print(f"output {o['OutputKey']}={o['OutputValue']}")


def cmd_delete_prefix(prefix):
    """Delete the stacks earlier runs left behind (interrupted, or SAM_LOCAL_KEEP=1)."""
    cfn = client("cloudformation")
    names = [s["StackName"] for page in cfn.get_paginator("list_stacks").paginate()
             for s in page["StackSummaries"]
             if s["StackName"].startswith(prefix) and s["StackStatus"] != "DELETE_COMPLETE"]
    for name in sorted(set(names)):
        cmd_delete(name)


def cmd_verify(stack):
    cfn, lam, events, iam = client("cloudformation"), client("lambda"), client("events"), client("iam")
    logs, sqs, cw = client("logs"), client("sqs"), client("cloudwatch")
    account = client("sts").get_caller_identity()["Account"]

    desc = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    resources = {r["LogicalResourceId"]: r for r in
                 cfn.describe_stack_resources(StackName=stack)["StackResources"]}
    outputs = {o["OutputKey"]: o for o in desc.get("Outputs", [])}
    params = {p["ParameterKey"]: p.get("ParameterValue") for p in desc.get("Parameters", [])}
    original = cfn.get_template(StackName=stack, TemplateStage="Original")["TemplateBody"]
    original = original if isinstance(original, dict) else yaml_or_json(original)

    def template_props(logical_id):
        return original["Resources"][logical_id]["Properties"]

    fanout = params.get("Mode") == "fanout"

    def stack_complete():
        expect(desc["StackStatus"] == "CREATE_COMPLETE", desc["StackStatus"])
        bad = {k: r["ResourceStatus"] for k, r in resources.items() if r["ResourceStatus"] != "CREATE_COMPLETE"}
        expect(not bad, f"not CREATE_COMPLETE: {bad}")
        return f"{len(resources)} resources: " + ", ".join(
            f"{k} ({r['ResourceType']})" for k, r in sorted(resources.items()))

    check("stack CREATE_COMPLETE, every resource CREATE_COMPLETE", stack_complete)

    fn_name = f"{stack}-refresher"
    fn = {}

    def function():
        fn.update(lam.get_function(FunctionName=fn_name))
        c = fn["Configuration"]
        expect(resources["RefresherFunction"]["PhysicalResourceId"] == fn_name, "physical id")
        want = {"Runtime": "provided.al2023", "Handler": "bootstrap", "Architectures": ["arm64"],
                "MemorySize": 128, "Timeout": 120}
        got = {k: c.get(k) for k in want}
        expect(got == want, f"{got} != {want}")
        env = c.get("Environment", {}).get("Variables", {})
        want_env = {"SCHEDULE_EXPRESSION": "rate(5 minutes)", "TOKEN_PARAMETER_PREFIX": "/token-refresher/tokens",
                    "STATE_PARAMETER_PREFIX": "/token-refresher/state",
                    "MAX_CONCURRENCY": "8", "METRICS_NAMESPACE": "TokenRefresher", "PER_PROVIDER_METRICS": "true",
                    "PUT_PARAMETER_RATE": "2", "MIN_FORCED_ROTATION_INTERVAL": "60s"}
        want_env["REGISTRY_BUCKET"] = resources["RegistryBucket"]["PhysicalResourceId"]
        if fanout:
            want_env["REFRESH_QUEUE_URL"] = resources["RefreshJobsQueue"]["PhysicalResourceId"]
            want_env["WORKER_CONCURRENCY"] = "2"
        else:
            want_env["RESERVED_CONCURRENCY"] = "1"
        expect(env == want_env, f"environment {env} != {want_env} (no TOKEN_KMS_KEY_ID without KmsKeyArn)")
        lc = c.get("LoggingConfig", {})
        expect(lc.get("LogFormat") == "JSON" and lc.get("LogGroup") == f"/aws/lambda/{fn_name}", f"LoggingConfig {lc}")
        conc = lam.get_function_concurrency(FunctionName=fn_name).get("ReservedConcurrentExecutions")
        # single: 1, so that runs do not overlap; fanout: a share of the write
        # budget each, WorkerConcurrency + 1.
        want = int(params["WorkerConcurrency"]) + 1 if fanout else 1
        if conc is None:
            # LocalStack 4.14's AWS::Lambda::Function provider drops this property.
            asked = template_checks.reserved_concurrency(original, params)
            expect(asked == want, f"the deployed template reserves {asked} instances, want {want}")
            conc = f"{asked} (in the deployed template; LocalStack does not apply it)"
        else:
            expect(conc == want, f"reserved concurrency {conc}, want {want}")
        return (f"{fn_name}: {c['Runtime']} {c['Architectures'][0]} {c['MemorySize']} MB {c['Timeout']} s, "
                f"reserved concurrency {conc}, JSON logs to {lc['LogGroup']}, state {c.get('State')}")

    check("function exists as configured", function)

    def invoke_config():
        cfg = lam.get_function_event_invoke_config(FunctionName=fn_name)
        dest = cfg.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination", "")
        queue_arn = sqs.get_queue_attributes(QueueUrl=resources["FailedInvocationsQueue"]["PhysicalResourceId"],
                                             AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        expect(cfg.get("MaximumRetryAttempts") == 1 and cfg.get("MaximumEventAgeInSeconds") == 900, str(cfg))
        expect(dest == queue_arn, f"on-failure destination {dest!r} != {queue_arn!r}")
        return f"1 retry, max age 900 s, on failure -> {queue_arn}"

    check("async invocation config with SQS on-failure destination", invoke_config)

    fn_arn = fn.get("Configuration", {}).get("FunctionArn", "")
    rules = {}

    def rules_target_function():
        names = events.list_rule_names_by_target(TargetArn=fn_arn)["RuleNames"]
        for name in names:
            rules[name] = events.describe_rule(Name=name)
            targets = events.list_targets_by_rule(Rule=name)["Targets"]
            expect([t["Arn"] for t in targets] == [fn_arn], f"{name} targets {targets}")
        expect(len(names) == 3, f"rules targeting the function: {names}")
        return ", ".join(sorted(names))

    check("three EventBridge rules target the function", rules_target_function)

    def schedule_rule():
        sched = [r for r in rules.values() if r.get("ScheduleExpression")]
        expect(len(sched) == 1, f"schedule rules: {sched}")
        r = sched[0]
        expect(r["ScheduleExpression"] == "rate(5 minutes)" and r["State"] == "ENABLED", str(r))
        return f"{r['Name']}: {r['ScheduleExpression']}, {r['State']}"

    check("schedule rule rate(5 minutes), enabled", schedule_rule)

    def secret_rule():
        pat = [r for r in rules.values() if "aws.secretsmanager" in r.get("EventPattern", "")]
        expect(len(pat) == 1, f"pattern rules: {pat}")
        pattern = pat[0]["EventPattern"]
        verdicts = []
        for file, secret, want in [
            ("secret-changed.json", None, True),
            ("secret-rotated.json", None, True),
            ("secret-changed.json", "arn:aws:secretsmanager:us-east-1:ACCOUNT:secret:token-refresher/ecard", True),
            ("secret-changed.json", "other-app/ecard", False),
            ("secret-rotated.json", "arn:aws:secretsmanager:us-east-1:ACCOUNT:secret:other-app/x-AbCdEf", False),
            ("scheduled.json", None, False),
        ]:
            text = (REPO / "events" / file).read_text().replace("123456789012", account)
            ev = json.loads(text)
            if secret:
                secret = secret.replace("ACCOUNT", account)
                if ev["detail"]["eventName"] == "RotationSucceeded":
                    ev["detail"]["additionalEventData"]["SecretId"] = secret
                else:
                    ev["detail"]["requestParameters"]["secretId"] = secret
            got = events.test_event_pattern(EventPattern=pattern, Event=json.dumps(ev))["Result"]
            expect(got == want, f"{file} with secret {secret or 'as shipped'}: matched={got}, want {want}")
            verdicts.append(f"{file}{' [' + secret.rsplit(':', 1)[-1] + ']' if secret else ''}={'match' if got else 'no'}")
        return f"{pat[0]['Name']}: " + ", ".join(verdicts)

    check("secret-change rule matches the sample events and only the prefix", secret_rule)

    def role():
        role_name = resources["RefresherFunctionRole"]["PhysicalResourceId"]
        r = iam.get_role(RoleName=role_name)["Role"]
        expect(fn.get("Configuration", {}).get("Role") == r["Arn"], "function does not use the role")
        statements = []
        for pname in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
            doc = iam.get_role_policy(RoleName=role_name, PolicyName=pname)["PolicyDocument"]
            doc = json.loads(doc) if isinstance(doc, str) else doc
            statements += doc["Statement"]
        star = [s for s in statements if s.get("Resource") == "*" or s.get("Resource") == ["*"]]
        star_actions = sorted({a for s in star for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])})
        # Neither action can name a resource: BatchGetSecretValue's secrets are checked
        # per secret, and DescribeParameters (the tokens' metadata) takes no resource.
        expect(star_actions == ["secretsmanager:BatchGetSecretValue", "ssm:DescribeParameters"],
               f"actions on '*': {star_actions}")
        actions = sorted({a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])})
        attached = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]]
        expect(not attached, f"managed policies attached: {attached}")
        return f"{role_name}: {', '.join(actions)}; no managed policies"

    check("IAM role exists, used by the function, '*' only for BatchGetSecretValue and DescribeParameters", role)

    def log_group():
        groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{fn_name}")["logGroups"]
        g = [g for g in groups if g["logGroupName"] == f"/aws/lambda/{fn_name}"]
        expect(g, f"log groups: {groups}")
        days = g[0].get("retentionInDays")
        if days is None:
            # LocalStack 4.14's AWS::Logs::LogGroup provider only creates the group.
            expect(template_props("RefresherLogGroup").get("RetentionInDays") == {"Ref": "LogRetentionDays"}
                   and params.get("LogRetentionDays") == "7", "template/parameter do not set the retention")
            days = "7 (LogRetentionDays in the deployed template; LocalStack does not apply it)"
        else:
            expect(days == 7, f"retention {days}")
        return f"{g[0]['logGroupName']}, retention {days} days"

    check("log group with bounded retention", log_group)

    def fanout_resources():
        jobs_url = resources["RefreshJobsQueue"]["PhysicalResourceId"]
        dlq_url = resources["RefreshJobsDeadLetterQueue"]["PhysicalResourceId"]
        jobs = sqs.get_queue_attributes(QueueUrl=jobs_url, AttributeNames=["All"])["Attributes"]
        dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
        expect(jobs.get("FifoQueue") == "true" and dlq.get("FifoQueue") == "true", "the job queues are not FIFO")
        expect(jobs.get("ContentBasedDeduplication", "false") == "false", "content-based deduplication: the planner gives ids")
        redrive = json.loads(jobs.get("RedrivePolicy", "{}"))
        expect(redrive.get("deadLetterTargetArn") == dlq["QueueArn"] and int(redrive.get("maxReceiveCount", 0)) == 3,
               f"redrive policy {redrive}")
        expect(jobs.get("VisibilityTimeout") == "720", f"visibility timeout {jobs.get('VisibilityTimeout')}")
        mappings = lam.list_event_source_mappings(FunctionName=fn_name)["EventSourceMappings"]
        expect(len(mappings) == 1, f"event source mappings {mappings}")
        m = mappings[0]
        expect(m["EventSourceArn"] == jobs["QueueArn"], f"mapping source {m['EventSourceArn']}")
        expect(m.get("BatchSize") == 8 and m.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
               and m.get("ScalingConfig", {}).get("MaximumConcurrency") == 2, f"mapping {m}")
        return (f"{jobs['QueueArn'].rsplit(':', 1)[-1]} (FIFO, visibility 720 s, to "
                f"{dlq['QueueArn'].rsplit(':', 1)[-1]} after 3 receives); mapping: batch 8, "
                f"maximum concurrency 2, ReportBatchItemFailures")

    if fanout:
        check("fanout: FIFO job queue with its dead-letter queue, and the workers' event source mapping", fanout_resources)

    def alarms():
        logical = ("RefreshFailedAlarm", "FunctionErrorsAlarm", "TokenExpiryAlarm", "ProviderDegradedAlarm")
        if fanout:
            logical += ("RefreshJobsDeadLetterAlarm", "RefreshJobsBacklogAlarm")
        names = [resources[k]["PhysicalResourceId"] for k in logical]
        found = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=names)["MetricAlarms"]}
        expect(len(found) == len(logical), f"alarms found: {list(found)}")
        for key, name in zip(logical, names):
            anchor = "#" + key.lower()
            expect(anchor in found[name].get("AlarmDescription", ""), f"{key} does not link to its runbook entry {anchor}")
            runbook = (REPO / "docs" / "operations.md").read_text()
            expect(f"### {key}" in runbook, f"docs/operations.md has no heading {key} for {anchor}")
        return "; ".join(f"{a['MetricName']} {a['Statistic']} {a['ComparisonOperator']} {a['Threshold']:g}, "
                         f"missing={a.get('TreatMissingData')}" for a in found.values())

    check(f"{'six' if fanout else 'four'} CloudWatch alarms, each linking to its runbook entry", alarms)

    def registry():
        bucket = resources["RegistryBucket"]["PhysicalResourceId"]
        s3 = client("s3")
        expect(s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled", "versioning")
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        expect(all(block.values()) and len(block) == 4, f"public access block {block}")
        sse = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        expect(sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", f"encryption {sse}")
        pat = [r for r in rules.values() if "aws.s3" in r.get("EventPattern", "")]
        expect(len(pat) == 1, f"registry rules: {pat}")
        verdicts = []
        for key, want in [("providers.yaml", True), ("other.yaml", False)]:
            ev = {"version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3", "account": account,
                  "time": "2026-11-23T10:00:00Z", "region": REGION, "resources": [],
                  "detail": {"bucket": {"name": bucket}, "object": {"key": key}}}
            got = events.test_event_pattern(EventPattern=pat[0]["EventPattern"], Event=json.dumps(ev))["Result"]
            expect(got == want, f"Object Created {key}: matched {got}, want {want}")
            verdicts.append(f"{key} {'runs' if got else 'ignored'}")
        return f"{bucket}: versioned, private, SSE-S3; " + ", ".join(verdicts)

    check("registry bucket versioned, private, encrypted; its change runs the function", registry)

    def dashboard():
        # LocalStack reports no physical id for a dashboard: use the name the template gives.
        name = f"{stack}-tokens"
        body = json.loads(cw.get_dashboard(DashboardName=name)["DashboardBody"])
        titles = [w["properties"]["title"] for w in body["widgets"]]
        metrics = json.dumps(body)
        for want in ("SecondsToExpiry", "Refreshed", "Failed", "Degraded", "AWS/Lambda", "Errors", "Duration",
                     "ApproximateNumberOfMessagesVisible", fn_name):
            expect(want in metrics, f"the dashboard shows no {want}")
        jobs = [t for t in titles if t.startswith("Refresh jobs")]
        expect(len(jobs) == (1 if fanout else 0), f"refresh jobs widgets {jobs} in Mode {params.get('Mode')}")
        if fanout:
            expect(f"{stack}-jobs.fifo" in metrics, "the dashboard does not graph the job queue")
        else:
            expect("jobs.fifo" not in metrics and "Mode single" not in metrics,
                   "the dashboard graphs a job queue that single mode does not have")
        return f"{name}: {len(titles)} widgets: " + "; ".join(titles)

    check("dashboard of expiry, refreshes, failures, function errors and duration, failure queue", dashboard)

    def exports():
        want = {"FunctionArn", "TokenReadersPolicyArn", "TokenParameterPrefix", "FailedInvocationsQueueUrl",
                "OperatorsPolicyArn", "StateParameterPrefix", "DashboardName", "RegistryBucket",
                "ProviderManagersPolicyArn", "ProviderProbePolicyArn", "SecretNamePrefix",
                "TokenRotationRequestersPolicyArn"}
        unexported = {"DashboardName", "SecretNamePrefix"}
        if fanout:
            unexported |= {"RefreshJobsQueueUrl", "RefreshJobsDeadLetterQueueUrl"}
            want |= unexported
        expect(set(outputs) == want, f"outputs {set(outputs)}")
        bad = [k for k, o in outputs.items() if k not in unexported and o.get("ExportName") != f"{stack}-{k}"]
        expect(not bad, f"export names {bad}")
        expect(outputs["FunctionArn"]["OutputValue"] == fn_arn, "FunctionArn output")
        policy = iam.get_policy(PolicyArn=outputs["TokenReadersPolicyArn"]["OutputValue"])["Policy"]
        operators = iam.get_policy(PolicyArn=outputs["OperatorsPolicyArn"]["OutputValue"])["Policy"]
        return f"{len(outputs)} exports; consumer policy {policy['PolicyName']}, operators policy {operators['PolicyName']}"

    check("outputs exported; consumer and operators managed policies exist", exports)

    if FAILED:
        print(f"{len(FAILED)} check(s) failed: {', '.join(FAILED)}")
        sys.exit(1)
    print("all checks passed")


def main():
    commands = {"bucket": cmd_bucket, "verify": cmd_verify, "events": cmd_events, "delete": cmd_delete,
                "delete-prefix": cmd_delete_prefix, "outputs": cmd_outputs}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()
