"""Read a partner token that the token refresher publishes, and call the partner with it.

The refresher keeps each partner's OAuth access token in one SSM SecureString
parameter (TOKEN_PARAMETER, e.g. /token-refresher/tokens/ecard) whose value is one
JSON object: {"access_token", "token_type", "expires_at", ...}. This module is what a
Python Lambda needs to use it (docs/consumers.md):

    from partner_token import call_partner
    status, body = call_partner("https://partner.example/api/reports")

- The value is read with Powertools for AWS Lambda (Parameters), cached for MAX_AGE
  seconds, the longest cache the refresher's window allows, and read again from SSM
  (force_fetch) MARGIN seconds before the token expires.
- If SSM fails while the last token read is still valid, that token is used.
- On a 401 the parameter is read again, bypassing the cache; the request is retried
  once if it now holds a different token. If it still holds the refused token and
  REFRESHER_FUNCTION names the refresher function, a conditional rotation is sent to
  it (an asynchronous invoke), the parameter is polled for the successor for at most
  ROTATION_WAIT seconds, and the request is retried once with it. After a re-read
  found the refused token still published, further 401s with it read nothing and
  send nothing for QUIET seconds.
- Never log the token: log fingerprint(token) to tell tokens apart.

The execution role needs ssm:GetParameter on the parameter (and kms:Decrypt on its key
when that is a customer managed key), and with REFRESHER_FUNCTION lambda:InvokeFunction
on the function. Tested against LocalStack by examples/consumers_integration_test.go.
"""

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from datetime import datetime

import boto3
from aws_lambda_powertools.utilities import parameters

PARAMETER = os.environ.get("TOKEN_PARAMETER", "")  # e.g. /token-refresher/tokens/ecard
REFRESHER_FUNCTION = os.environ.get("REFRESHER_FUNCTION", "")  # name or ARN; empty: never rotate
MAX_AGE = 300  # seconds: the longest safe cache, window - 2 schedule periods (docs/consumers.md)
MARGIN = 60  # seconds: read again this long before expires_at
ROTATION_WAIT = float(os.environ.get("TOKEN_ROTATION_WAIT", "5"))  # seconds, at most, for a successor
QUIET = 5  # seconds without a read after a re-read found the refused token
TIMEOUT = 30  # seconds, for each request to the partner

_lambda = None  # created on first use, then reused by warm invocations
_last = None  # (access_token, token_type, expires_at as epoch seconds): the last token read
_refused = None  # (access_token, time.monotonic()) of the last token found still published after a 401


def fingerprint(access_token):
    """Identify a token in logs without revealing it: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(access_token.encode()).hexdigest()[:8]


def _parse(value):
    try:
        doc = json.loads(value)
        expires_at = datetime.fromisoformat(doc["expires_at"].replace("Z", "+00:00")).timestamp()
        token = (doc["access_token"], doc.get("token_type") or "Bearer", expires_at, doc.get("provider") or "")
        if not isinstance(token[0], str) or not token[0]:
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        # "from None": the original exception could quote the value, which holds a token.
        raise RuntimeError(f"parameter {PARAMETER} does not hold a published token") from None
    if expires_at <= time.time():
        raise RuntimeError(f"parameter {PARAMETER} holds a token that expired at {doc['expires_at']}")
    return token


def _read(force):
    if not PARAMETER:
        raise RuntimeError("TOKEN_PARAMETER is not set: name the SSM parameter holding the token")
    # Powertools keeps the value for max_age seconds; force_fetch bypasses that cache.
    return _parse(parameters.get_parameter(PARAMETER, decrypt=True, max_age=MAX_AGE, force_fetch=force))


def get_token(force=False):
    """Return (access_token, token_type, expires_at, provider).

    force=True reads the parameter from SSM even though the cached value is fresh:
    after the partner answered 401.
    """
    global _last
    force = force or (_last is not None and _last[2] - MARGIN <= time.time())
    try:
        _last = _read(force)
    except Exception:
        if _last is None or _last[2] <= time.time():
            raise
        # SSM failed but the last token read is still valid: keep using it.
    return _last


def _rotate(refused):
    """Ask the refresher for a new token, only while the published one is still `refused`."""
    global _lambda
    if _lambda is None:
        _lambda = boto3.client("lambda")
    provider = refused[3] or PARAMETER.rsplit("/", 1)[-1]
    event = {"action": "rotate", "providers": [provider], "if_token": fingerprint(refused[0])}
    _lambda.invoke(FunctionName=REFRESHER_FUNCTION, InvocationType="Event", Payload=json.dumps(event).encode())


def _successor(refused):
    """Return a token other than `refused` to retry with, or None."""
    global _refused
    if _refused and _refused[0] == refused[0] and time.monotonic() - _refused[1] < QUIET:
        return None  # just found still published: no read until the quiet period ends
    try:
        fresh = get_token(force=True)
        if fresh[0] != refused[0]:
            return fresh
        if REFRESHER_FUNCTION:
            _rotate(fresh)
            deadline, delay = time.monotonic() + ROTATION_WAIT, 0.1
            while time.monotonic() < deadline:
                time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
                delay = min(2 * delay, 1.0)
                fresh = get_token(force=True)
                if fresh[0] != refused[0]:
                    return fresh
    except Exception:
        pass  # no better token to be had: the caller gets the partner's 401
    _refused = (refused[0], time.monotonic())
    return None


def _send(url, data, token):
    req = urllib.request.Request(url, data=data, headers={"Authorization": f"{token[1]} {token[0]}"})
    with urllib.request.urlopen(req, timeout=TIMEOUT) as res:
        return res.status, res.read()


def call_partner(url, data=None):
    """Send a request (POST when data is given) and return (status, body).

    Raises urllib.error.HTTPError for an error status, as urllib does; a 401 is
    raised only after the one retry the 401 rule allows. A Python Lambda handles one
    request at a time, so one process sends at most one rotation per refused token.
    """
    token = get_token()
    try:
        return _send(url, data, token)
    except urllib.error.HTTPError as err:
        if err.code != 401:
            raise
        fresh = _successor(token)
        if fresh is None:
            raise  # no other token: a retry would get the same 401
        err.close()
        return _send(url, data, fresh)
