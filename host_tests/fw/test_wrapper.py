"""TCP wrapper framing (IEC 62056-47): runs under CPython and MicroPython."""

import binascii

from dlms import wrapper


def h(s):
    return binascii.unhexlify(s.replace(" ", ""))


# GET-Request-Normal for 0.0.43.1.0.255 attr 2 (dlms-vectors 4.1) from client 16 to wPort 1.
GET_FRAME = h("0001 0010 0001 000D C001C1000100002B0100FF0200")


def feed_all(conn, data):
    pos = 0
    while pos < len(data):
        used = conn.feed(data, pos, len(data))
        if used == 0:
            break
        pos += used
    return pos


def test_one_apdu_in_one_chunk():
    c = wrapper.Conn(max_apdu=64)
    assert feed_all(c, GET_FRAME) == len(GET_FRAME)
    n = c.request_len()
    assert n == 13
    assert bytes(c.request_view[:n]) == GET_FRAME[8:]
    assert c.request_client == 16 and c.request_dst == 1


def test_byte_at_a_time_and_reply_header():
    c = wrapper.Conn(max_apdu=64)
    for i in range(len(GET_FRAME)):
        assert c.request_len() == 0
        assert c.feed(GET_FRAME, i, i + 1) == 1
    assert c.request_len() == 13
    out = c.reply_view()
    resp = h("C401C1000600001391")  # dlms-vectors 4.2
    out[: len(resp)] = resp
    c.reply(len(resp))
    n = c.output_len()
    assert bytes(c.output_view[:n]) == h("0001 0001 0010 0009") + resp
    c.output_done()
    assert c.output_len() == 0
    assert c.request_len() == 0


def test_two_apdus_back_to_back_stop_at_the_first():
    c = wrapper.Conn(max_apdu=64)
    data = GET_FRAME + GET_FRAME
    used = feed_all(c, data)
    assert used == len(GET_FRAME)  # waits for the answer before taking the second
    c.no_reply()
    assert feed_all(c, data[used:]) == len(GET_FRAME)
    assert c.request_len() == 13


def test_bad_version_breaks_the_connection():
    c = wrapper.Conn(max_apdu=64)
    feed_all(c, h("0002 0010 0001 0002 6203"))
    assert c.broken
    assert c.request_len() == 0


def test_length_larger_than_buffer_breaks_the_connection():
    c = wrapper.Conn(max_apdu=16)
    feed_all(c, h("0001 0010 0001 0011") + b"\x00" * 17)
    assert c.broken


def test_zero_length_breaks_the_connection():
    c = wrapper.Conn(max_apdu=16)
    feed_all(c, h("0001 0010 0001 0000"))
    assert c.broken


def test_connections_may_share_one_reply_buffer():
    tx = bytearray(8 + 64)
    a = wrapper.Conn(max_apdu=64, tx=tx)
    b = wrapper.Conn(max_apdu=64, tx=tx)
    assert a.tx is tx
    assert b.tx is tx and a.rx is not b.rx
    feed_all(a, GET_FRAME)
    a.reply_view()[:2] = b"\xc4\x01"
    a.reply(2)
    assert bytes(a.output_view[:a.output_len()]) == h("0001 0001 0010 0002 C401")
