// Read a partner token that the token refresher publishes, and call the partner with it.
//
// The refresher keeps each partner's OAuth access token in one SSM SecureString
// parameter (TOKEN_PARAMETER, e.g. /token-refresher/tokens/ecard) whose value is one
// JSON object: {"access_token", "token_type", "expires_at", ...}. This module is what a
// Node.js Lambda needs to use it (docs/consumers.md):
//
//   import { callPartner } from "./tokens.js";
//   const res = await callPartner("https://partner.example/api/reports");
//
// - The value is read with Powertools for AWS Lambda (Parameters), cached for MAX_AGE_S
//   seconds, the longest cache the refresher's window allows, and read again from SSM
//   (forceFetch) MARGIN_MS before the token expires.
// - If SSM fails while the last token read is still valid, that token is used.
// - On a 401 the parameter is read again, bypassing the cache; the request is retried
//   once if it now holds a different token. If it still holds the refused token and
//   REFRESHER_FUNCTION names the refresher function, a conditional rotation is sent to
//   it (an asynchronous invoke), the parameter is polled for the successor for at most
//   ROTATION_WAIT_MS, and the request is retried once with it. Concurrent requests
//   refused with one token share one re-read, rotation and wait; after it found the
//   refused token still published, further 401s with it read nothing for QUIET_MS.
// - Never log the token: log fingerprint(token) to tell tokens apart.
//
// The execution role needs ssm:GetParameter on the parameter (and kms:Decrypt on its
// key when that is a customer managed key), and with REFRESHER_FUNCTION
// lambda:InvokeFunction on the function. Tested against LocalStack by
// examples/consumers_integration_test.go.

import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { getParameter } from "@aws-lambda-powertools/parameters/ssm";
import { LambdaClient, InvokeCommand } from "@aws-sdk/client-lambda";

const PARAMETER = process.env.TOKEN_PARAMETER; // e.g. /token-refresher/tokens/ecard
const REFRESHER_FUNCTION = process.env.REFRESHER_FUNCTION; // name or ARN; unset: never rotate
const MAX_AGE_S = 300; // the longest safe cache: window - 2 schedule periods (docs/consumers.md)
const MARGIN_MS = 60_000; // read again this long before expires_at
const ROTATION_WAIT_MS = 1000 * Number(process.env.TOKEN_ROTATION_WAIT ?? 5); // at most, for a successor
const QUIET_MS = 5_000; // without a read after a re-read found the refused token
let lambda; // created on first use, then reused by warm invocations
let last; // { accessToken, tokenType, expiresAt (ms), provider }: the last token read
const inflight = {}; // by force: one read shared by concurrent callers (a forced one never joins a cached one)
const recovering = new Map(); // refused access token -> the shared re-read, rotation and wait
let refused; // { accessToken, at }: the last token found still published after a 401

// fingerprint identifies a token in logs without revealing it: the first 8 hex digits of its SHA-256.
export function fingerprint(accessToken) {
  return createHash("sha256").update(accessToken).digest("hex").slice(0, 8);
}

async function read(forceFetch) {
  if (!PARAMETER) throw new Error("TOKEN_PARAMETER is not set: name the SSM parameter holding the token");
  // Powertools keeps the value for maxAge seconds; forceFetch bypasses that cache.
  const value = await getParameter(PARAMETER, { decrypt: true, maxAge: MAX_AGE_S, forceFetch });
  let doc;
  try {
    doc = JSON.parse(value ?? "");
  } catch {
    // reported below, without the value
  }
  const expiresAt = Date.parse(doc?.expires_at);
  if (typeof doc?.access_token !== "string" || !doc.access_token || Number.isNaN(expiresAt)) {
    throw new Error(`parameter ${PARAMETER} does not hold a published token`);
  }
  if (expiresAt <= Date.now()) {
    throw new Error(`parameter ${PARAMETER} holds a token that expired at ${doc.expires_at}`);
  }
  return { accessToken: doc.access_token, tokenType: doc.token_type || "Bearer", expiresAt, provider: doc.provider || "" };
}

// getToken returns the current token. force reads the parameter from SSM even though
// the cached value is fresh: after the partner answered 401.
export async function getToken(force = false) {
  force ||= last !== undefined && last.expiresAt - MARGIN_MS <= Date.now();
  inflight[force] ??= read(force).finally(() => {
    inflight[force] = undefined;
  });
  try {
    last = await inflight[force];
  } catch (err) {
    if (!last || last.expiresAt <= Date.now()) throw err;
    // SSM failed but the last token read is still valid: keep using it.
  }
  return last;
}

// rotate asks the refresher for a new token, only while the published one is still cur.
async function rotate(cur) {
  lambda ??= new LambdaClient({});
  const provider = cur.provider || PARAMETER.split("/").pop();
  const event = { action: "rotate", providers: [provider], if_token: fingerprint(cur.accessToken) };
  await lambda.send(
    new InvokeCommand({ FunctionName: REFRESHER_FUNCTION, InvocationType: "Event", Payload: JSON.stringify(event) }),
  );
}

// recover finds a token other than stale to retry with, or returns undefined.
async function recover(stale) {
  try {
    let fresh = await getToken(true);
    if (fresh.accessToken !== stale.accessToken) return fresh;
    if (REFRESHER_FUNCTION) {
      await rotate(fresh);
      const deadline = Date.now() + ROTATION_WAIT_MS;
      for (let delay = 100; Date.now() < deadline; delay = Math.min(2 * delay, 1000)) {
        await sleep(Math.min(delay, Math.max(deadline - Date.now(), 0)));
        fresh = await getToken(true);
        if (fresh.accessToken !== stale.accessToken) return fresh;
      }
    }
  } catch {
    // no better token to be had: the caller gets the partner's 401
  }
  refused = { accessToken: stale.accessToken, at: Date.now() };
  return undefined;
}

// successor is recover shared by every request refused with the same token, and
// skipped for the quiet period after it found that token still published.
function successor(stale) {
  if (refused?.accessToken === stale.accessToken && Date.now() - refused.at < QUIET_MS) return undefined;
  if (last && last.accessToken !== stale.accessToken && last.expiresAt > Date.now()) return last;
  let p = recovering.get(stale.accessToken);
  if (!p) {
    p = recover(stale).finally(() => recovering.delete(stale.accessToken));
    recovering.set(stale.accessToken, p);
  }
  return p;
}

// callPartner is fetch with the token. init.body must be replayable (a string or a
// Buffer, not a stream) because of the retry.
export async function callPartner(url, init = {}) {
  const send = (t) =>
    fetch(url, { ...init, headers: { ...init.headers, Authorization: `${t.tokenType} ${t.accessToken}` } });
  const token = await getToken();
  const res = await send(token);
  if (res.status !== 401) return res;
  const fresh = await successor(token);
  if (!fresh) return res; // no other token: a retry would get the same 401
  await res.body?.cancel();
  return send(fresh);
}
