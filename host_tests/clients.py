"""Thin drivers for the two independent DLMS client libraries used by the interop tests:
gurux-dlms (GPLv2, test-only) and dlms-cosem (MIT). Neither is ever imported by firmware/.

Both drivers speak to the virtual meter over the TCP wrapper (IEC 62056-47) or HDLC
(IEC 62056-46) on its pseudo-terminal, as client 16 (public, no authentication) or client
32 (reader, LLS). Both record every chunk of bytes they send and receive, so a test can
check that segmentation / block transfer really happened on the wire.

    with GuruxClient("tcp", meter.tcp, client=16) as g:      # snrm/aarq ... release/disc
        g.read("0.0.42.0.0.255", 1, 2)                       # -> parsed value
    with CosemClient("hdlc", meter.serial, client=32, password=b"12345678") as d:
        d.get("0.0.1.0.0.255", 8, 2)                         # -> raw A-XDR bytes

Management (client 1): HLS mechanism 5 (GMAC), security suite 0, every xDLMS APDU
authenticated and encrypted. Both drivers take the keys, their own system title and the
first invocation counter; ``next_ic`` says what the next association may start from:

    with GuruxClient("tcp", port, client=MANAGEMENT, invocation_counter=ic) as g: ...
    with CosemClient("hdlc", pty, client=MANAGEMENT, invocation_counter=ic) as d: ...

and both can push one raw (already protected or deliberately plain) APDU through the
association's transport and return the meter's raw reply APDU (``exchange_apdu``), for
replays, tampered tags and protocol negatives.

See design/interop.md for the libraries' quirks.
"""

import datetime
import logging
import socket
import time

import serial

SERVER_LOGICAL = 1
SERVER_PHYSICAL = 17
LLS_PASSWORD = b"12345678"
IO_TIMEOUT = 5.0
SERIAL_BAUD = 9600  # HDLC serial line (the virtual meter's pty ignores it; hil.py sets it)

# management client and suite-0 keys of a fresh meter (design/virtual-meter.md)
PUBLIC, READER, MANAGEMENT = 16, 32, 1
SERVER_TITLE = bytes.fromhex("4D4D4D0000BC614E")
MGMT_EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
MGMT_AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
MGMT_KEK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
GURUX_TITLE = bytes.fromhex("4752580000000001")  # "GRX" 00000001
COSEM_TITLE = b"GRX\0\0\0\0\2"


# ------------------------------------------------------------------------------ helpers
def obis_bytes(ln):
    """'0.0.40.0.0.255' -> 6 bytes."""
    parts = [int(x) for x in ln.split(".")]
    assert len(parts) == 6
    return bytes(parts)


def obis_str(b):
    return ".".join(str(x) for x in bytes(b))


def decode_cosem_datetime(b):
    """The 12-octet COSEM date-time (Blue Book 4.1.6.1): returns a dict of its fields and,
    when the date and time are fully specified, an aware UTC datetime.

    deviation: signed minutes of UTC minus local time (the contract's wording: central
    European winter time is -60), 0x8000 = not specified; so UTC = local + deviation.
    """
    b = bytes(b)
    assert len(b) == 12, "date-time must be 12 octets, got %d: %s" % (len(b), b.hex())
    year = (b[0] << 8) | b[1]
    dev = int.from_bytes(b[9:11], "big", signed=True)
    f = {"year": year, "month": b[2], "day": b[3], "dow": b[4], "hour": b[5], "minute": b[6],
         "second": b[7], "hundredths": b[8], "deviation": dev, "status": b[11], "utc": None}
    if year != 0xFFFF and b[2] <= 12 and b[3] <= 31 and b[5] < 24 and b[6] < 60 and b[7] < 60:
        hs = b[8] if b[8] < 100 else 0
        t = datetime.datetime(year, b[2], b[3], b[5], b[6], b[7], hs * 10000,
                              tzinfo=datetime.timezone.utc)
        if dev != -0x8000:
            t = t + datetime.timedelta(minutes=dev)
        f["utc"] = t
    return f


class RecordingMixin:
    """tx/rx logs of raw byte chunks."""

    def _init_logs(self):
        self.tx_log = []
        self.rx_log = []

    @property
    def tx_bytes(self):
        return b"".join(self.tx_log)

    @property
    def rx_bytes(self):
        return b"".join(self.rx_log)


