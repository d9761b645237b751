"""A fake Lambda runtime for the tests: speaks the Runtime API as aws-lambda-go does
(one keep-alive connection, chunked POST bodies) and does what each event asks.

The tests put it in a function zip as `bootstrap`, with a #! line naming the Python that
runs the tests. Standard library only.

At init, FAKE_INIT in the function's environment may say:
  error         POST /runtime/init/error, then exit 1 (as a runtime whose setup failed)
  exit:N        exit with status N before asking for an invocation
Each event is a JSON object; its "action" (default "echo") says what to do:
  echo          answer {"pid", "request_id", "deadline_ms", "arn", "cwd", "env", "event"};
                env is the environment the process was started with (not Python's
                os.environ, which the interpreter itself amends)
  whoami        call STS GetCallerIdentity with boto3 configured by the environment alone
                (the fake must then run on a Python that has boto3), answer its Arn
  print         print event["lines"] (stdout) and event["errors"] (stderr), then echo
  sleep         sleep event["seconds"], then echo
  exit          print a line, then exit with event["code"] mid-invocation
  fail          POST .../error: {"errorType": event["type"], "errorMessage": event["message"]}
  stream_error  POST .../response whose chunked trailers carry an error, as aws-lambda-go
                does when a streamed response fails
  gather        write the pid into event["dir"], wait (at most 20 s) until event["count"]
                files are there, then answer their names: proves invocations overlap
  big           answer event["size"] bytes
An event with "Records" (a batch from an SQS event source mapping) is handled apart:
sleep FAKE_SQS_SLEEP seconds (default 0), answer {"batchItemFailures": [...]} naming
each record whose body is a JSON object with "fail": true, and, when FAKE_SQS_DIR is
set, write there <request id>.json: {"pid", "start", "end" (time.monotonic(), which is
system-wide), "records": [{"id", "group", "receive_count", "body"}]}.
"""

import http.client
import json
import os
import socket
import sys
import time

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime"
conn = http.client.HTTPConnection(API)


def start_environment() -> dict[str, str]:
    with open("/proc/self/environ", "rb") as f:
        pairs = [item.decode().split("=", 1) for item in f.read().split(b"\0") if item]
    return dict(pairs)


def post(path: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    """POST with a chunked body, as aws-lambda-go sends every body."""
    conn.request("POST", path, body=iter([body[:7], body[7:]]), headers=headers or {}, encode_chunked=True)
    resp = conn.getresponse()
    resp.read()
    return resp.status


def post_with_trailers(path: str, body: bytes, trailers: dict[str, str]) -> None:
    """http.client cannot send trailers: write the request by hand on its own socket."""
    host, port = API.split(":")
    with socket.create_connection((host, int(port))) as s:
        head = f"POST {path} HTTP/1.1\r\nHost: {API}\r\nTransfer-Encoding: chunked\r\n"
        head += f"Trailer: {', '.join(trailers)}\r\n\r\n"
        tail = "".join(f"{k}: {v}\r\n" for k, v in trailers.items())
        s.sendall(head.encode() + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n" + tail.encode() + b"\r\n")
        s.recv(4096)


def sqs_batch(rid: str, records: list[dict]) -> None:
    start = time.monotonic()
    time.sleep(float(os.environ.get("FAKE_SQS_SLEEP") or 0))
    failures = []
    for r in records:
        try:
            body = json.loads(r["body"])
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("fail"):
            failures.append({"itemIdentifier": r["messageId"]})
    out = os.environ.get("FAKE_SQS_DIR")
    if out:
        seen = [
            {
                "id": r["messageId"],
                "group": r["attributes"].get("MessageGroupId"),
                "receive_count": int(r["attributes"]["ApproximateReceiveCount"]),
                "body": r["body"],
            }
            for r in records
        ]
        record = {"pid": os.getpid(), "start": start, "end": time.monotonic(), "records": seen}
        with open(os.path.join(out, f".{rid}"), "w") as f:
            json.dump(record, f)
        os.rename(os.path.join(out, f".{rid}"), os.path.join(out, f"{rid}.json"))
    post(f"{BASE}/invocation/{rid}/response", json.dumps({"batchItemFailures": failures}).encode())


init = os.environ.get("FAKE_INIT", "")
print(f"fake: init pid={os.getpid()}", flush=True)
if init == "error":
    body = json.dumps({"errorType": "Fake.InitFailed", "errorMessage": "fake init failed on purpose"}).encode()
    post(f"{BASE}/init/error", body, {"Lambda-Runtime-Function-Error-Type": "Fake.InitFailed"})
    sys.exit(1)
if init.startswith("exit:"):
    print("fake: exiting during init", file=sys.stderr, flush=True)
    sys.exit(int(init[5:]))

while True:
    conn.request("GET", f"{BASE}/invocation/next")
    resp = conn.getresponse()
    event = json.loads(resp.read() or b"{}")
    rid = resp.getheader("Lambda-Runtime-Aws-Request-Id")
    if isinstance(event, dict) and "Records" in event:
        sqs_batch(rid, event["Records"])
        continue
    action = event.get("action", "echo") if isinstance(event, dict) else "echo"
    answer = {
        "pid": os.getpid(),
        "request_id": rid,
        "deadline_ms": resp.getheader("Lambda-Runtime-Deadline-Ms"),
        "arn": resp.getheader("Lambda-Runtime-Invoked-Function-Arn"),
        "cwd": os.getcwd(),
        "env": start_environment(),
        "event": event,
    }
    if action == "print":
        for line in event.get("lines", []):
            print(line, flush=True)
        for line in event.get("errors", []):
            print(line, file=sys.stderr, flush=True)
    elif action == "whoami":
        import boto3

        answer = {"pid": os.getpid(), "arn": boto3.client("sts").get_caller_identity()["Arn"]}
    elif action == "sleep":
        time.sleep(float(event["seconds"]))
    elif action == "exit":
        print("fake: exiting mid-invocation", flush=True)
        os._exit(int(event["code"]))
    elif action == "fail":
        body = json.dumps({"errorType": event["type"], "errorMessage": event["message"]}).encode()
        post(f"{BASE}/invocation/{rid}/error", body, {"Lambda-Runtime-Function-Error-Type": event["type"]})
        continue
    elif action == "stream_error":
        import base64

        error = json.dumps({"errorType": "Fake.StreamBroke", "errorMessage": "stream broke"}).encode()
        trailers = {
            "Lambda-Runtime-Function-Error-Type": "Fake.StreamBroke",
            "Lambda-Runtime-Function-Error-Body": base64.b64encode(error).decode(),
        }
        post_with_trailers(f"{BASE}/invocation/{rid}/response", b"partial", trailers)
        continue
    elif action == "gather":
        open(os.path.join(event["dir"], str(os.getpid())), "w").close()
        deadline = time.monotonic() + 20
        while len(os.listdir(event["dir"])) < event["count"] and time.monotonic() < deadline:
            time.sleep(0.05)
        answer = {"pid": os.getpid(), "seen": sorted(os.listdir(event["dir"]))}
    elif action == "big":
        post(f"{BASE}/invocation/{rid}/response", b"x" * int(event["size"]))
        continue
    post(f"{BASE}/invocation/{rid}/response", json.dumps(answer).encode())
