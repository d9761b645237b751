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
// - The token is cached in the process, so warm invocations reuse it, and read again
//   from SSM MARGIN_MS before it expires; concurrent callers share one read.
// - If SSM fails while the cached token is still valid, the cached token is used.
// - On a 401 the parameter is read again, and the request is retried once, only if it
//   now holds a different token (the 401 rule).
// - Never log the token: log fingerprint(token) to tell tokens apart.
//
// The execution role needs ssm:GetParameter on the parameter (and kms:Decrypt on its
// key when that is a customer managed key). Tested against LocalStack by
// examples/consumers_integration_test.go.

import { createHash } from "node:crypto";
import { SSMClient, GetParameterCommand } from "@aws-sdk/client-ssm";

const PARAMETER = process.env.TOKEN_PARAMETER; // e.g. /token-refresher/tokens/ecard
const MARGIN_MS = 60_000; // re-read this long before expires_at
const ssm = new SSMClient({}); // module scope: reused by warm invocations
let cached; // { accessToken, tokenType, expiresAt (ms) }
let inflight; // one read shared by concurrent callers

// fingerprint identifies a token in logs without revealing it: the first 8 hex digits of its SHA-256.
export function fingerprint(accessToken) {
  return createHash("sha256").update(accessToken).digest("hex").slice(0, 8);
}

async function read() {
  if (!PARAMETER) throw new Error("TOKEN_PARAMETER is not set: name the SSM parameter holding the token");
  const out = await ssm.send(new GetParameterCommand({ Name: PARAMETER, WithDecryption: true }));
  let doc;
  try {
    doc = JSON.parse(out.Parameter?.Value ?? "");
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
  return { accessToken: doc.access_token, tokenType: doc.token_type || "Bearer", expiresAt };
}

// getToken returns the cached token, reading SSM only when needed. force reads the
// parameter even though the cached token is still fresh: after the partner answered 401.
export async function getToken(force = false) {
  if (!force && cached && cached.expiresAt - MARGIN_MS > Date.now()) return cached;
  inflight ??= read().finally(() => {
    inflight = undefined;
  });
  try {
    cached = await inflight;
  } catch (err) {
    if (!cached || cached.expiresAt <= Date.now()) throw err;
    // SSM failed but the cached token is still valid: keep using it.
  }
  return cached;
}

// callPartner is fetch with the token. init.body must be replayable (a string or a
// Buffer, not a stream) because of the retry.
export async function callPartner(url, init = {}) {
  const send = (t) =>
    fetch(url, { ...init, headers: { ...init.headers, Authorization: `${t.tokenType} ${t.accessToken}` } });
  const token = await getToken();
  const res = await send(token);
  if (res.status !== 401) return res;
  const fresh = await getToken(true);
  if (fresh.accessToken === token.accessToken) return res; // same token: a retry would get the same 401
  await res.body?.cancel();
  return send(fresh);
}