class _ByteMover(RecordingMixin):
    """Moves bytes to/from the meter: a TCP socket or the pty (pyserial, raw)."""

    def __init__(self, kind, target, timeout=IO_TIMEOUT):
        self.kind = kind
        self.target = target
        self.timeout = timeout
        self.sock = None
        self.ser = None
        self._init_logs()

    def open(self):
        if self.kind == "tcp":
            self.sock = socket.create_connection(("127.0.0.1", int(self.target)),
                                                 timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            self.ser = serial.Serial(self.target, baudrate=SERIAL_BAUD, timeout=0.05)
            self.ser.reset_input_buffer()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
        if self.ser is not None:
            try:
                self.ser.close()
            finally:
                self.ser = None

    def send(self, data):
        data = bytes(data)
        self.tx_log.append(data)
        if self.sock is not None:
            self.sock.sendall(data)
        else:
            self.ser.write(data)
            self.ser.flush()

    def recv_some(self, deadline):
        """Some bytes (at least one) before the deadline, else TimeoutError."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no (complete) answer from the meter within %.1f s; "
                                   "received so far: %s" % (self.timeout, self.rx_bytes[-200:].hex()))
            if self.sock is not None:
                self.sock.settimeout(min(left, 0.5))
                try:
                    b = self.sock.recv(4096)
                except socket.timeout:
                    continue
                if not b:
                    raise ConnectionError("the meter closed the TCP connection")
            else:
                n = self.ser.in_waiting
                b = self.ser.read(n if n > 0 else 1)
                if not b:
                    continue
            self.rx_log.append(b)
            return b


# ------------------------------------------------------------------------------ gurux
class GuruxError(AssertionError):
    def __init__(self, msg, error=None):
        super().__init__(msg)
        self.error = error


class GuruxClient:
    """gurux-dlms client over the TCP wrapper or HDLC on the pty.

    transport: "tcp" (target = port) or "hdlc" (target = pty path).
    max_pdu: client max receive PDU size proposed in the AARQ (gurux default 0xFFFF).
    max_info: HDLC max info field RX and TX proposed in the SNRM (default 128: bare SNRM).
    """

    def __init__(self, transport, target, client=16, password=None, max_pdu=None,
                 max_info=None, timeout=IO_TIMEOUT, server_address=None, hls=None,
                 ek=None, ak=None, system_title=GURUX_TITLE, invocation_counter=1):
        """hls: HLS-GMAC with suite-0 ciphering (authenticated and encrypted); default:
        for client 1 (management). ek/ak/system_title/invocation_counter: the client's
        ciphering parameters (the counter of the first protected APDU)."""
        from gurux_dlms import GXDLMSClient
        from gurux_dlms.enums import Authentication, InterfaceType, Security
        from gurux_dlms.secure import GXDLMSSecureClient

        ek = MGMT_EK if ek is None else ek  # resolved now: hil.py may have changed them
        ak = MGMT_AK if ak is None else ak
        self.transport = transport
        self.io = _ByteMover(transport, target, timeout)
        c = GXDLMSSecureClient(True)
        if transport == "tcp":
            c.interfaceType = InterfaceType.WRAPPER
            c.serverAddress = SERVER_LOGICAL if server_address is None else server_address
        else:
            c.interfaceType = InterfaceType.HDLC
            c.serverAddress = (GXDLMSClient.getServerAddress(SERVER_LOGICAL, SERVER_PHYSICAL)
                               if server_address is None else server_address)
        c.clientAddress = client
        if password is not None:
            c.authentication = Authentication.LOW
            c.password = password
        self.hls = (client == MANAGEMENT) if hls is None else hls
        if self.hls:
            c.authentication = Authentication.HIGH_GMAC
            c.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
            c.ciphering.systemTitle = bytearray(system_title)
            c.ciphering.blockCipherKey = bytearray(ek)
            c.ciphering.authenticationKey = bytearray(ak)
            c.ciphering.invocationCounter = invocation_counter
        if max_pdu is not None:
            c.maxReceivePDUSize = max_pdu
        if max_info is not None:
            c.hdlcSettings.maxInfoRX = max_info
            c.hdlcSettings.maxInfoTX = max_info
        self.c = c
        self.aare = None
        self.ua = None
        self.rlre_command = None
        self.hls_reply = None

    # -- byte moving, as in Gurux's own GXDLMSReader (readDLMSPacket / readDataBlock)
    def _txrx(self, data, reply):
        from gurux_dlms import GXByteBuffer, GXReplyData

        notify = GXReplyData()
        self.io.send(data)
        rd = GXByteBuffer()
        deadline = time.monotonic() + self.io.timeout
        while True:
            rd.set(self.io.recv_some(deadline))
            if self.c.getData(rd, reply, notify):
                break
        if reply.error:
            raise GuruxError("gurux reports error %r" % (reply.error,), reply.error)
        return reply

    def read_data_block(self, frames):
        from gurux_dlms import GXReplyData

        reply = GXReplyData()
        if frames is None:
            return reply
        if not isinstance(frames, list):
            frames = [frames]
        for f in frames:
            reply.clear()
            self._txrx(f, reply)
            while reply.isMoreData():
                if reply.isStreaming():
                    nxt = None
                else:
                    nxt = self.c.receiverReady(reply)
                self._txrx(nxt, reply)
        return reply

    # -- session
    def open(self):
        self.io.open()
        try:
            if self.transport == "hdlc":
                from gurux_dlms import GXReplyData

                snrm = self.c.snrmRequest()
                if snrm:
                    reply = self._txrx(snrm, GXReplyData())
                    self.ua = bytes(reply.data.array()) if reply.data else b""
                    self.c.parseUAResponse(reply.data)
            reply = self.read_data_block(self.c.aarqRequest())
            self.aare = reply
            self.c.parseAareResponse(reply.data)
            if self.hls:
                from gurux_dlms.enums import Authentication

                assert self.c.authentication == Authentication.HIGH_GMAC
                reply = self.read_data_block(self.c.getApplicationAssociationRequest())
                self.hls_reply = reply
                self.c.parseApplicationAssociationResponse(reply.data)
        except BaseException:
            # refused: leave the HDLC link cleanly (DISC) when it is up, then close
            try:
                if self.transport == "hdlc" and self.ua is not None:
                    self.read_data_block(self.c.disconnectRequest())
            except Exception:
                pass
            self.io.close()
            raise
        return self

    def release(self):
        reply = self.read_data_block(self.c.releaseRequest())
        self.rlre_command = reply.command
        return reply

    def disconnect(self):
        if self.io.sock is None and self.io.ser is None:
            return
        try:
            d = self.c.disconnectRequest()
            if d is not None and self.transport == "hdlc":
                self.read_data_block(d)
        finally:
            self.io.close()

    def close(self):
        try:
            self.release()
        finally:
            self.disconnect()

    def __enter__(self):
        return self.open()

    def __exit__(self, et, ev, tb):
        if et is None:
            self.close()
        else:
            try:
                self.disconnect()
            except Exception:
                pass
        return False

    # -- reads
    def make_object(self, ln, class_id):
        from gurux_dlms.enums import ObjectType

        obj = self.c.createObject(ObjectType(class_id))
        obj.logicalName = ln
        return obj

    def read_object(self, obj, attr):
        """Read obj's attribute, update obj with it (gurux's own parsing); return the raw
        value gurux decoded from the A-XDR (bytes for octet-strings, lists for arrays...)."""
        reply = self.read_data_block(self.c.read(obj, attr))
        value = reply.value
        self.c.updateValue(obj, attr, value)
        return value

    def read(self, ln, class_id, attr):
        return self.read_object(self.make_object(ln, class_id), attr)

    def object_list(self):
        """[(class_id, version, 'a.b.c.d.e.f')] as gurux parses attr 2 of 0.0.40.0.0.255."""
        reply = self.read_data_block(self.c.getObjectsRequest())
        objs = self.c.parseObjects(reply.data, False, False)
        return [(int(o.objectType), int(o.version), o.logicalName) for o in objs]

    def object_list_raw(self):
        """The undecoded A-XDR of 0.0.40.0.0.255 attr 2, as gurux reassembled it."""
        reply = self.read_data_block(self.c.getObjectsRequest())
        return bytes(reply.data.array())

    def objects(self):
        """The object list as gurux's GXDLMSObject instances (with their access rights)."""
        reply = self.read_data_block(self.c.getObjectsRequest())
        return self.c.parseObjects(reply.data, False, False)

    # -- writes and methods
    def write_object(self, obj, attr):
        return self.read_data_block(self.c.write(obj, attr))

    def method(self, obj, index, data, data_type):
        return self.read_data_block(self.c.method(obj, index, data, data_type))

    @property
    def next_ic(self):
        """The invocation counter the client would use next."""
        return int(self.c.ciphering.invocationCounter)

    # -- raw APDUs
    def frame_apdu(self, apdu):
        """The transport frame(s) gurux would send for this APDU (HDLC: the next I-frame
        sequence numbers, LLC E6 E6 00; wrapper: the 8-byte header). Short APDUs only."""
        from gurux_dlms import GXByteBuffer
        from gurux_dlms.GXDLMS import GXDLMS

        st = self.c.settings
        if self.transport == "tcp":
            return bytes(GXDLMS.getWrapperFrame(st, apdu[0], GXByteBuffer(bytearray(apdu))))
        data = GXByteBuffer(bytearray(b"\xe6\xe6\x00" + bytes(apdu)))
        assert len(apdu) + 3 <= st.hdlc.maxInfoTX, "frame_apdu: APDU too long for one frame"
        return bytes(GXDLMS.getHdlcFrame(st, st.getNextSend(True), data))

    def apdu_of(self, frames):
        """The APDU inside frames gurux built (not sent)."""
        return split_apdus(b"".join(bytes(f) for f in frames), self.transport)[0]

    def protected_read_apdu(self, ln, class_id, attr):
        """The protected GET-Request APDU gurux would send to read the attribute (consumes
        one client invocation counter; nothing is sent, and the HDLC send sequence gurux
        used building the frame is given back)."""
        st = self.c.settings
        seq = st.senderFrame
        frames = self.c.read(self.make_object(ln, class_id), attr)
        st.senderFrame = seq
        return self.apdu_of(frames)

    def exchange_apdu(self, apdu):
        """Send one raw APDU in the current association; return the meter's raw reply APDU
        (gurux parses the frames to keep its HDLC state; its verdict is ignored)."""
        n0 = len(self.io.rx_log)
        try:
            self.read_data_block(self.frame_apdu(apdu))
        except Exception as e:
            self.exchange_error = e
        got = self.reply_apdus(self.io.rx_log[n0:])
        assert got, "no reply APDU to %s (%r); received %s" % (
            bytes(apdu).hex(), getattr(self, "exchange_error", None),
            b"".join(self.io.rx_log[n0:]).hex())
        return got[-1]

    def reply_apdus(self, chunks):
        return split_apdus(b"".join(chunks), self.transport)

    def tx_apdus(self, n0=0):
        return split_apdus(b"".join(self.io.tx_log[n0:]), self.transport)


