// The Node.js snippets of docs/consumers.md, run by examples/consumers_integration_test.go.
//
// usage: TOKEN_PARAMETER=/token-refresher/tokens/ecard node snippets.js
//
// Reads the parameter each documented way and prints one JSON object of fingerprints
// (never a token): {"powertools": ..., "sdk": ...}. Then it waits for a line on
// standard input (the test publishes a new token meanwhile) and prints
// {"cached": ..., "forced": ...}: a Powertools read within maxAge, which still has the
// old token, and one with forceFetch, which has the new one.

import { createHash } from "node:crypto";
import { createInterface } from "node:readline";
import { getParameter } from "@aws-lambda-powertools/parameters/ssm";
import { SSMClient, GetParameterCommand } from "@aws-sdk/client-ssm";

const PARAMETER = process.env.TOKEN_PARAMETER;

export async function readToken(forceFetch = false) {
  // maxAge: at most 300 s, the longest safe cache; forceFetch: true after a 401.
  const value = await getParameter(PARAMETER, { decrypt: true, maxAge: 300, forceFetch });
  return JSON.parse(value); // {access_token, token_type, expires_at, ...}
}

const ssm = new SSMClient({});

export async function readTokenSdk() {
  // No cache of its own: keep the result in a module variable, for at most 300 s.
  const out = await ssm.send(new GetParameterCommand({ Name: PARAMETER, WithDecryption: true }));
  return JSON.parse(out.Parameter.Value);
}

const fp = (doc) => createHash("sha256").update(doc.access_token).digest("hex").slice(0, 8);

console.log(JSON.stringify({ powertools: fp(await readToken()), sdk: fp(await readTokenSdk()) }));
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
await lines.next();
console.log(JSON.stringify({ cached: fp(await readToken()), forced: fp(await readToken(true)) }));
process.exit(0);
