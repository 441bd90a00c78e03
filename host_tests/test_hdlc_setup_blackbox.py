"""IEC HDLC setup (IC 23) written by the management client really changes the link
parameters of the next HDLC connection, and the change survives a restart."""

import clients as cl
import running_meter as vm
from test_blackbox_link import AARQ_PUBLIC, Hdlc, aare_result, ua_params

HDLC_SETUP = "0.0.22.0.0.255"


def write_setup(m, values):
    """values: {attribute: int}; written with gurux as the management client over TCP."""
    with cl.GuruxClient("tcp", m.tcp, cl.PUBLIC) as g:
        ic = g.read("0.0.43.1.0.255", 1, 2)
    with cl.GuruxClient("tcp", m.tcp, cl.MANAGEMENT, invocation_counter=ic + 1) as g:
        from gurux_dlms.objects import GXDLMSHdlcSetup

        o = GXDLMSHdlcSetup(HDLC_SETUP)
        for a in sorted(values):
            g.read_object(o, a)
        o.maximumInfoLengthTransmit = values.get(5, o.maximumInfoLengthTransmit)
        o.maximumInfoLengthReceive = values.get(6, o.maximumInfoLengthReceive)
        for a in sorted(values):
            g.write_object(o, a)


def ua_of_bare_snrm(m):
    h = Hdlc(m.serial)
    try:
        f = h.snrm()
        frames = []
        aare = h.request(AARQ_PUBLIC, frames=frames)
        assert aare_result(aare)[:3] == (0, 1, 0), aare.hex()
        return ua_params(f.info), max(len(fr.info) for fr in frames)
    finally:
        h.close()


def test_written_hdlc_setup_applies_to_the_next_connection_and_persists(tmp_path):
    state = str(tmp_path / "state")
    m = vm.start_meter(tmp_path / "a", state=state)
    try:
        p, _ = ua_of_bare_snrm(m)
        assert (p[5], p[6]) == (128, 128), p
        write_setup(m, {5: 40, 6: 64})
        p, longest = ua_of_bare_snrm(m)
        # the UA of a bare SNRM now offers the written values, and the meter keeps to them
        assert (p[5], p[6]) == (40, 64), p
        assert longest <= 40, longest
    finally:
        m.stop()
    m = vm.start_meter(tmp_path / "b", state=state)
    try:
        p, longest = ua_of_bare_snrm(m)
        assert (p[5], p[6]) == (40, 64), p
    finally:
        m.stop()
