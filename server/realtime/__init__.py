"""Live subscriptions over websockets (graphql-transport-ws and graphql-ws).

A naive strawberry subscription runs one resolver, one bus subscription, one execution
of the selection set and one JSON encoding per client per event, and one uvicorn
process tops out near 5-6k websocket messages/s. Here the work is done once per event
for every group of identical subscriptions, and only the final write is per client:

    bus (one upstream subscription per channel, per process)
      -> Stream: one per (document, operation, variables, audience) in this process
         (streams.py); runs the subscription once through strawberry with a context of
         its own (live.py), serialises each result once (frames.py)
      -> Member.deliver(frame): the same Frame object into each client's Outbox
         (outbox.py): bounded, never blocks, progress ticks coalesce per subscription,
         a subscription that overflows ends alone with SUBSCRIBER_OVERFLOW
      -> one writer task per socket adds the operation id around the shared payload
         and awaits the socket: a stalled client stalls only its own writer.

The audience is decided per client before it joins (resolvers.subscriptions.audience:
the permission check, then "admin", "owner" or "public" for a job, the viewer itself
for a feed), so one stream serves every client that would see exactly the same bytes.
A client joining a running stream first gets the stream's last full state.

protocols.py adapts strawberry's two protocol handlers; connection.py is one socket;
connections.py writes websocket_connections in batches; service.py owns it all per app.
"""

from comfygraph.server.realtime.frames import LEGACY_WS, TRANSPORT_WS
from comfygraph.server.realtime.protocols import LegacyWSHandler, TransportWSHandler
from comfygraph.server.realtime.service import Realtime, RealtimeStats

__all__ = [
    "LEGACY_WS",
    "TRANSPORT_WS",
    "LegacyWSHandler",
    "Realtime",
    "RealtimeStats",
    "TransportWSHandler",
]