# ------------------------------------------------------------------------------ dlms-cosem
_structlog_quiet = False


def quiet_structlog():
    global _structlog_quiet
    if _structlog_quiet:
        return
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    _structlog_quiet = True


class _RecordingIO(RecordingMixin):
    """Wraps a dlms-cosem IO object and records what crosses it.

    length_framing (HDLC only): dlms-cosem delimits received frames by their 7E flags:
    ``recv_frame`` reads until the next 7E (a lone 7E is taken for an opening flag and
    reading goes on to the next 7E), and ``_find_frame`` looks one 7E further per chunk
    received. HDLC under IEC 62056-46 is length-driven without byte stuffing, and ciphered
    frames often contain 7E: when one chunk brings two 7E (content "7E 7E", or an FCS
    ending in 7E followed by the closing flag), dlms-cosem already holds the whole frame
    but asks for more, waits its whole timeout (5 s) for bytes the meter will never send,
    and only then goes on. With length_framing the wrapper follows the frames by their
    length field: once the frame that answers the last request is complete, further reads
    (before the next send) return nothing at once instead of blocking, so dlms-cosem
    rescans its buffer. The bytes dlms-cosem gets and their order are unchanged.
    """

    def __init__(self, inner, length_framing=False):
        self.inner = inner
        self.length_framing = length_framing
        self._state = "idle"  # idle -> fmt (after the opening flag) -> body
        self._fmt = b""
        self._left = 0
        self._complete = False  # a whole frame arrived since the last send
        self._empties = 0
        self._init_logs()

    def _track(self, chunk):
        """Follow the frames; True if a frame was closed in the chunk."""
        closed = False
        for x in chunk:
            if self._state == "idle":
                if x == 0x7E:
                    self._state, self._fmt = "fmt", b""
            elif self._state == "fmt":
                if x == 0x7E and not self._fmt:
                    continue
                self._fmt += bytes([x])
                if len(self._fmt) == 2:
                    n = ((self._fmt[0] << 8) | self._fmt[1]) & 0x07FF
                    self._left = n - 2 + 1  # the rest of the frame and its closing flag
                    self._state = "body"
            else:
                self._left -= 1
                if self._left == 0:
                    self._state = "idle"
                    closed = closed or x == 0x7E
        return closed

    def connect(self):
        self.inner.connect()
        self._state, self._complete, self._empties = "idle", False, 0
        sp = getattr(self.inner, "serial_port", None)
        if sp is not None:
            sp.reset_input_buffer()

    def disconnect(self):
        self.inner.disconnect()

    def send(self, data):
        self.tx_log.append(bytes(data))
        self._complete = False
        self._empties = 0
        return self.inner.send(data)

    def recv(self, amount=1):
        sock = getattr(self.inner, "tcp_socket", None)
        if sock is not None:
            # dlms-cosem's BlockingTcpIO.recv spins at 100 % CPU for ever when the peer
            # closes the connection (recv() returning b"" is not taken for EOF)
            b = b""
            while len(b) < amount:
                try:
                    x = sock.recv(amount - len(b))
                except OSError as e:
                    raise ConnectionError("receive from the meter failed: %r" % (e,)) from e
                if not x:
                    raise ConnectionError("the meter closed the TCP connection; received %s"
                                          % (self.rx_bytes + b)[-200:].hex())
                b += x
        else:
            b = self.inner.recv(amount)
        self.rx_log.append(bytes(b))
        if self.length_framing:
            self._complete |= self._track(b)
        return b

    def recv_until(self, end):
        if (self.length_framing and self._complete and self._state == "idle"
                and self._empties < 64):
            self._empties += 1  # dlms-cosem is still looking for the end of that frame
            return b""
        b = self.inner.recv_until(end)
        self.rx_log.append(bytes(b))
        if self.length_framing:
            self._complete |= self._track(b)
        return b


