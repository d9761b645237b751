"""SQS event source mappings with ScalingConfig.MaximumConcurrency, as on AWS.

This shim exists for parity with AWS Lambda; it changes nothing else.

On AWS, an SQS event source mapping with `ScalingConfig.MaximumConcurrency` k runs up to
k invocations of the function at once, each with a batch of up to `BatchSize` messages.
For a FIFO queue a batch may hold messages of several message groups, and no two batches
in flight hold messages of the same group: SQS itself never hands out a message of a
group while an earlier message of that group is in flight, so a group's messages are
processed in order, one batch after another, while other groups run alongside.

What LocalStack 4.14 lacks: its SQS poller (`SqsPoller.poll_events`, driven by
`EsmWorker.poller_loop`) ignores `ScalingConfig`. One thread receives up to BatchSize
messages, invokes the function, deletes what succeeded, then waits
`LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC` (1 s) before it receives again: one
invocation at a time, at most BatchSize messages a second. For a FIFO queue it also
splits every received batch by message group and invokes once per group, one group
after another, so with one message per group every invocation gets one message.

What the shim does, for SQS mappings whose `ScalingConfig.MaximumConcurrency` is set
(any other mapping, and Kinesis and DynamoDB streams, keep LocalStack's behaviour
exactly):

- One poll (`poll_events`, still called by LocalStack's `EsmWorker.poller_loop` with its
  own poll interval, backoff and shutdown) runs up to k slots on threads of their own:
  it starts one, and each slot that receives messages starts another, so an empty queue
  costs one `ReceiveMessage` per poll as before. Each slot receives up to BatchSize
  messages with LocalStack's own `ReceiveMessage` call (same long-polling and count
  overrides), hands them, as one batch, to LocalStack's own `SqsPoller.handle_messages`
  (filtering, deletion of filtered-out and successful messages, `batchItemFailures`;
  failed messages stay in flight and reappear after the visibility timeout, and SQS
  moves them to the dead-letter queue after maxReceiveCount receives), and receives
  again at once: k invocations stay in flight, none waits for another's batch.
- Batches are formed by SQS's receive, as on AWS: a FIFO receive returns as many
  messages of one group as it can, then of the next; a group with messages in flight is
  skipped. So a batch may hold several groups, a group larger than BatchSize is processed
  in consecutive batches, and two batches in flight never share a group. (A single
  receive of k x BatchSize messages split into k batches would not do: from a backlog of
  large groups it returns mostly one group, whose batches must then run one after
  another, so there would be no concurrency.) A slot that receives a message of a group
  another slot holds (its visibility timeout expired before the batch was done, as
  would happen on AWS too) logs a warning.
- A slot that receives nothing while others are busy waits until one of them finishes a
  batch (which may make a FIFO group visible again) or one poll interval passes, then
  receives again. The poll ends when a slot receives nothing while no other slot is
  receiving or invoking; LocalStack's worker then waits its poll interval (or backs off
  when the whole poll received nothing) and polls again. A receive error ends the poll
  and is raised to the worker, which backs off as LocalStack does. Stopping, disabling
  or deleting the mapping lets each slot finish its batch and start no other.

`install()` applies the two patches (`EsmWorkerFactory.get_esm_worker`, which tells the
poller of an SQS mapping its k, and `SqsPoller.poll_events`) with LocalStack's own
`localstack.utils.patch`. The plugin calls it from a `localstack.hooks.on_infra_start`
hook (pyproject.toml), which LocalStack runs at startup before it serves any request,
so before any event source mapping worker exists.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

from localstack.runtime import hooks
from localstack.utils.patch import Patch, Patches

LOG = logging.getLogger(__name__)

PATCHES = Patches()
_install_lock = threading.Lock()

# SQS's own limits for one ReceiveMessage (as LocalStack's poller uses them).
SQS_MAX_RECEIVE = 10
SQS_MAX_WAIT_SECONDS = 20
# LocalStack's poller hands at most this many messages to one invocation.
MAX_MINI_BATCH = 2500


@hooks.on_infra_start()
def hostmode_esm_parity() -> None:
    """LocalStack startup hook (entry point in pyproject.toml)."""
    install()


def install() -> None:
    """Apply the patches once. LocalStack's modules are imported here, not at module
    import, so that loading the hook does not import them before LocalStack's own
    startup patches run."""
    from localstack.services.lambda_.event_source_mapping.esm_worker_factory import EsmWorkerFactory
    from localstack.services.lambda_.event_source_mapping.pollers.sqs_poller import SqsPoller

    with _install_lock:
        if PATCHES.patches:
            return
        PATCHES.add(Patch.function(EsmWorkerFactory.get_esm_worker, _get_esm_worker))
        PATCHES.add(Patch.function(SqsPoller.poll_events, _poll_events))
        PATCHES.apply()
    LOG.info("hostmode: SQS event source mappings honour ScalingConfig.MaximumConcurrency")


def maximum_concurrency(esm_config: dict[str, Any]) -> int | None:
    """ScalingConfig.MaximumConcurrency of a mapping, or None when unset."""
    k = (esm_config.get("ScalingConfig") or {}).get("MaximumConcurrency")
    return int(k) if k else None


def _get_esm_worker(get_esm_worker: Any, factory: Any) -> Any:
    from localstack.services.lambda_.event_source_mapping.pollers.sqs_poller import SqsPoller

    worker = get_esm_worker(factory)
    k = maximum_concurrency(factory.esm_config)
    if k and isinstance(worker.poller, SqsPoller):
        # The worker's own shutdown event: set by stop, delete and LocalStack's shutdown.
        worker.poller.hostmode_concurrency = ConcurrentPolling(k, worker._shutdown_event, worker.uuid)
        LOG.info("hostmode: event source mapping %s runs up to %d invocations at once", worker.uuid, k)
    return worker


def _poll_events(poll_events: Any, poller: Any) -> None:
    concurrency: ConcurrentPolling | None = getattr(poller, "hostmode_concurrency", None)
    if concurrency is None:
        return poll_events(poller)
    return concurrency.poll(poller)


def receive(poller: Any) -> list[dict[str, Any]]:
    """One ReceiveMessage of up to BatchSize messages, exactly as SqsPoller.poll_events
    makes it (LocalStack's count and wait-time overrides included)."""
    from localstack.aws.api.sqs import MessageSystemAttributeName

    response = poller.source_client.receive_message(
        QueueUrl=poller.queue_url,
        MaxNumberOfMessages=min(poller.batch_size, SQS_MAX_RECEIVE),
        WaitTimeSeconds=min(poller.maximum_batching_window, SQS_MAX_WAIT_SECONDS),
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=[MessageSystemAttributeName.All],
        sqs_override_max_message_count=poller.batch_size,
        sqs_override_wait_time_seconds=poller.maximum_batching_window,
    )
    return response.get("Messages", [])


def message_groups(messages: list[dict[str, Any]]) -> set[str]:
    return {g for m in messages if (g := (m.get("Attributes") or {}).get("MessageGroupId"))}


class _Poll:
    """What the slots of one poll share."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.started = 0  # slots started
        self.alive = 0  # slots not yet ended
        self.busy = 0  # slots receiving or invoking
        self.done = False
        self.received = 0
        self.error: Exception | None = None
        self.groups: Counter[str] = Counter()  # FIFO groups in batches being processed


class ConcurrentPolling:
    """The k slots of one SQS event source mapping."""

    def __init__(self, k: int, stop: threading.Event, name: str) -> None:
        self.k = k
        self.stop = stop
        self.name = name

    def poll(self, poller: Any) -> None:
        from localstack.services.lambda_.event_source_mapping.pollers.poller import EmptyPollResultsException

        state = _Poll()
        with state.cond:
            self._start_slot(poller, state)
            while state.alive:
                state.cond.wait(1.0)
        if state.error is not None:
            raise state.error
        if not state.received:
            raise EmptyPollResultsException(service="sqs", source_arn=poller.source_arn)

    def _start_slot(self, poller: Any, state: _Poll) -> None:
        """Start one more slot (state.cond held). A poll starts with one slot, and each
        slot that receives messages starts another, up to k: an empty queue costs one
        ReceiveMessage per poll, as with LocalStack's poller, and a backlog has k
        batches in flight after k receives."""
        state.started += 1
        state.alive += 1
        name = f"esm-{self.name}-slot{state.started}"
        threading.Thread(target=self._run_slot, args=(poller, state), name=name, daemon=True).start()

    def _run_slot(self, poller: Any, state: _Poll) -> None:
        try:
            self._slot(poller, state)
        finally:
            with state.cond:
                state.alive -= 1
                state.cond.notify_all()

    def _slot(self, poller: Any, state: _Poll) -> None:
        from localstack.config import LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC

        while True:
            with state.cond:
                if state.done or self.stop.is_set():
                    return
                state.busy += 1
            try:
                messages = receive(poller)
            except Exception as e:
                with state.cond:
                    state.busy -= 1
                    state.error = state.error or e
                    state.done = True
                    state.cond.notify_all()
                return
            if not messages:
                with state.cond:
                    state.busy -= 1
                    if state.busy == 0:
                        # Nobody holds a batch that could free a group, and nothing came.
                        state.done = True
                        state.cond.notify_all()
                        return
                    state.cond.wait(LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC)
                continue
            groups = message_groups(messages)
            with state.cond:
                state.received += len(messages)
                if state.started < self.k and not state.done:
                    self._start_slot(poller, state)
                if shared := [g for g in groups if state.groups[g]]:
                    LOG.warning(
                        "hostmode: event source mapping %s received messages of group(s) %s while another batch of "
                        "them is being processed: the queue's visibility timeout is shorter than the invocation",
                        self.name,
                        ", ".join(sorted(shared)),
                    )
                state.groups.update(groups)
            try:
                self._handle(poller, messages)
            finally:
                with state.cond:
                    state.groups.subtract(groups)
                    state.busy -= 1
                    state.cond.notify_all()

    @staticmethod
    def _handle(poller: Any, messages: list[dict[str, Any]]) -> None:
        """LocalStack's per-batch handling, with its error handling: a failed batch is
        logged and its messages stay in flight until their visibility timeout."""
        for start in range(0, len(messages), MAX_MINI_BATCH):
            try:
                poller.handle_messages(messages[start : start + MAX_MINI_BATCH])
            except Exception as e:
                LOG.warning(
                    "Polling or batch processing failed: %s", e, exc_info=LOG.isEnabledFor(logging.DEBUG)
                )
