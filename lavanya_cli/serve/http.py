"""The HTTP connection, bounded by the server itself rather than only by a proxy in front of it.

uvicorn's parser keeps a request's target and headers as they arrive, with no bound on their
size or number: a huge URL once held the event loop long enough for health checks to time out,
and one huge header swelled a server's memory (docs/serve.md). Its connections also
wait without end for a request that never finishes arriving. ``BoundedHttpProtocol`` is uvicorn's httptools protocol
with bounds applied as the bytes arrive:

* the request target (path and query) at most ``TARGET_MAX_BYTES`` (414),
* each header line at most ``HEADER_MAX_BYTES``, all of them at most ``HEADERS_MAX_BYTES``,
  at most ``HEADERS_MAX`` of them, and at most ``HEAD_RECEIVED_MAX_BYTES`` received while a
  request's head is incomplete (httptools holds a header until its line ends) (431),
* the whole request (line, headers and body) within ``REQUEST_SECONDS`` of its first byte, or
  of the connection opening (408),
* at most ``PIPELINED_MAX`` requests sent ahead of their answers on one connection (the
  connection is dropped: a client that sends without reading costs memory with every request),

each refused at once with the server's JSON error shape and the connection closed. Any other
malformed request gets the same shape (400) instead of uvicorn's plain text. A request's scope
also carries ``lavanya.cut``: the app calls it to drop a connection whose client has stopped
reading (``transport.abort``: a close would wait for the unread audio to drain).
"""

from __future__ import annotations

import json
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

TARGET_MAX_BYTES = 8 * 1024
HEADER_MAX_BYTES = 8 * 1024
HEADERS_MAX_BYTES = 32 * 1024
HEADERS_MAX = 64
HEAD_RECEIVED_MAX_BYTES = 512 * 1024
REQUEST_SECONDS = 10.0
# Requests a client may send ahead of their answers on one connection (HTTP/1.1 pipelining):
# past that, it is not reading its answers, and every request it sends costs memory.
PIPELINED_MAX = 8
CUT_EXTENSION = "lavanya.cut"


class _Refused(Exception):
    def __init__(self, status: int, error: str, detail: str):
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


_DROPPED = _Refused(429, "too_many_requests", "requests sent ahead of their answers")


def error_response(status: int, error: str, detail: str) -> bytes:
    """A whole HTTP/1.1 response carrying the server's JSON error, closing the connection."""
    body = json.dumps({"error": error, "detail": detail}).encode()
    return (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools connection with the bounds in the module doc."""

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._refusal: _Refused | None = None
        self._in_head = True  # from a request's first byte to the end of its headers
        self._in_message = False  # from a request's first byte to the end of its body
        self._head_bytes = self._head_received = 0
        self._timer = None
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = self.loop.call_later(REQUEST_SECONDS, self._too_slow)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _too_slow(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._in_message and self.cycle is not None and self.cycle.response_started:
            # answered before all of it arrived (a 413 refuses a body unread): no second answer
            self.transport.close()
            return
        self._refuse_now(_Refused(408, "request_timeout", f"the request did not arrive within {REQUEST_SECONDS:g} s"))

    def _refuse_now(self, refusal: _Refused) -> None:
        self._disarm()
        self.logger.warning("refused a request: %s", refusal.detail)
        self.transport.write(error_response(refusal.status, refusal.error, refusal.detail))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        # Bytes after a complete request start the clock for the next one (even a stray line
        # break, which the parser takes without starting a message).
        self._arm()
        if self._in_head:
            self._head_received += len(data)
            if self._head_received > HEAD_RECEIVED_MAX_BYTES:
                self._refuse_now(_Refused(431, "headers_too_large",
                                          f"the request line and headers are over {HEAD_RECEIVED_MAX_BYTES} bytes"))
                return
        super().data_received(data)

    # httptools' callbacks: an exception raised here makes the parser fail, and uvicorn then
    # answers through ``send_400_response`` (below), which sends the refusal instead.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = self._in_message = True
        self._head_bytes = self._head_received = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > TARGET_MAX_BYTES:
            self._refusal = _Refused(414, "uri_too_long", f"the request target is over {TARGET_MAX_BYTES} bytes; "
                                                          "send long text in a POST body")
            raise self._refusal
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value)
        self._head_bytes += size
        problem = (f"a header is over {HEADER_MAX_BYTES} bytes" if size > HEADER_MAX_BYTES
                   else f"the headers are over {HEADERS_MAX_BYTES} bytes" if self._head_bytes > HEADERS_MAX_BYTES
                   else f"there are more than {HEADERS_MAX} headers" if len(self.headers) >= HEADERS_MAX else None)
        if problem:
            self._refusal = _Refused(431, "headers_too_large", problem)
            raise self._refusal
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if len(self.pipeline) >= PIPELINED_MAX:
            self.logger.warning("dropped a connection: more than %d requests sent ahead of their answers",
                                PIPELINED_MAX)
            self._refusal = _DROPPED
            self.transport.abort()
            raise _DROPPED  # stops the parser: nothing more is read from this connection
        self.scope["extensions"] = {**self.scope.get("extensions", {}), CUT_EXTENSION: self.transport.abort}
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_message = False
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        refusal = self._refusal or _Refused(400, "bad_request", "the request is not valid HTTP/1.1")
        self._refusal = None
        if refusal is not _DROPPED:
            self._refuse_now(refusal)

    def _unsupported_upgrade_warning(self) -> None:
        """The server speaks no WebSocket: an upgrade is answered as the plain request it is."""


__all__ = ["BoundedHttpProtocol", "CUT_EXTENSION", "error_response"]
