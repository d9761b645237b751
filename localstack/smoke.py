"""Smoke test of the LocalStack features this project relies on.

Run it with `localstack/launcher smoke` (against the running instance) or
`localstack/launcher run -- .venv/localstack/bin/python localstack/smoke.py`.
Prints one line per check and exits non-zero when any check fails. Here the Lambda
function is only deployed; hostmode/tests runs functions (`localstack/launcher test`).
"""

import io
import json
import os
import sys
import time
import uuid
import zipfile

import boto3
from botocore.config import Config

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
RUN = uuid.uuid4().hex[:8]
FAILED = []


def client(name):
    return boto3.client(
        name,
        endpoint_url=ENDPOINT,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        config=Config(retries={"max_attempts": 2}),
    )


def check(name, fn):
    t0 = time.monotonic()
    try:
        detail = fn()
        print(f"PASS {name} ({time.monotonic() - t0:.1f}s){': ' + detail if detail else ''}")
    except Exception as e:  # noqa: BLE001 - report whatever broke
        print(f"FAIL {name}: {type(e).__name__}: {e}")
        FAILED.append(name)


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


sm, ssm, kms, cfn, s3 = (client(n) for n in ("secretsmanager", "ssm", "kms", "cloudformation", "s3"))


# --- Secrets Manager -------------------------------------------------------
def secret_versions():
    name = f"smoke/{RUN}/versions"
    sm.create_secret(Name=name, SecretString='{"client_id":"a","client_secret":"1"}')
    sm.put_secret_value(SecretId=name, SecretString='{"client_id":"a","client_secret":"2"}')
    cur = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"]
    prev = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"]
    expect(json.loads(cur)["client_secret"] == "2", f"AWSCURRENT={cur}")
    expect(json.loads(prev)["client_secret"] == "1", f"AWSPREVIOUS={prev}")
    stages = sorted(s for v in sm.describe_secret(SecretId=name)["VersionIdsToStages"].values() for s in v)
    expect(stages == ["AWSCURRENT", "AWSPREVIOUS"], f"stages={stages}")


def secret_batch():
    names = [f"smoke/{RUN}/batch/{i:02d}" for i in range(21)]
    for n in names:
        sm.create_secret(Name=n, SecretString=json.dumps({"name": n}))
    got = sm.batch_get_secret_value(SecretIdList=names[:20])
    expect(len(got["SecretValues"]) == 20 and not got.get("Errors"), f"20 ids -> {len(got['SecretValues'])}")
    try:  # AWS caps SecretIdList at 20
        over = len(sm.batch_get_secret_value(SecretIdList=names)["SecretValues"])
        over = f"21 ids accepted ({over} values; AWS would reject)"
    except sm.exceptions.ClientError as e:
        over = f"21 ids rejected ({e.response['Error']['Code']}, as on AWS)"
    seen, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = sm.batch_get_secret_value(
            Filters=[{"Key": "name", "Values": [f"smoke/{RUN}/batch/"]}], MaxResults=10, **kw
        )
        seen += [v["Name"] for v in page["SecretValues"]]
        token = page.get("NextToken")
        if not token:
            break
    expect(sorted(seen) == names, f"filter returned {len(seen)} of 21")
    return f"20 ids ok; {over}; Filters+MaxResults=10 paged all 21"


# --- SSM Parameter Store ---------------------------------------------------
def ssm_securestring():
    key_id = kms.create_key(Description="smoke")["KeyMetadata"]["KeyId"]
    for kw in ({}, {"KeyId": "alias/aws/ssm"}, {"KeyId": key_id}):
        name = f"/smoke/{RUN}/secure/{kw.get('KeyId', 'default').replace('/', '_')}"
        for value in ("v1", '{"access_token":"v2"}'):
            ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True, **kw)
        p = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        expect(p["Value"] == value and p["Version"] == 2, f"{kw}: {p['Value']!r} v{p['Version']}")
        raw = ssm.get_parameter(Name=name, WithDecryption=False)["Parameter"]["Value"]
        expect(raw != value, f"{kw}: value not encrypted without WithDecryption")
    return "default key, alias/aws/ssm, custom key; decrypted == written, encrypted otherwise"


