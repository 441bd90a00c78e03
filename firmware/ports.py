"""The only I/O adapter: moves bytes between streams (UART, pseudo-terminal, TCP sockets)
and the sans-IO protocol objects (``dlms.hdlc.Link``, ``dlms.wrapper.Conn``,
``dlms.association.Association``).

One ``select.poll`` loop serves everything. It is the same on a board (``machine.UART`` and
sockets are pollable) and on the Unix port (pty file, sockets). A plain poll loop instead of
asyncio: no task objects or awaits per byte, so the steady state allocates nothing and the
order of events is deterministic.

Per HDLC port: one Link (its frame and APDU buffers) and one Association. An optical port
(``optical.OpticalPort``, an HdlcPort) puts the IEC 62056-21 mode E opening in front of its
link; a stream with a ``poll_obj`` (``rs485.HalfDuplex``) is polled through that object.
Per TCP connection: one wrapper.Conn and one Association, taken from a pool that grows up to
``max_tcp`` and is reused; a further connection is accepted and closed at once.

Tracing (the virtual meter's --trace): ``Server.trace`` is None, or a board hook
``trace(event, transport, conn, mv, n)`` called with every chunk received (``"rx"``) and
every frame sent (``"tx"``), and ``"open"``/``"close"`` of TCP connections (mv None). When it
is None the only cost is one attribute test: the per-frame path allocates nothing more.

Errors: a malformed wrapper header closes that connection only; an exception from one
connection's protocol code closes that connection (TCP) or resets that port's link (HDLC)
and is counted; the loop goes on serving the others.
"""

import select
import time

from dlms import association
from dlms import hdlc
from dlms import wrapper

_RX_CHUNK = 256


def _write_all(stream, mv, n, poller=None):
    """Write mv[:n] completely to a (possibly non-blocking) stream."""
    off = 0
    spins = 0
    while off < n:
        try:
            k = stream.write(mv[off:n])
        except OSError as e:
            if e.args and e.args[0] == 11:  # EAGAIN
                k = None
            else:
                raise
        if k is None or k == 0:
            spins += 1
            if spins > 2000:  # peer stopped reading for ~2 s: give up on this frame
                raise OSError(110)
            time.sleep_ms(1)
            continue
        off += k
    return off


class HdlcPort:
    """HDLC (IEC 62056-46) over a byte stream."""

    def __init__(self, server, stream, name, link_args):
        self.server = server
        self.stream = stream
        self.name = name
        self.link_args = link_args
        self.link = hdlc.Link(**link_args)
        self.settings = None  # cosem.hdlc_setup.HdlcSettings: re-applied whenever in NDM
        self.assoc = association.Association(server.device)
        self.conn_id = self.link.connection_id
        self.buf = bytearray(_RX_CHUNK)
        self.mv = memoryview(self.buf)
        self.errors = 0

    def restart(self):
        """After an unexpected error: the link back to NDM (its buffers reused: the error may
        have been a MemoryError) and no association."""
        self.link.reset()
        self.conn_id = self.link.connection_id
        self.assoc.reset()
        if self.settings is not None:
            self.settings.apply(self.link)

    def on_readable(self, now):
        n = self.stream.readinto(self.buf)
        if not n:
            return
        if self.server.trace is not None:
            self.server.trace("rx", "hdlc", self, self.mv, n)
        self.feed(self.mv, n, now)

    def feed(self, mv, n, now):
        link = self.link
        start = 0
        while start < n:
            start += link.feed(mv, start, n, now)
            self._service(now)

    def _service(self, now):
        link = self.link
        if link.connection_id != self.conn_id:
            self.conn_id = link.connection_id
            self.assoc.reset()
            if self.settings is not None and not link.connected:
                self.settings.apply(link)  # e.g. a device address written while connected
        k = link.request_len()
        if k:
            if link.request_broadcast:
                link.no_reply()
            else:
                out = link.reply_view()
                r = self.assoc.handle(link.request_client, link.request_view, k, out)
                if r:
                    link.reply(r)
                else:
                    link.no_reply()
        self.flush()

    def flush(self):
        link = self.link
        while True:
            k = link.output_len()
            if not k:
                break
            if self.server.trace is not None:
                self.server.trace("tx", "hdlc", self, link.output_view, k)
            _write_all(self.stream, link.output_view, k)
            link.output_done()

    def tick(self, now):
        self.link.tick(now)
        if self.link.connection_id != self.conn_id:
            self.conn_id = self.link.connection_id
            self.assoc.reset()
            if self.settings is not None and not self.link.connected:
                self.settings.apply(self.link)
        self.flush()


class TcpConn:
    """One TCP client: wrapper framing + its own association."""

    def __init__(self, server):
        self.server = server
        self.wrap = wrapper.Conn(max_apdu=server.max_apdu, server_wport=server.server_wport,
                                 tx=server.tcp_tx)
        self.assoc = association.Association(server.device)
        self.buf = bytearray(_RX_CHUNK)
        self.mv = memoryview(self.buf)
        self.sock = None

    def attach(self, sock):
        self.sock = sock
        self.wrap.no_reply()
        self.wrap.state = wrapper.ST_HEADER
        self.wrap.output_done()
        self.assoc.reset()

    def on_readable(self, now):
        """Returns False when the connection must be closed."""
        try:
            n = self.sock.readinto(self.buf)
        except OSError:
            return False
        if n is None:
            return True
        if n == 0:
            return False  # peer closed
        if self.server.trace is not None:
            self.server.trace("rx", "tcp", self, self.mv, n)
        w = self.wrap
        start = 0
        while start < n:
            start += w.feed(self.mv, start, n)
            if w.broken:
                return False
            k = w.request_len()
            if k:
                if w.request_dst != self.server.server_wport:
                    w.no_reply()  # not our logical device: discarded
                    continue
                out = w.reply_view()
                r = self.assoc.handle(w.request_client, w.request_view, k, out)
                if r:
                    w.reply(r)
                    if self.server.trace is not None:
                        self.server.trace("tx", "tcp", self, w.output_view, w.output_len())
                    _write_all(self.sock, w.output_view, w.output_len())
                    w.output_done()
                else:
                    w.no_reply()
        return True


