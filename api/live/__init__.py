"""Live feeds: the derived topics fanned out to operators over WebSocket and SSE.

``consumer`` tails ``ioc.state``, ``ioc.alerts`` and ``ioc.incidents`` into the ``hub``,
which numbers each update, keeps a replay ring and offers it to each client's ``outbox``
(the slow-client policy); the hub also keeps the ``areas`` tiles over the ``registry``
and sends them as they change; ``feed`` starts a client with a ``snapshot`` (``snapshot``,
``incidents``) or a resume; ``routes`` and ``sse`` are the transports. The message kinds
are listed in ``messages`` (the area message's schema in ``schema``).
"""

from api.live.consumer import live_feeds
from api.live.routes import router

__all__ = ["live_feeds", "router"]
