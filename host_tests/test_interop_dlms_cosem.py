"""Interoperability with dlms-cosem (MIT): the virtual meter serves its client over HDLC on
the pseudo-terminal and over the TCP wrapper, as client 16 (public) and client 32 (reader,
LLS), with the default and a small client max PDU (GET block transfer). dlms-cosem always
assumes a 128-octet HDLC information field, so long answers are segmented in both cases.
design/interop.md describes the client's quirks.
"""

import datetime
import os
import sys

import pytest

import running_meter as vm  # noqa: E402
import clients as cl  # noqa: E402
vmeter = vm.vmeter

cl.quiet_structlog()
from dlms_cosem import enumerations, utils  # noqa: E402
from dlms_cosem import time as dtime  # noqa: E402
from dlms_cosem.hdlc import address, frames  # noqa: E402
from dlms_cosem.protocol import acse  # noqa: E402

H = bytes.fromhex
TRANSPORTS = ["hdlc", "tcp"]
CLIENTS = {16: None, 32: cl.LLS_PASSWORD}


def target(m, transport):
    return m.tcp if transport == "tcp" else m.serial


def session_data(d, client):
    raw = d.get("0.0.42.0.0.255", 1, 2)
    assert raw[:2] == H("0910"), raw.hex()
    ldn = utils.parse_as_dlms_data(raw)
    assert isinstance(ldn, (bytes, bytearray)) and len(ldn) == 16, repr(ldn)
    raw = d.get("0.0.1.0.0.255", 8, 2)
    assert raw[:2] == H("090C") and len(raw) == 14, raw.hex()
    cl.check_clock(raw[2:])
    # dlms-cosem's own reading agrees
    dt, _status = dtime.datetime_from_bytes(raw[2:])
    # quirk: dlms-cosem 25.1.0 maps deviation 0 to no tzinfo at all (utc_offset_minutes(0)
    # is falsy -> None), the same as "not specified"; the deviation itself is checked
    # above, so a naive value here is UTC
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((dt - now).total_seconds()) < 60, dt
    objs = d.object_list()
    cl.check_object_list(objs, client)
    cl.check_rights(d.object_list_raw(), client)
    return {"ldn": bytes(ldn), "objects": objs, "object_list_raw": d.object_list_raw(),
            "serial": d.read("0.0.96.1.0.255", 1, 2), "firmware": d.read("1.0.0.2.0.255", 1, 2)}


# ------------------------------------------------------------------------------ offline
def test_dlms_cosem_understands_the_vectors():
    """The client's own codecs agree with dlms-vectors (SNRM 2.1, AARQ 3.2, the AAREs the
    black-box tests expect from the meter)."""
    snrm = frames.SetNormalResponseModeFrame(
        destination_address=address.HdlcAddress(1, 17, "server"),
        source_address=address.HdlcAddress(16, None, "client"))
    assert snrm.to_bytes() == H("7EA00802232193BD647E")
    q = acse.ApplicationAssociationRequest.from_bytes(
        H("6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738"
          "BE10040E01000000065F1F0400007E1F04B0"))
    assert q.authentication == enumerations.AuthenticationMechanism.LLS
    assert bytes(q.authentication_value) == b"12345678"
    a = acse.ApplicationAssociationResponse.from_bytes(
        H("6129A109060760857405080101A203020101A305A10302010DBE10040E0800065F1F040000001004000007"))
    assert a.result == enumerations.AssociationResult.REJECTED_PERMANENT
    assert a.result_source_diagnostics == enumerations.AcseServiceUserDiagnostics.AUTHENTICATION_FAILED
    assert a.user_information.content.server_max_receive_pdu_size == 1024


# ------------------------------------------------------------------------------ sessions
@pytest.mark.parametrize("client", sorted(CLIENTS))
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_session(vmeter, transport, client):
    d = cl.CosemClient(transport, target(vmeter, transport), client, CLIENTS[client])
    with d:
        assert d.aare.result == enumerations.AssociationResult.ACCEPTED
        ir = d.aare.user_information.content
        assert ir.server_max_receive_pdu_size == 1024
        assert ir.negotiated_conformance.get
        session_data(d, client)
    assert d.rlre is not None and d.rlre.reason == enumerations.ReleaseResponseReason.NORMAL, d.rlre
    if transport == "hdlc":
        # the meter's longer answers came in 128-octet segments (dlms-cosem's assumption)
        fr = cl.split_hdlc_frames(d.io.rx_bytes)
        assert any(f[0] & 0x08 for f in fr), "no segmented frame"
        assert max(len(f) - 10 for f in fr) <= 128


@pytest.mark.parametrize("client", sorted(CLIENTS))
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_small_pdu_block_transfer(vmeter, transport, client):
    t = target(vmeter, transport)
    with cl.CosemClient(transport, t, client, CLIENTS[client]) as d:
        big = session_data(d, client)
    # at the large PDU only what exceeds the meter's own 1024-byte PDU comes in blocks
    # (the reader's object list with the measurement registers does)
    big_next = cl.sent_get_next(d.io.tx_log, transport)
    with cl.CosemClient(transport, t, client, CLIENTS[client], max_pdu=128) as d:
        small = session_data(d, client)
    assert small == big
    # GET-Response-With-Datablock + GET-Request-Next (dlms-cosem proposes general block
    # transfer but cannot receive it: had the meter used it, the session would have failed)
    small_next = cl.sent_get_next(d.io.tx_log, transport)
    assert small_next >= 2 and small_next > big_next, "PDU 128 needed no more blocks"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wrong_lls_password_refused(vmeter, transport):
    d = cl.CosemClient(transport, target(vmeter, transport), 32, b"87654321")
    c = d.client
    c.connect()
    try:
        c.send(c.dlms_connection.get_aarq())
        aare = c.next_event()
    finally:
        c.disconnect()
    assert isinstance(aare, acse.ApplicationAssociationResponse), aare
    assert aare.result == enumerations.AssociationResult.REJECTED_PERMANENT, aare
    assert (aare.result_source_diagnostics
            == enumerations.AcseServiceUserDiagnostics.AUTHENTICATION_FAILED), aare
    # the library's own associate() refuses too
    d2 = cl.CosemClient(transport, target(vmeter, transport), 32, b"87654321")
    with pytest.raises(Exception) as ei:
        d2.open()
    assert "AUTHENTICATION_FAILED" in str(ei.value), ei.value
    with cl.CosemClient(transport, target(vmeter, transport), 32, cl.LLS_PASSWORD) as d3:
        assert len(d3.read("0.0.42.0.0.255", 1, 2)) == 16


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_get_with_list(vmeter, transport):
    from dlms_cosem import cosem

    with cl.CosemClient(transport, target(vmeter, transport), 16) as d:
        items = [cosem.CosemAttributeWithSelection(
            attribute=cosem.CosemAttribute(enumerations.CosemInterface.DATA,
                                           cosem.Obis.from_bytes(cl.obis_bytes(ln)), 2),
            access_selection=None) for ln in ("0.0.42.0.0.255", "0.0.96.1.0.255")]
        resp = d.client.get_many(items)
        got = [getattr(r, "value", r) for r in resp.response_data]
        assert got == [d.read("0.0.42.0.0.255", 1, 2), d.read("0.0.96.1.0.255", 1, 2)], got
