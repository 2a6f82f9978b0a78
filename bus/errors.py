"""What the event bus raises; every error is an :class:`EventBusError`.

EventBusError
 +-- InvalidChannel      a channel name PostgreSQL could not LISTEN on as given (ValueError)
 +-- EventTooLarge       an encoded event over the NOTIFY payload limit (ValueError)
 +-- BusUnavailable      the first connection to the broker failed at start
 +-- PublishError        the broker did not take an event (timeout, connection lost)
 +-- BusClosed           the bus is not running, or this subscription has ended
 +-- SubscriberOverflow  this subscriber fell too far behind and was ended
"""

from __future__ import annotations


class EventBusError(Exception):
    pass


class InvalidChannel(EventBusError, ValueError):
    pass


class EventTooLarge(EventBusError, ValueError):
    pass


class BusUnavailable(EventBusError):
    pass


class PublishError(EventBusError):
    pass


class BusClosed(EventBusError):
    pass


class SubscriberOverflow(EventBusError):
    """The subscriber's queue overflowed with events that may not be dropped.

    Nothing was dropped silently: the subscription ends here instead. Close the client's
    stream; when it subscribes again it reads the current state first.
    """