def ssm_advanced():
    name, value = f"/smoke/{RUN}/big", "x" * 6000
    ssm.put_parameter(Name=name, Value=value, Type="SecureString", Tier="Advanced", Overwrite=True)
    p = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    expect(p["Value"] == value, "6000-byte value changed")
    tier = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"][0]["Tier"]
    expect(tier == "Advanced", f"tier={tier}")
    try:
        ssm.put_parameter(Name=name + "-std", Value=value, Type="SecureString", Tier="Standard")
        return "Advanced 6000 B ok; Standard 6000 B ACCEPTED (AWS rejects)"
    except ssm.exceptions.ClientError as e:
        return f"Advanced 6000 B ok; Standard 6000 B rejected ({e.response['Error']['Code']})"


def ssm_by_path():
    want = {}
    for i in range(25):
        name = f"/smoke/{RUN}/path/{'deep/' if i % 2 else ''}p{i:02d}"
        want[name] = f"secret-{i}"
        ssm.put_parameter(Name=name, Value=want[name], Type="SecureString", Overwrite=True)
    got, pages, token = {}, 0, None
    while True:
        kw = {"NextToken": token} if token else {}
        page = ssm.get_parameters_by_path(
            Path=f"/smoke/{RUN}/path/", Recursive=True, WithDecryption=True, MaxResults=10, **kw
        )
        pages += 1
        expect(len(page["Parameters"]) <= 10, f"page of {len(page['Parameters'])}")
        got.update({p["Name"]: p["Value"] for p in page["Parameters"]})
        token = page.get("NextToken")
        if not token:
            break
    expect(got == want, f"got {len(got)} of 25 (or values differ)")
    return f"25 params in {pages} pages, decrypted"


# --- CloudFormation --------------------------------------------------------
def deploy(name, template, timeout=180):
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS"):
            break
        time.sleep(1)
    if status != "CREATE_COMPLETE":
        reasons = [
            f"{e['LogicalResourceId']} {e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}"
            for e in cfn.describe_stack_events(StackName=name)["StackEvents"]
            if "FAILED" in e["ResourceStatus"]
        ]
        raise AssertionError(f"{status}; " + " | ".join(reasons)[:600])
    cfn.delete_stack(StackName=name)
    return status


ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    },
}


def cfn_basic():
    return deploy(f"smoke-basic-{RUN}", {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}, "Role": ROLE}})


def cfn_lambda():
    bucket = f"smoke-{RUN}"
    s3.create_bucket(Bucket=bucket)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("bootstrap"), "#!/bin/sh\necho hi\n")
    s3.put_object(Bucket=bucket, Key="fn.zip", Body=buf.getvalue())
    template = {
        "Resources": {
            "Role": ROLE,
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "provided.al2023",
                    "Architectures": ["arm64"],
                    "Handler": "bootstrap",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Code": {"S3Bucket": bucket, "S3Key": "fn.zip"},
                },
            },
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "ScheduleExpression": "rate(5 minutes)",
                    "Targets": [{"Id": "fn", "Arn": {"Fn::GetAtt": ["Fn", "Arn"]}}],
                },
            },
            "Perm": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunction",
                    "FunctionName": {"Ref": "Fn"},
                    "Principal": "events.amazonaws.com",
                    "SourceArn": {"Fn::GetAtt": ["Rule", "Arn"]},
                },
            },
        }
    }
    return deploy(f"smoke-lambda-{RUN}", template)


check("secretsmanager versions (Put/Get CURRENT+PREVIOUS/Describe)", secret_versions)
check("secretsmanager BatchGetSecretValue", secret_batch)
check("ssm SecureString Overwrite + KMS keys", ssm_securestring)
check("ssm Advanced tier > 4 KB", ssm_advanced)
check("ssm GetParametersByPath paging", ssm_by_path)
check("cloudformation SQS queue + IAM role", cfn_basic)
check("cloudformation Lambda(provided.al2023/arm64, S3 zip) + Events rule", cfn_lambda)
print(f"smoke: {len(FAILED)} failed" + (f": {', '.join(FAILED)}" if FAILED else ""))
sys.exit(1 if FAILED else 0)
