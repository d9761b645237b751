"""SQS event source mappings through LocalStack, as the product's fan-out uses them: a
FIFO queue (and a standard one), BatchSize, ReportBatchItemFailures, a dead-letter queue,
and ScalingConfig.MaximumConcurrency, which LocalStack honours only through the plugin's
shim (localstack_hostmode/esm.py).

The function is the fake bootstrap: for each batch it sleeps FAKE_SQS_SLEEP seconds,
writes what it got and when into FAKE_SQS_DIR, and reports the records whose body says
"fail" in batchItemFailures."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until

BATCH_SIZE = 5
CONCURRENCY = 3


@dataclass
class Run:
    """One invocation, as the function recorded it."""

    pid: int
    start: float
    end: float
    records: list[dict[str, Any]]

    @property
    def groups(self) -> set[str]:
        return {r["group"] for r in self.records}

    @property
    def numbers(self) -> list[int]:
        return [json.loads(r["body"])["n"] for r in self.records]


def runs_in(directory: Path) -> list[Run]:
    return sorted((Run(**json.loads(f.read_text())) for f in directory.glob("*.json")), key=lambda r: r.start)


def peak_overlap(runs: list[Run]) -> int:
    """The most invocations running at one moment (an end before a start at a tie)."""
    edges = sorted([(r.start, 1) for r in runs] + [(r.end, -1) for r in runs])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def overlapping(runs: list[Run]) -> Iterator[tuple[Run, Run]]:
    for a, b in combinations(runs, 2):
        if a.start < b.end and b.start < a.end:
            yield a, b


def seen(runs: list[Run]) -> Counter[int]:
    """How many times the function got each message (by its number)."""
    return Counter(n for r in runs for n in r.numbers)


@pytest.fixture
def queue(sqs: Any) -> Iterator[Callable[..., tuple[str, str]]]:
    """queue(fifo, **attributes) -> (url, arn), deleted after the test."""
    urls: list[str] = []

    def create(fifo: bool = True, **attributes: str) -> tuple[str, str]:
        name = f"hostmode-{uuid.uuid4().hex[:10]}" + (".fifo" if fifo else "")
        if fifo:
            attributes["FifoQueue"] = "true"
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        urls.append(url)
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    yield create
    for url in urls:
        sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def mapping(lam: Any, queue: Any, create_function: Any) -> Iterator[Callable[..., str]]:
    """mapping(queue_arn, function, **params) -> UUID: an event source mapping, deleted
    (and gone) after the test, before its function and queue."""
    uuids: list[str] = []

    def create(queue_arn: str, function: str, **params: Any) -> str:
        params.setdefault("BatchSize", BATCH_SIZE)
        params.setdefault("FunctionResponseTypes", ["ReportBatchItemFailures"])
        m = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=function, **params)
        uuids.append(m["UUID"])
        return m["UUID"]

    yield create
    for u in uuids:
        lam.delete_event_source_mapping(UUID=u)

    def gone() -> bool:
        for u in uuids:
            try:
                lam.get_event_source_mapping(UUID=u)
                return False
            except lam.exceptions.ResourceNotFoundException:
                pass
        return True

    wait_until(gone, 30, "event source mappings deleted")


def consumer(create_function: Any, out: Path, sleep: float) -> str:
    return create_function(Environment={"Variables": {"FAKE_SQS_DIR": str(out), "FAKE_SQS_SLEEP": str(sleep)}})


def send(sqs: Any, url: str, messages: list[tuple[str | None, dict[str, Any]]]) -> None:
    """Send (group, body) pairs in order, ten at a time (group None: a standard queue)."""
    for i in range(0, len(messages), 10):
        entries = []
        for j, (group, body) in enumerate(messages[i : i + 10]):
            entry: dict[str, Any] = {"Id": str(j), "MessageBody": json.dumps(body)}
            if group is not None:
                entry |= {"MessageGroupId": group, "MessageDeduplicationId": uuid.uuid4().hex}
            entries.append(entry)
        r = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not r.get("Failed"), r


Messages = list[tuple[str, dict[str, Any]]]


def group_messages(sizes: list[int], fail: frozenset[tuple[int, int]] = frozenset()) -> Messages:
    """Groups g0, g1, ... of the given sizes, interleaved as a scheduler would send them;
    body n numbers every message, seq its place in its group."""
    out: Messages = []
    for seq in range(max(sizes)):
        for g, size in enumerate(sizes):
            if seq < size:
                out.append((f"g{g}", {"n": len(out), "seq": seq, "fail": (g, seq) in fail}))
    return out


def queue_empty(sqs: Any, url: str) -> bool:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def assert_fifo_parity(runs: list[Run]) -> None:
    """No batch over BatchSize; at most k invocations at once, and more than one; never
    one message group in two invocations at once."""
    assert max(len(r.records) for r in runs) <= BATCH_SIZE
    assert 1 < peak_overlap(runs) <= CONCURRENCY, [(r.start, r.end) for r in runs]
    for a, b in overlapping(runs):
        assert not a.groups & b.groups, (a, b)


def test_fifo_with_maximum_concurrency_runs_batches_of_several_groups_at_once(
    sqs: Any, queue: Any, create_function: Any, mapping: Any, tmp_path: Path
) -> None:
    sizes = [1, 2, 3, 4, 5, 6, 7] * 2 + [12]  # 40 messages in 15 groups, one over BatchSize
    messages = group_messages(sizes)
    url, arn = queue(VisibilityTimeout="30")
    send(sqs, url, messages)
    name = consumer(create_function, tmp_path, sleep=0.3)
    mapping(arn, name, ScalingConfig={"MaximumConcurrency": CONCURRENCY})

    wait_until(lambda: set(seen(runs_in(tmp_path))) == set(range(len(messages))), 60, "every message processed")
    wait_until(lambda: queue_empty(sqs, url), 15, "the queue empty")
    runs = runs_in(tmp_path)

    assert seen(runs) == Counter(range(len(messages))), "each message exactly once"
    assert_fifo_parity(runs)
    assert any(len(r.groups) > 1 for r in runs), "a batch may hold several groups, as on AWS"
    # Each group's messages reach the function in the order they were sent.
    for g in range(len(sizes)):
        order = [json.loads(rec["body"])["seq"] for r in runs for rec in r.records if rec["group"] == f"g{g}"]
        assert order == list(range(sizes[g])), (g, order)


def test_standard_queue_with_maximum_concurrency(
    sqs: Any, queue: Any, create_function: Any, mapping: Any, tmp_path: Path
) -> None:
    url, arn = queue(fifo=False, VisibilityTimeout="30")
    send(sqs, url, [(None, {"n": n}) for n in range(40)])
    name = consumer(create_function, tmp_path, sleep=0.3)
    mapping(arn, name, ScalingConfig={"MaximumConcurrency": CONCURRENCY})

    wait_until(lambda: set(seen(runs_in(tmp_path))) == set(range(40)), 60, "every message processed")
    wait_until(lambda: queue_empty(sqs, url), 15, "the queue empty")
    runs = runs_in(tmp_path)
    assert seen(runs) == Counter(range(40))
    assert max(len(r.records) for r in runs) <= BATCH_SIZE
    assert 1 < peak_overlap(runs) <= CONCURRENCY


def test_batch_item_failures_come_back_then_go_to_the_dead_letter_queue(
    sqs: Any, queue: Any, create_function: Any, mapping: Any, tmp_path: Path
) -> None:
    max_receive_count = 2
    failing = frozenset({(0, 0), (2, 1), (4, 2)})  # (group, seq): first, middle and last of their groups
    messages = group_messages([3] * 6, fail=failing)
    failed = {body["n"] for _, body in messages if body["fail"]}
    dlq_url, dlq_arn = queue()
    url, arn = queue(
        VisibilityTimeout="3",
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}),
    )
    send(sqs, url, messages)
    name = consumer(create_function, tmp_path, sleep=0.3)
    mapping(arn, name, ScalingConfig={"MaximumConcurrency": CONCURRENCY})

    # Each failed message is received maxReceiveCount times; the next receive moves it.
    wait_until(lambda: queue_empty(sqs, url), 60, "the queue empty (failed messages in the dead-letter queue)")
    dead: list[int] = []

    def drain() -> bool:
        r = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30)
        dead.extend(json.loads(m["Body"])["n"] for m in r.get("Messages", []))
        return len(dead) >= len(failed)

    wait_until(drain, 15, "the failed messages in the dead-letter queue")
    assert sorted(dead) == sorted(failed)

    runs = runs_in(tmp_path)
    counts = seen(runs)
    assert counts == Counter({n: max_receive_count if n in failed else 1 for n in range(len(messages))}), counts
    receive_counts = sorted((json.loads(rec["body"])["n"], rec["receive_count"]) for r in runs for rec in r.records)
    assert [c for n, c in receive_counts if n in failed] == [1, 2] * len(failed)
    assert_fifo_parity(runs)


def test_without_scaling_config_localstack_invokes_one_group_at_a_time(
    sqs: Any, queue: Any, create_function: Any, mapping: Any, tmp_path: Path
) -> None:
    messages = group_messages([3] * 4)
    url, arn = queue(VisibilityTimeout="30")
    send(sqs, url, messages)
    name = consumer(create_function, tmp_path, sleep=0.2)
    mapping(arn, name)

    wait_until(lambda: set(seen(runs_in(tmp_path))) == set(range(len(messages))), 60, "every message processed")
    wait_until(lambda: queue_empty(sqs, url), 15, "the queue empty")
    runs = runs_in(tmp_path)
    assert seen(runs) == Counter(range(len(messages)))
    # LocalStack's own poller, unchanged: one invocation at a time, one group per batch.
    assert peak_overlap(runs) == 1
    assert all(len(r.groups) == 1 for r in runs), [r.groups for r in runs]
