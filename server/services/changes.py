"""ChangeService.Watch: a server stream of airspace changes in a region.

The first message is a marker (kind ``CHANGE_KIND_UNSPECIFIED``) carrying the sequence
number the subscription starts after: every later change is delivered, so a client
knows when it is live and where to resume (``since_sequence``) after a reconnect, as
long as the server keeps the change in its in-memory log. Operators receive zone changes
and their own flights' changes, and a zone change lists only the watcher's own affected
flights (``Change.for_caller``); regulators receive everything. A watcher that falls more
than ``QUEUE_SIZE`` changes behind is disconnected with RESOURCE_EXHAUSTED, and at most
``max_watchers`` streams are open at a time (one more is RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import asyncio

from skytwin.server import convert
from skytwin.server.auth import current_caller
from skytwin.server.service import RequestTooLargeError
from skytwin.server.services._base import Base
from skytwin.v1 import changes_pb2 as pb
from skytwin.v1 import changes_pb2_grpc as rpc

__all__ = ["QUEUE_SIZE", "ChangeServicer"]

QUEUE_SIZE = 10_000


class ChangeServicer(Base, rpc.ChangeServiceServicer):
    watching = 0   # open streams of this servicer (instance attribute once set)

    async def Watch(self, request, context):
        caller = current_caller()
        box = convert.box_from_proto(request.region, "region", required=False)
        mx = self.core.limits.max_watchers
        if self.watching >= mx:
            raise RequestTooLargeError(f"{self.watching} Watch streams are open, "
                                       f"the limit is {mx}; retry later")
        self.watching += 1
        try:
            async for item in self._watch(caller, box, request):
                yield item
        finally:
            self.watching -= 1

    async def _watch(self, caller, box, request):
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        overflow = []

        def deliver(ch):
            if queue.full():
                overflow.append(ch.sequence)
            else:
                queue.put_nowait(ch)

        def callback(ch):  # called from booking threads
            loop.call_soon_threadsafe(deliver, ch)

        since = request.since_sequence if request.HasField("since_sequence") else None
        seq, backlog = await self.run_fast(self.core.subscribe, callback, since)
        try:
            yield pb.Change(sequence=seq, kind=pb.CHANGE_KIND_UNSPECIFIED)
            for ch in backlog:
                if ch.in_box(box) and ch.visible_to(caller):
                    yield convert.change_to_proto(ch.for_caller(caller))
            last = backlog[-1].sequence if backlog else seq
            while True:
                ch = await queue.get()
                if overflow:
                    raise RequestTooLargeError(f"watcher fell more than {QUEUE_SIZE} changes "
                                               "behind; reconnect with since_sequence")
                if ch.sequence <= last:
                    continue
                if ch.in_box(box) and ch.visible_to(caller):
                    yield convert.change_to_proto(ch.for_caller(caller))
        finally:
            self.core.unsubscribe(callback)