class Server:
    def __init__(self, device, max_apdu=1024, server_wport=1, max_tcp=4, ticks_ms=None,
                 on_error=None):
        self.device = device
        self.max_apdu = max_apdu
        self.server_wport = server_wport
        self.max_tcp = max_tcp
        self.ticks_ms = ticks_ms or time.ticks_ms
        self.poller = select.poll()
        self.hdlc_ports = []
        self.listeners = []
        self.conns = {}  # id(sock) -> TcpConn in use
        self.pool = []  # TcpConn free for reuse
        self.watches = {}  # id(stream) -> (stream, callback)
        self._by_id = {}  # id(stream) -> handler kind
        self.errors = 0
        self.tcp_tx = None  # one reply buffer for every TCP connection (replies are written
        # out completely before the next request is read)
        self.on_error = on_error  # callback(where, exception): the board logs it
        self.sessions_tcp = 0
        self.trace = None  # board hook: every frame, only while tracing (module docstring)

    def add_hdlc(self, stream, name="hdlc", **link_args):
        return self.add_port(HdlcPort(self, stream, name, link_args))

    def add_port(self, port):
        """Serve an HdlcPort built elsewhere (e.g. optical.OpticalPort)."""
        stream = port.stream
        src = getattr(stream, "poll_obj", stream)  # rs485.HalfDuplex: poll its UART
        self.hdlc_ports.append(port)
        self.poller.register(src, select.POLLIN)
        self._by_id[id(src)] = ("hdlc", port)
        return port

    def preallocate_tcp(self, n):
        """Create up to n connection slots now, while the heap still has contiguous room
        (each holds two APDU-sized buffers), and the shared transmit buffer; returns how many
        slots exist. More are created on demand later if memory allows."""
        if self.tcp_tx is None:
            self.tcp_tx = bytearray(wrapper.HEADER_LEN + self.max_apdu)
        while len(self.pool) < n:
            try:
                self.pool.append(TcpConn(self))
            except MemoryError:
                break
        return len(self.pool)

    def add_tcp_listener(self, sock):
        sock.setblocking(False)
        self.listeners.append(sock)
        self.poller.register(sock, select.POLLIN)
        self._by_id[id(sock)] = ("listen", sock)

    def watch(self, stream, callback):
        """Call callback() when stream becomes readable (control pipes, signals)."""
        self.poller.register(stream, select.POLLIN)
        self._by_id[id(stream)] = ("watch", callback)

    def _accept(self, lsock):
        try:
            sock, _addr = lsock.accept()
        except OSError:
            return
        if len(self.conns) >= self.max_tcp:
            sock.close()  # no slot: refuse rather than starve the others
            return
        try:
            sock.setblocking(False)
            if self.tcp_tx is None:
                self.tcp_tx = bytearray(wrapper.HEADER_LEN + self.max_apdu)
            conn = self.pool.pop() if self.pool else TcpConn(self)
        except Exception:  # out of memory for a new slot: refuse this client only
            sock.close()
            raise
        conn.attach(sock)
        if self.trace is not None:
            self.trace("open", "tcp", conn, None, 0)
        self.conns[id(sock)] = conn
        self._by_id[id(sock)] = ("tcp", conn)
        self.poller.register(sock, select.POLLIN)
        self.sessions_tcp += 1

    def _close(self, conn):
        if self.trace is not None:
            self.trace("close", "tcp", conn, None, 0)
        sock = conn.sock
        try:
            self.poller.unregister(sock)
        except Exception:
            pass
        self.conns.pop(id(sock), None)
        self._by_id.pop(id(sock), None)
        try:
            sock.close()
        except OSError:
            pass
        conn.sock = None
        conn.assoc.reset()
        self.pool.append(conn)

    def run_once(self, timeout_ms=20):
        """Serve whatever is ready, then the timers. Returns False when asked to stop."""
        events = self.poller.poll(timeout_ms)
        now = self.ticks_ms()
        # Existing connections first, new ones last: a client that closes and reconnects
        # gets its old slot back instead of needing a second one.
        n = len(events)
        for i in range(n):
            if self._by_id.get(id(events[i][0]), ("", 0))[0] == "listen":
                events.append(events[i])
                events[i] = None
        for ev in events:
            if ev is None:
                continue
            obj = ev[0]
            flags = ev[1]
            entry = self._by_id.get(id(obj))
            if entry is None:
                continue
            kind, h = entry
            try:
                if kind == "hdlc":
                    if flags & select.POLLIN:
                        h.on_readable(now)
                elif kind == "tcp":
                    if flags & (select.POLLIN | select.POLLHUP | select.POLLERR):
                        if not h.on_readable(now):
                            self._close(h)
                elif kind == "listen":
                    self._accept(h)
                else:
                    if h() is False:
                        return False
            except Exception as e:  # one bad connection must not stop the meter
                self.errors += 1
                if self.on_error is not None:
                    self.on_error(kind, e)
                if kind == "tcp":
                    self._close(h)
                elif kind == "hdlc":
                    h.restart()
        for port in self.hdlc_ports:
            port.tick(now)
        return True
