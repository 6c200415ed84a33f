"""Live feeds: the derived topics fanned out to operators over WebSocket and SSE.

``consumer`` tails ``ioc.state`` and ``ioc.alerts`` into the ``hub``, which numbers each
update, keeps a replay ring and offers it to each client's ``outbox`` (the slow-client
policy); ``feed`` starts a client with a ``snapshot`` or a resume; ``routes`` and ``sse``
are the transports.
"""

from api.live.consumer import live_feeds
from api.live.routes import router

__all__ = ["live_feeds", "router"]
