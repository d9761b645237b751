"""The Python snippets of docs/consumers.md, run by examples/consumers_integration_test.go.

usage: TOKEN_PARAMETER=/token-refresher/tokens/ecard python snippets.py

Reads the parameter each documented way and prints one JSON object of fingerprints
(never a token): {"powertools": ..., "boto3": ...}. Then it waits for a line on
standard input (the test publishes a new token meanwhile) and prints
{"cached": ..., "forced": ...}: a Powertools read within max_age, which still has the
old token, and one with force_fetch, which has the new one.
"""

import hashlib
import json
import os
import sys

import boto3
from aws_lambda_powertools.utilities import parameters

PARAMETER = os.environ["TOKEN_PARAMETER"]


def read_token(force=False):
    # max_age: at most 300 s, the longest safe cache; force_fetch=True after a 401.
    value = parameters.get_parameter(PARAMETER, decrypt=True, max_age=300, force_fetch=force)
    return json.loads(value)  # {"access_token", "token_type", "expires_at", ...}


ssm = boto3.client("ssm")


def read_token_boto3():
    # No cache of its own: keep the result in a module variable, for at most 300 s.
    value = ssm.get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]["Value"]
    return json.loads(value)


def _fp(doc):
    return hashlib.sha256(doc["access_token"].encode()).hexdigest()[:8]


if __name__ == "__main__":
    print(json.dumps({"powertools": _fp(read_token()), "boto3": _fp(read_token_boto3())}), flush=True)
    sys.stdin.readline()
    print(json.dumps({"cached": _fp(read_token()), "forced": _fp(read_token(force=True))}), flush=True)