class CosemClient:
    """dlms-cosem client over the TCP wrapper or HDLC on the pty.

    dlms-cosem's HDLC assumes a 128-byte information field and sends a bare SNRM; its
    max PDU (proposed in the AARQ) is settable.
    """

    def __init__(self, transport, target, client=16, password=None, max_pdu=65535,
                 timeout=IO_TIMEOUT, hls=None, ek=None, ak=None,
                 system_title=COSEM_TITLE, invocation_counter=1):
        """hls: HLS-GMAC with suite-0 ciphering (general-glo-ciphering DB, SC 30); default:
        for client 1 (management)."""
        quiet_structlog()
        from dlms_cosem.client import DlmsClient
        from dlms_cosem.io import BlockingTcpIO, HdlcTransport, SerialIO, TcpTransport
        from dlms_cosem.security import (HighLevelSecurityGmacAuthentication,
                                         LowLevelSecurityAuthentication,
                                         NoSecurityAuthentication)

        ek = MGMT_EK if ek is None else ek  # resolved now: hil.py may have changed them
        ak = MGMT_AK if ak is None else ak
        self.transport = transport
        if transport == "tcp":
            self.io = _RecordingIO(BlockingTcpIO(host="127.0.0.1", port=int(target),
                                                 timeout=timeout))
            t = TcpTransport(client_logical_address=client,
                             server_logical_address=SERVER_LOGICAL, io=self.io,
                             timeout=timeout)
        else:
            self.io = _RecordingIO(SerialIO(port_name=target, baud_rate=SERIAL_BAUD,
                                            timeout=timeout),
                                   length_framing=(client == MANAGEMENT) if hls is None else hls)
            t = HdlcTransport(client_logical_address=client,
                              server_logical_address=SERVER_LOGICAL,
                              server_physical_address=SERVER_PHYSICAL, io=self.io,
                              timeout=timeout)
        self.hls = (client == MANAGEMENT) if hls is None else hls
        self.t = t
        kw = {}
        if self.hls:
            auth = HighLevelSecurityGmacAuthentication(challenge_length=32)
            kw = dict(encryption_key=bytes(ek), authentication_key=bytes(ak),
                      client_system_title=bytes(system_title),
                      client_initial_invocation_counter=invocation_counter)
        elif password is None:
            auth = NoSecurityAuthentication()
        else:
            auth = LowLevelSecurityAuthentication(secret=password)
        self.client = DlmsClient(transport=t, authentication=auth, max_pdu_size=max_pdu,
                                 timeout=timeout, **kw)
        self.aare = None
        self.rlre = None

    def open(self):
        self.client.connect()
        try:
            self.aare = self.client.associate()
        except BaseException:
            try:
                self.client.disconnect()
            except Exception:
                pass
            raise
        return self

    def close(self):
        try:
            self.rlre = self.client.release_association()
        finally:
            self.client.disconnect()

    def __enter__(self):
        return self.open()

    def __exit__(self, et, ev, tb):
        if et is None:
            self.close()
        else:
            try:
                self.client.disconnect()
            except Exception:
                pass
        return False

    def get(self, ln, class_id, attr):
        """Raw A-XDR bytes of the attribute (block transfer reassembled by dlms-cosem)."""
        from dlms_cosem import cosem, enumerations

        a = cosem.CosemAttribute(interface=enumerations.CosemInterface(class_id),
                                 instance=cosem.Obis.from_bytes(obis_bytes(ln)), attribute=attr)
        return self.client.get(a)

    def read(self, ln, class_id, attr):
        from dlms_cosem import utils

        return utils.parse_as_dlms_data(self.get(ln, class_id, attr))

    def object_list_raw(self):
        return self.get("0.0.40.0.0.255", 15, 2)

    def attribute(self, ln, class_id, attr):
        from dlms_cosem import cosem, enumerations

        return cosem.CosemAttribute(interface=enumerations.CosemInterface(class_id),
                                    instance=cosem.Obis.from_bytes(obis_bytes(ln)),
                                    attribute=attr)

    def set(self, ln, class_id, attr, data):
        """SET-Request-Normal with raw A-XDR data; returns dlms-cosem's SetResponse."""
        return self.client.set(self.attribute(ln, class_id, attr), bytes(data))

    def action(self, ln, class_id, method, data):
        from dlms_cosem import cosem, enumerations

        m = cosem.CosemMethod(enumerations.CosemInterface(class_id),
                              cosem.Obis.from_bytes(obis_bytes(ln)), method)
        return self.client.action(m, bytes(data))

    @property
    def next_ic(self):
        return int(self.client.client_invocation_counter)

    def protect(self, apdu_event):
        """The general-glo-ciphering APDU bytes dlms-cosem would send for an xDLMS event
        (consumes one client invocation counter; the connection state is not touched)."""
        return self.client.dlms_connection.protect(apdu_event).to_bytes()

    def protected_get(self, ln, class_id, attr):
        from dlms_cosem.protocol import xdlms

        return self.protect(xdlms.GetRequestNormal(cosem_attribute=self.attribute(
            ln, class_id, attr)))

    def exchange_apdu(self, apdu):
        """Send one raw APDU through dlms-cosem's transport (HDLC framing, segmentation and
        RR handled by it); return the meter's raw reply APDU."""
        return bytes(self.t.send_request(bytes(apdu)))

    def reply_apdus(self, chunks):
        return split_apdus(b"".join(chunks), self.transport)

    def object_list(self):
        """[(class_id, version, 'a.b.c.d.e.f')] as dlms-cosem parses attr 2."""
        from dlms_cosem.parsers import AssociationObjectListParser

        items = AssociationObjectListParser.parse_bytes(self.object_list_raw())
        out = []
        for it in items:
            ln = it.logical_name
            out.append((int(it.interface), int(it.version),
                        "%d.%d.%d.%d.%d.%d" % (ln.a, ln.b, ln.c, ln.d, ln.e, ln.f)))
        return out


