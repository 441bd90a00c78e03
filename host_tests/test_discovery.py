"""Discovery with gurux-dlms (GPLv2, test-only), the acceptance of the COSEM issue: "a
gurux-dlms client that knows nothing but the address reads the object list and every
readable attribute, for each of the three clients of the contract".

For client 16 (public, no authentication), 32 (reader, LLS 12345678) and 1 (management,
HLS-GMAC, suite 0, the contract's keys), over the TCP wrapper and HDLC on the pty: read
0.0.40.0.0.255 attribute 2 with gurux's getObjectsRequest/parseObjects, then every
attribute of every listed object whose access mode (as gurux parsed it: getAccess) includes
read, with gurux's own read/updateValue; it must not be an error. Attributes the list
marks without read access must be refused with read-write-denied (3). The access rights
gurux parsed are cross-checked with an independent decoding of the raw list (dlms-cosem's
A-XDR decoder), which must also name every attribute of the class. The set of objects each
client sees is compared with the contract (design/virtual-meter.md).
"""

import pytest

import clients as cl
import running_meter as vm

vmeter = vm.vmeter

TRANSPORTS = ["tcp", "hdlc"]
PUBLIC_MUST = {"0.0.40.0.0.255", "0.0.41.0.0.255", "0.0.42.0.0.255", "0.0.1.0.0.255",
               "0.0.96.1.0.255", "1.0.0.2.0.255", "0.0.43.1.0.255"}
# the contract's public list: the above (plus its own Association LN instance)
PUBLIC_MAY = PUBLIC_MUST | {"0.0.40.0.1.255"}
READER_MUST = set(cl.IMPLEMENTED) | {"0.0.43.1.0.255"}
MGMT_MUST = set(cl.IMPLEMENTED) | {
    "0.0.40.0.1.255", "0.0.40.0.2.255", "0.0.40.0.3.255", "0.0.22.0.0.255",
    "0.0.20.0.0.255", "0.0.43.0.0.255", "0.0.43.1.0.255"}
# never listed to / readable by a client that is not management
MGMT_ONLY = {"0.0.43.0.0.255", "0.0.40.0.3.255"}

READ_WRITE_DENIED = 3
OBJECT_UNDEFINED = 4


def client_for(m, transport, client):
    t = m.tcp if transport == "tcp" else m.serial
    if client == cl.MANAGEMENT:
        with cl.GuruxClient("tcp", m.tcp, cl.PUBLIC) as g:
            ic = g.read("0.0.43.1.0.255", 1, 2)
        return cl.GuruxClient(transport, t, client, invocation_counter=ic + 1)
    return cl.GuruxClient(transport, t, client,
                          cl.LLS_PASSWORD if client == cl.READER else None)


def error_code(exc):
    e = getattr(exc, "error", None)
    return None if e is None else int(e)


def discover(g, client):
    """Read the list and every attribute; returns {ln: {attr: 'ok' | error code}}."""
    from gurux_dlms.enums import AccessMode

    reply = g.read_data_block(g.c.getObjectsRequest())
    raw = bytes(reply.data.array())
    objs = g.c.parseObjects(reply.data, False, False)
    rights = cl.object_list_rights(raw)  # independent decoding of the same list
    names = [o.logicalName for o in objs]
    assert len(names) == len(set(names)) == len(rights), (names, sorted(rights))
    # gurux's access modes, taken before reading anything: reading the object_list of
    # another Association LN instance (0.0.40.0.2.255 ...) makes gurux overwrite the access
    # modes of the objects it already holds with that association's rights (quirk)
    access = {o.logicalName: [int(o.getAccess(i)) for i in range(o.getAttributeCount() + 1)]
              for o in objs}
    out = {}
    for o in objs:
        ln = o.logicalName
        count = o.getAttributeCount()
        attrs, _methods = rights[ln]
        assert sorted(attrs) == list(range(1, count + 1)), (
            "%s (class %d): access rights name attributes %s, the class has %d"
            % (ln, int(o.objectType), sorted(attrs), count))
        res = out[ln] = {}
        order = list(range(1, count + 1))
        if int(o.objectType) == 7:  # gurux decodes a profile's buffer with its columns
            order = [1, 3, 2] + order[3:]
        for i in order:
            mode = access[ln][i]
            assert mode == attrs[i] or i == 1, (ln, i, mode, attrs[i])  # gurux: 1 is READ
            readable = mode & int(AccessMode.READ)
            try:
                g.read_object(o, i)
                res[i] = "ok"
            except cl.GuruxError as e:
                res[i] = error_code(e)
            if readable:
                assert res[i] == "ok", "client %d: %s attr %d (access %d) read -> error %r" % (
                    client, ln, i, mode, res[i])
            else:
                assert res[i] == READ_WRITE_DENIED, (
                    "client %d: %s attr %d has no read access (%d) but reading it gave %r, "
                    "expected read-write-denied (3)" % (client, ln, i, mode, res[i]))
    return out


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("client", [cl.PUBLIC, cl.READER, cl.MANAGEMENT])
def test_discovery(vmeter, transport, client):
    g = client_for(vmeter, transport, client)
    with g:
        got = discover(g, client)
        seen = set(got)
        if client != cl.MANAGEMENT:
            # objects the client does not see answer object-undefined
            for ln in sorted(MGMT_ONLY):
                try:
                    g.read(ln, 64 if ln == "0.0.43.0.0.255" else 15, 1)
                    res = "ok"
                except cl.GuruxError as e:
                    res = error_code(e)
                assert res == OBJECT_UNDEFINED, "client %d read %s attr 1: %r" % (client, ln, res)
    if client == cl.PUBLIC:
        assert PUBLIC_MUST <= seen <= PUBLIC_MAY, "public sees %s; missing %s, extra %s" % (
            sorted(seen), sorted(PUBLIC_MUST - seen), sorted(seen - PUBLIC_MAY))
    elif client == cl.READER:
        assert READER_MUST <= seen, "reader misses %s" % sorted(READER_MUST - seen)
        assert not seen & MGMT_ONLY, "reader sees %s" % sorted(seen & MGMT_ONLY)
    else:
        assert MGMT_MUST <= seen, "management misses %s" % sorted(MGMT_MUST - seen)
    # every listed object has at least its logical name readable, which matched
    for ln, res in got.items():
        assert res[1] == "ok", (ln, res)
