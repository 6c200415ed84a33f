"""One bounded queue per client: the slow-client policy of the live feeds.

The hub never waits for a client. It offers each message to each matching client's
outbox, which decides at once:

- **Entity updates merge per entity, latest wins.** A waiting update of the same entity is
  replaced, and the new one goes to the back of the line, so the outbox stays in id order
  (a client that resumes from the last id it saw misses nothing). A client that falls
  behind gets fewer, fresher entity updates, never stale ones.
- **Area tiles merge per area the same way** (each is the area's whole state) and count
  with the entities.
- **Alert transitions and incident messages are never dropped or merged.**
- **Bounds:** at most ``max_entities`` distinct entities (and areas) and ``max_alerts`` transitions
  (alerts and incidents together) wait. Going past either closes the outbox with reason
  ``slow-consumer``: the client is disconnected, and when it reconnects with its last id
  it is resumed from the replay buffer or, if that no longer reaches back far enough,
  sent a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict

from api.live.messages import Message

SLOW_CONSUMER = "slow-consumer"
SHUTDOWN = "shutdown"


class OutboxClosed(Exception):
    """The outbox was closed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Outbox:
    """Messages waiting for one client, in id order."""

    def __init__(self, *, max_entities: int, max_alerts: int) -> None:
        self.max_entities, self.max_alerts = max_entities, max_alerts
        # Key: ("entity", id) for entity updates and ("area", id) for area tiles (merged),
        # ("alert", seq) for transitions of alerts and incidents.
        self._items: OrderedDict[tuple[str, object], Message] = OrderedDict()
        self._entities = 0
        self._alerts = 0
        self._wakeup = asyncio.Event()
        self._closed = asyncio.Event()
        self.closed_reason: str | None = None
        self.merged = 0  # entity updates replaced by newer ones before they were sent

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self.closed_reason is not None

    def offer(self, message: Message) -> bool:
        """Queue a message without ever waiting; False when the outbox is (now) closed."""
        if self.closed_reason is not None:
            return False
        if message.kind == "entity" or message.kind == "area":
            # Entity updates and area tiles: the latest of each replaces a waiting one.
            name = message.entity_id if message.kind == "entity" else message.area_id
            key: tuple[str, object] = (message.kind, name)
            if self._items.pop(key, None) is not None:
                self.merged += 1
            elif self._entities >= self.max_entities:
                self.close(SLOW_CONSUMER)
                return False
            else:
                self._entities += 1
        else:
            if self._alerts >= self.max_alerts:
                self.close(SLOW_CONSUMER)
                return False
            key = ("alert", message.seq)
            self._alerts += 1
        self._items[key] = message
        self._wakeup.set()
        return True

    def close(self, reason: str) -> None:
        """Close with a reason; what was waiting is dropped (the client will resume)."""
        if self.closed_reason is None:
            self.closed_reason = reason
            self._items.clear()
            self._entities = self._alerts = 0
            self._wakeup.set()
            self._closed.set()

    async def wait_closed(self) -> str:
        """Wait until the outbox is closed; the reason."""
        await self._closed.wait()
        return self.closed_reason or ""

    def pop(self) -> Message | None:
        """The oldest waiting message, or None; raises OutboxClosed once closed."""
        if self.closed_reason is not None:
            raise OutboxClosed(self.closed_reason)
        if not self._items:
            return None
        key, message = self._items.popitem(last=False)
        if key[0] != "alert":
            self._entities -= 1
        else:
            self._alerts -= 1
        if not self._items:
            self._wakeup.clear()
        return message

    async def get(self, wait_s: float) -> Message | None:
        """The next message; None when nothing came within ``wait_s`` seconds."""
        message = self.pop()
        if message is not None:
            return message
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), wait_s)
        return self.pop()