# ------------------------------------------------------------------------------ contract
# design/virtual-meter.md: what each client may see, restricted to the objects the meter
# implements now (the brief's scope); (class id, version) per the Blue Book.
IMPLEMENTED = {
    "0.0.40.0.0.255": (15, 1),  # Association LN, current association
    "0.0.41.0.0.255": (17, 0),  # SAP assignment
    "0.0.42.0.0.255": (1, 0),  # logical device name
    "0.0.96.1.0.255": (1, 0),  # serial number
    "1.0.0.2.0.255": (1, 0),  # firmware version
    "0.0.1.0.0.255": (8, 0),  # clock
}
# the public client sees only these (plus the per-client Association LN instance of its
# own, and the invocation counter object once it exists)
PUBLIC_ALLOWED = set(IMPLEMENTED) | {"0.0.40.0.1.255", "0.0.43.1.0.255"}
CONTRACT_CLASSES = {
    "0.0.40.0.1.255": 15, "0.0.40.0.2.255": 15, "0.0.40.0.3.255": 15,
    "0.0.43.0.0.255": 64, "0.0.43.1.0.255": 1, "0.0.22.0.0.255": 23, "0.0.20.0.0.255": 19,
}


def check_object_list(objs, client):
    """objs: [(class_id, version, ln)] as a client library parsed object_list. Asserts it
    fits the contract for client 16 (public) or 32 (reader). Returns the set of names."""
    names = [o[2] for o in objs]
    assert len(names) == len(set(names)), "duplicate entries in object_list: %r" % (objs,)
    by_ln = {o[2]: (o[0], o[1]) for o in objs}
    missing = set(IMPLEMENTED) - set(by_ln)
    assert not missing, "client %d: object_list lacks %s: %r" % (client, sorted(missing), objs)
    for ln, cv in IMPLEMENTED.items():
        assert by_ln[ln] == cv, "%s listed as class/version %r, expected %r" % (ln, by_ln[ln], cv)
    for ln, (cid, _v) in by_ln.items():
        if ln in CONTRACT_CLASSES:
            assert cid == CONTRACT_CLASSES[ln], "%s listed as class %d" % (ln, cid)
    if client == 16:
        extra = set(by_ln) - PUBLIC_ALLOWED
        assert not extra, "the public client must not see %s" % sorted(extra)
    return set(by_ln)


