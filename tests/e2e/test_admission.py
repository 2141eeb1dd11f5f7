"""Admission control at the ASGI level: handlers the test holds open decide when slots free up, so
every step is deterministic (no timing)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Collection

import pytest
from starlette.types import Message, Receive, Scope, Send

from entrypoints.http.admission import Admission


class GatedApp:
    """Each request runs until the test opens its gate; the app records the order they started
    in and answers 200 with the body it read."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"].strip("/")
        self.started.append(name)
        await self.gate(name).wait()
        body = b""
        if scope["method"] == "POST":
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


class Call:
    """One request through the middleware; the test feeds what the client sends."""

    def __init__(self, app: Admission, name: str, method: str = "GET") -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.sent: list[Message] = []
        scope: Scope = {"type": "http", "method": method, "path": f"/{name}", "headers": []}
        self.task = asyncio.create_task(app(scope, self.inbox.get, self._send))

    async def _send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int | None:
        return self.sent[0]["status"] if self.sent else None

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


async def settle() -> None:
    """Lets every task that can run, run, until none can."""
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
def gated() -> GatedApp:
    return GatedApp()


@pytest.fixture
def admission(gated: GatedApp) -> Callable[..., Admission]:
    def make(max_in_flight: int, max_queued: int | None, unqueued_paths: Collection[str] = ()) -> Admission:
        return Admission(gated, max_in_flight, max_queued, unqueued_paths)

    return make


async def test_requests_past_the_slots_wait_and_only_a_full_queue_sheds_with_an_immediate_503(
    gated: GatedApp, admission: Callable[..., Admission]
) -> None:
    app = admission(max_in_flight=2, max_queued=2)
    calls = [Call(app, name) for name in ("a", "b", "c", "d")]
    await settle()
    assert gated.started == ["a", "b"]
    assert app.in_flight == 2
    assert app.queued == 2
    assert all(call.status is None for call in calls)

    shed = Call(app, "e")
    await settle()

    # Answered while every handler is still held: the 503 did not wait for a slot.
    assert shed.task.done()
    assert shed.status == 503
    assert dict(shed.sent[0]["headers"])[b"retry-after"] == b"1"
    assert json.loads(shed.body) == {"detail": "Server busy, retry shortly"}
    assert "e" not in gated.started

    for name in ("a", "b", "c", "d"):
        gated.gate(name).set()
    await asyncio.gather(*(call.task for call in calls))
    assert [call.status for call in calls] == [200, 200, 200, 200]
    assert app.in_flight == 0
    assert app.queued == 0


async def test_queued_requests_are_served_in_arrival_order_as_slots_free_up(
    gated: GatedApp, admission: Callable[..., Admission]
) -> None:
    app = admission(max_in_flight=1, max_queued=3)
    calls = {name: Call(app, name) for name in ("a", "b", "c", "d")}
    await settle()
    assert gated.started == ["a"]

    for finished, expected in (("a", ["a", "b"]), ("b", ["a", "b", "c"]), ("c", ["a", "b", "c", "d"])):
        gated.gate(finished).set()
        await calls[finished].task
        await settle()
        assert gated.started == expected
        # A newcomer joins the back of the queue: it never overtakes the ones already waiting.
        assert app.in_flight == 1

    gated.gate("d").set()
    await calls["d"].task
    assert app.in_flight == 0


async def test_a_newcomer_does_not_overtake_the_queue_when_a_slot_frees_up(
    gated: GatedApp, admission: Callable[..., Admission]
) -> None:
    app = admission(max_in_flight=1, max_queued=2)
    first, waiting = Call(app, "a"), Call(app, "b")
    await settle()

    gated.gate("a").set()
    await first.task
    newcomer = Call(app, "c")
    await settle()

    assert gated.started == ["a", "b"]
    assert newcomer.status is None
    gated.gate("b").set()
    gated.gate("c").set()
    await asyncio.gather(waiting.task, newcomer.task)
    assert gated.started == ["a", "b", "c"]


async def test_a_client_that_hangs_up_while_queued_frees_its_place(
    gated: GatedApp, admission: Callable[..., Admission]
) -> None:
    app = admission(max_in_flight=1, max_queued=1)
    running, queued = Call(app, "a"), Call(app, "b")
    await settle()
    assert app.queued == 1

    # As uvicorn tells it: the (empty) body first, then, once the client is gone, a disconnect.
    await queued.inbox.put({"type": "http.request", "body": b"", "more_body": False})
    await settle()
    assert app.queued == 1
    await queued.inbox.put({"type": "http.disconnect"})
    await queued.task

    assert queued.sent == []
    assert app.queued == 0
    # Its place is free: the next request waits instead of being shed, and is the one served.
    later = Call(app, "c")
    await settle()
    assert later.status is None
    assert app.queued == 1
    gated.gate("a").set()
    gated.gate("c").set()
    await asyncio.gather(running.task, later.task)
    assert gated.started == ["a", "c"]
    assert later.status == 200


async def test_a_queued_request_whose_task_is_cancelled_leaves_the_queue(
    gated: GatedApp, admission: Callable[..., Admission]
) -> None:
    app = admission(max_in_flight=1, max_queued=1)
    running, queued = Call(app, "a"), Call(app, "b")
    await settle()

    queued.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued.task

    assert app.queued == 0
    gated.gate("a").set()
    await running.task
    assert app.in_flight == 0


async def test_the_body_a_queued_request_sent_reaches_its_handler_whole_and_in_order(
    gated: GatedApp, admission: Callable[..., Admission]
) -> None:
    app = admission(max_in_flight=1, max_queued=1)
    running, upload = Call(app, "a"), Call(app, "b", method="POST")
    await upload.inbox.put({"type": "http.request", "body": b"first,", "more_body": True})
    await upload.inbox.put({"type": "http.request", "body": b"second", "more_body": False})
    await settle()
    assert gated.started == ["a"]

    gated.gate("a").set()
    gated.gate("b").set()
    await asyncio.gather(running.task, upload.task)

    assert upload.status == 200
    assert upload.body == b"first,second"


async def test_with_no_queue_a_request_past_the_slots_is_shed_at_once(
    gated: GatedApp, admission: Callable[..., Admission]
) -> None:
    app = admission(max_in_flight=1, max_queued=0)
    running = Call(app, "a")
    shed = Call(app, "b")
    await settle()

    assert shed.status == 503
    gated.gate("a").set()
    await running.task


async def test_unqueued_paths_are_answered_while_every_slot_and_the_queue_are_taken(
    gated: GatedApp, admission: Callable[..., Admission]
) -> None:
    app = admission(max_in_flight=1, max_queued=0, unqueued_paths=("/healthz",))
    running = Call(app, "a")
    await settle()

    gated.gate("healthz").set()
    probe = Call(app, "healthz")
    await probe.task

    assert probe.status == 200
    gated.gate("a").set()
    await running.task
