"""Interoperability with gurux-dlms (GPLv2, test-only): the virtual meter serves Gurux's
client over HDLC on its pseudo-terminal and over the TCP wrapper, as client 16 (public, no
authentication) and client 32 (reader, LLS), with large and small PDU / information field
(GET block transfer and HDLC segmentation). design/interop.md describes the client.
"""

import datetime
import os
import sys

import pytest

import running_meter as vm  # noqa: E402
import clients as cl  # noqa: E402
vmeter = vm.vmeter

from gurux_dlms import GXDLMSClient, GXDLMSException  # noqa: E402
from gurux_dlms.enums import AssociationResult, Command, InterfaceType, SourceDiagnostic  # noqa: E402

H = bytes.fromhex
TRANSPORTS = ["hdlc", "tcp"]
CLIENTS = {16: None, 32: cl.LLS_PASSWORD}


def target(m, transport):
    return m.tcp if transport == "tcp" else m.serial


def session_data(g, client):
    """What every session reads; returns the values to compare across PDU sizes."""
    ldn = g.read("0.0.42.0.0.255", 1, 2)
    assert isinstance(ldn, (bytes, bytearray)) and len(ldn) == 16, repr(ldn)
    clk = g.make_object("0.0.1.0.0.255", 8)
    raw = g.read_object(clk, 2)
    assert isinstance(raw, (bytes, bytearray)), repr(raw)
    cl.check_clock(raw)
    # Gurux's own reading of it agrees
    gdt = clk.time.value
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((gdt.astimezone(datetime.timezone.utc) - now).total_seconds()) < 60, gdt
    objs = g.object_list()
    cl.check_object_list(objs, client)
    serial = g.read("0.0.96.1.0.255", 1, 2)
    fw = g.read("1.0.0.2.0.255", 1, 2)
    assert serial and fw
    return {"ldn": bytes(ldn), "objects": objs, "object_list_raw": g.object_list_raw(),
            "serial": bytes(serial), "firmware": bytes(fw)}


# ------------------------------------------------------------------------------ offline
def test_gurux_frames_match_vectors():
    """The client produces the published frames (dlms-vectors 2.1, 2.2, 2.12, 3.2)."""
    c = cl.GuruxClient("hdlc", "/dev/null").c
    assert bytes(c.snrmRequest()) == H("7EA00802232193BD647E")
    c4 = cl.GuruxClient("hdlc", "/dev/null", server_address=GXDLMSClient.getServerAddress(1, 17, 4)).c
    assert bytes(c4.snrmRequest()) == H("7EA00A00020023219318717E")
    assert bytes(c.disconnectRequest(True)) == H("7EA00802232153B1A27E")
    lls = cl.GuruxClient("tcp", 1, client=32, password=b"12345678").c
    (frame,) = lls.aarqRequest()
    frame = bytes(frame)
    assert frame[:8] == H("0001002000010038"), frame[:8].hex()
    aarq = frame[8:]
    vec = H("6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738"
            "BE10040E01000000065F1F0400007E1F04B0")
    # identical but for the proposed conformance (Gurux 401E5D) and max PDU (FFFF)
    assert aarq[:-5] == vec[:-5] and aarq[-5:] == H("401E5DFFFF"), aarq.hex()


# ------------------------------------------------------------------------------ sessions
@pytest.mark.parametrize("client", sorted(CLIENTS))
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_session(vmeter, transport, client):
    g = cl.GuruxClient(transport, target(vmeter, transport), client, CLIENTS[client])
    with g:
        assert g.c.settings.maxPduSize == 1024, "server max PDU %r" % g.c.settings.maxPduSize
        if transport == "hdlc":
            hs = g.c.hdlcSettings
            assert (hs.maxInfoRX, hs.maxInfoTX, hs.windowSizeRX, hs.windowSizeTX) == (128, 128, 1, 1)
        session_data(g, client)
    assert g.rlre_command == Command.RELEASE_RESPONSE, g.rlre_command


@pytest.mark.parametrize("client", sorted(CLIENTS))
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_small_pdu_block_transfer_and_segmentation(vmeter, transport, client):
    t = target(vmeter, transport)
    with cl.GuruxClient(transport, t, client, CLIENTS[client]) as g:
        big = session_data(g, client)
    small_c = cl.GuruxClient(transport, t, client, CLIENTS[client], max_pdu=128, max_info=64)
    with small_c as g:
        if transport == "hdlc":
            hs = g.c.hdlcSettings
            assert (hs.maxInfoRX, hs.maxInfoTX) == (64, 64), (hs.maxInfoRX, hs.maxInfoTX)
        small = session_data(g, client)
    assert small == big
    # it really happened on the wire
    assert cl.sent_get_next(g.io.tx_log, transport) >= 2, "no GET-Request-Next was needed"
    if transport == "hdlc":
        frames = cl.split_hdlc_frames(g.io.rx_bytes)
        seg = [f for f in frames if f[0] & 0x08]
        assert seg, "no segmented frame from the meter"
        # info field of every frame <= 64: frame length - (format 2, dst 1, src 2, ctrl 1,
        # HCS 2, FCS 2)
        assert max(len(f) - 10 for f in frames) <= 64


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wrong_lls_password_refused(vmeter, transport):
    g = cl.GuruxClient(transport, target(vmeter, transport), 32, b"87654321")
    with pytest.raises(GXDLMSException) as ei:
        g.open()
    assert ei.value.result == AssociationResult.PERMANENT_REJECTED, ei.value.result
    assert ei.value.diagnostic == SourceDiagnostic.AUTHENTICATION_FAILURE, ei.value.diagnostic
    # and the meter still serves the right password
    with cl.GuruxClient(transport, target(vmeter, transport), 32, cl.LLS_PASSWORD) as g2:
        assert len(g2.read("0.0.42.0.0.255", 1, 2)) == 16


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_read_list(vmeter, transport):
    """GET-Request-With-List through Gurux's readList."""
    from gurux_dlms.objects import GXDLMSData

    with cl.GuruxClient(transport, target(vmeter, transport), 16) as g:
        ldn, serial = GXDLMSData("0.0.42.0.0.255"), GXDLMSData("0.0.96.1.0.255")
        values = _read_list(g, [(ldn, 2), (serial, 2)])
        assert [bytes(v) for v in values] == [bytes(g.read("0.0.42.0.0.255", 1, 2)),
                                               bytes(g.read("0.0.96.1.0.255", 1, 2))]


def _read_list(g, items):
    values = []
    for frames in g.c.readList(items):  # one list of frames per GET-Request-With-List
        values.extend(g.read_data_block(frames).value)
    return values