def check_clock(raw12, tolerance_s=60):
    """raw12: the 12 octets of clock attr 2. Asserts deviation 0 and time ~ host UTC."""
    f = decode_cosem_datetime(raw12)
    assert f["deviation"] == 0, "deviation %r (contract: UTC, deviation 0): %s" % (
        f["deviation"], bytes(raw12).hex())
    assert f["utc"] is not None, "date-time not fully specified: %s" % bytes(raw12).hex()
    now = datetime.datetime.now(datetime.timezone.utc)
    skew = abs((f["utc"] - now).total_seconds())
    assert skew < tolerance_s, "meter clock %s vs host %s (%.1f s)" % (f["utc"], now, skew)
    # day of week (1 = Monday ... 7 = Sunday, 0xFF not specified)
    assert f["dow"] in (f["utc"].isoweekday(), 0xFF), "day of week %r for %s" % (
        f["dow"], f["utc"].date())
    return f


def split_hdlc_frames(stream):
    """Split a byte stream of HDLC frames (length-driven, no byte stuffing) into the raw
    frames without flags. Bytes that do not parse are skipped."""
    out = []
    b = bytes(stream)
    i = 0
    while i + 3 <= len(b):
        if b[i] != 0x7E or b[i + 1] == 0x7E or (b[i + 1] & 0xF0) != 0xA0:
            i += 1
            continue
        n = ((b[i + 1] << 8) | b[i + 2]) & 0x07FF
        if i + n + 2 > len(b) or b[i + n + 1] != 0x7E:
            i += 1
            continue
        out.append(b[i + 1:i + n + 1])
        i += n + 1
    return out


