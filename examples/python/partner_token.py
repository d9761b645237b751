"""Read a partner token that the token refresher publishes, and call the partner with it.

The refresher keeps each partner's OAuth access token in one SSM SecureString
parameter (TOKEN_PARAMETER, e.g. /token-refresher/tokens/ecard) whose value is one
JSON object: {"access_token", "token_type", "expires_at", ...}. This module is what a
Python Lambda needs to use it (docs/consumers.md):

    from partner_token import call_partner
    status, body = call_partner("https://partner.example/api/reports")

- The token is cached in the process, so warm invocations reuse it, and read again
  from SSM MARGIN seconds before it expires.
- If SSM fails while the cached token is still valid, the cached token is used.
- On a 401 the parameter is read again, and the request is retried once, only if it
  now holds a different token (the 401 rule).
- Never log the token: log fingerprint(token) to tell tokens apart.

The execution role needs ssm:GetParameter on the parameter (and kms:Decrypt on its key
when that is a customer managed key). Tested against LocalStack by
examples/consumers_integration_test.go.
"""

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from datetime import datetime

import boto3

PARAMETER = os.environ.get("TOKEN_PARAMETER", "")  # e.g. /token-refresher/tokens/ecard
MARGIN = 60  # seconds: re-read this long before expires_at
TIMEOUT = 30  # seconds, for each request to the partner

_ssm = None  # created on first use, then reused by warm invocations
_cached = None  # (access_token, token_type, expires_at as epoch seconds)


def fingerprint(access_token):
    """Identify a token in logs without revealing it: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(access_token.encode()).hexdigest()[:8]


def _client():
    global _ssm
    if _ssm is None:
        _ssm = boto3.client("ssm")
    return _ssm


def _read():
    if not PARAMETER:
        raise RuntimeError("TOKEN_PARAMETER is not set: name the SSM parameter holding the token")
    value = _client().get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]["Value"]
    try:
        doc = json.loads(value)
        expires_at = datetime.fromisoformat(doc["expires_at"].replace("Z", "+00:00")).timestamp()
        token = (doc["access_token"], doc.get("token_type") or "Bearer", expires_at)
        if not isinstance(token[0], str) or not token[0]:
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        # "from None": the original exception could quote the value, which holds a token.
        raise RuntimeError(f"parameter {PARAMETER} does not hold a published token") from None
    if expires_at <= time.time():
        raise RuntimeError(f"parameter {PARAMETER} holds a token that expired at {doc['expires_at']}")
    return token


def get_token(force=False):
    """Return (access_token, token_type, expires_at), reading SSM only when needed.

    force=True reads the parameter even though the cached token is still fresh: after
    the partner answered 401.
    """
    global _cached
    if force or _cached is None or _cached[2] - MARGIN <= time.time():
        try:
            _cached = _read()
        except Exception:
            if _cached is None or _cached[2] <= time.time():
                raise
            # SSM failed but the cached token is still valid: keep using it.
    return _cached


def _send(url, data, token):
    req = urllib.request.Request(url, data=data, headers={"Authorization": f"{token[1]} {token[0]}"})
    with urllib.request.urlopen(req, timeout=TIMEOUT) as res:
        return res.status, res.read()


def call_partner(url, data=None):
    """Send a request (POST when data is given) and return (status, body).

    Raises urllib.error.HTTPError for an error status, as urllib does; a 401 is
    raised only after the one retry the 401 rule allows.
    """
    token = get_token()
    try:
        return _send(url, data, token)
    except urllib.error.HTTPError as err:
        if err.code != 401:
            raise
        fresh = get_token(force=True)
        if fresh[0] == token[0]:
            raise  # same token: a retry would get the same 401
        err.close()
        return _send(url, data, fresh)
