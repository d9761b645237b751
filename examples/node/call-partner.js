#!/usr/bin/env node
// Call a partner API with the token the refresher published, once per line of input.
//
// usage: TOKEN_PARAMETER=/token-refresher/tokens/ecard node call-partner.js URL
//
// Each line read from standard input is one request to URL: an empty line a GET, any
// other line a POST with the line as its body. For each request one JSON line is
// printed: {"status": ..., "token_fingerprint": ..., "body": ...}, where the fingerprint
// identifies the token in use (never the token itself). The process keeps its token
// between requests, as a warm Lambda does, so the 401 rule of tokens.js can be seen at
// work when the token is replaced between two lines. AWS settings come from the
// environment (AWS_REGION, AWS_ENDPOINT_URL for LocalStack, ...).

import { createInterface } from "node:readline";
import { callPartner, fingerprint, getToken } from "./tokens.js";

const url = process.argv[2];
if (process.argv.length !== 3) {
  console.error("usage: TOKEN_PARAMETER=/token-refresher/tokens/ecard node call-partner.js URL");
  process.exit(2);
}

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  const init = line ? { method: "POST", body: line } : {};
  const res = await callPartner(url, init);
  const body = await res.text();
  const token = await getToken();
  console.log(JSON.stringify({ status: res.status, token_fingerprint: fingerprint(token.accessToken), body }));
}
// The SDK's and fetch's kept-alive connections would hold the process open a while.
process.exit(0);