def split_apdus(stream, transport):
    """The APDUs in a byte stream of one direction: wrapper frames (8-byte header) or HDLC
    I-frames (segments joined, LLC stripped). Non-I-frames (SNRM/UA/RR/DISC) are skipped."""
    b = bytes(stream)
    out = []
    if transport == "tcp":
        i = 0
        while i + 8 <= len(b):
            n = int.from_bytes(b[i + 6:i + 8], "big")
            out.append(b[i + 8:i + 8 + n])
            i += 8 + n
        return out
    cur = b""
    for f in split_hdlc_frames(b):
        # format(2) dst src ctrl HCS ... FCS: addresses end with a byte whose LSB is 1
        j = 2
        while not f[j] & 1:
            j += 1
        j += 1  # past dst
        while not f[j] & 1:
            j += 1
        j += 1  # past src
        ctrl = f[j]
        if ctrl & 1:  # not an I-frame
            continue
        info = f[j + 3:-2]
        cur += info
        if not f[0] & 0x08:
            if cur[:2] in (b"\xe6\xe6", b"\xe6\xe7"):
                cur = cur[3:]
            out.append(cur)
            cur = b""
    return out


def ciphered_header(apdu):
    """(tag, system title or None, SC, IC, offset of the ciphertext) of a protected APDU:
    glo/ded service-specific (tag, length, SC, IC, ...), general-glo/ded DB/DC (tag,
    title, length, SC, IC, ...)."""
    a = bytes(apdu)
    p = 1
    title = None
    if a[0] in (0xDB, 0xDC):
        assert a[1] == 8, a[:12].hex()
        title = a[2:10]
        p = 10
    n = a[p]
    p += 1
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(a[p:p + k], "big")
        p += k
    assert p + n == len(a), "length %d vs %d: %s" % (n, len(a) - p, a[:16].hex())
    return a[0], title, a[p], int.from_bytes(a[p + 1:p + 5], "big"), p + 5


def open_ciphered(apdu, ek=None, ak=None, title=None):
    """Verify the 12-octet GCM tag of one protected APDU (SC 30: authenticated and
    encrypted) independently, with pyca ``cryptography``: IV = title || IC, AAD = SC || AK.
    Returns (IC, plaintext); raises cryptography.exceptions.InvalidTag if it is wrong.
    (gurux-dlms 1.0.203 does not verify tags when it decrypts.)"""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    ek = MGMT_EK if ek is None else ek  # resolved now: hil.py may have changed them
    ak = MGMT_AK if ak is None else ak
    title = SERVER_TITLE if title is None else title
    _tag, t, sc, ic, p = ciphered_header(apdu)
    if t is not None:
        title = t
    assert sc == 0x30, "SC %02x (expected 30: authenticated and encrypted)" % sc
    iv = bytes(title) + ic.to_bytes(4, "big")
    body = bytes(apdu)[p:]
    d = Cipher(algorithms.AES(bytes(ek)),
               modes.GCM(iv, body[-12:], min_tag_length=12)).decryptor()
    d.authenticate_additional_data(bytes([sc]) + bytes(ak))
    pt = d.update(body[:-12]) + d.finalize()
    return ic, pt


def hdlc_segmented_frames(stream):
    """Raw frames of the stream that have the segmentation bit (format A8)."""
    return [f for f in split_hdlc_frames(stream) if f[0] & 0x08]


def sent_get_next(tx_chunks, transport):
    """How many GET-Request-Next APDUs (C0 02) a client sent."""
    n = 0
    if transport == "tcp":
        for c in tx_chunks:
            if len(c) >= 10 and c[8:10] == b"\xc0\x02":
                n += 1
    else:
        for f in split_hdlc_frames(b"".join(tx_chunks)):
            if b"\xe6\xe6\x00\xc0\x02" in f:
                n += 1
    return n


def object_list_rights(raw):
    """Access rights per object from the raw A-XDR of object_list (Association LN v1:
    attribute modes 0 no-access, 1 read, 2 write, 3 read-write; method modes 0 no-access,
    1 access), decoded with dlms-cosem's generic A-XDR decoder:
    {ln: ({attr: mode}, {method: mode})}."""
    quiet_structlog()
    from dlms_cosem import utils

    out = {}
    for entry in utils.parse_as_dlms_data(raw):
        _cid, _ver, ln, rights = entry
        attrs, methods = rights
        out[obis_str(ln)] = ({a[0]: a[1] for a in attrs}, {m[0]: m[1] for m in methods or []})
    return out


def check_rights(raw, client):
    """Public: read-only, no methods. Reader: writes nothing (contract)."""
    rights = object_list_rights(raw)
    for ln, (attrs, methods) in rights.items():
        for a, mode in attrs.items():
            assert mode in (0, 1), "client %d: %s attr %d access mode %d (must not write)" % (
                client, ln, a, mode)
        if client == 16:
            assert not any(methods.values()), "public: %s methods %r" % (ln, methods)
        assert attrs.get(1) == 1, "%s: logical_name not readable" % ln
    return rights
