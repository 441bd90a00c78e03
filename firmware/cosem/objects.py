"""This meter's logical device: the one table of COSEM objects (OBIS code -> instance) and
the access rights of every client association (Blue Book 4.4.3, access_rights).

Adding an object is one entry in ``build()``: the instance (its class decides the
attributes and methods) and, per client role, a string of attribute access modes and a
string of method access modes:

    attribute modes: '-' no-access, 'r' read-only, 'w' write-only, 'b' read-and-write
    method modes:    '-' no-access, 'x' access

A role that is not named does not see the object at all (object-undefined to it).

Client roles are the client SAPs of the contract (design/virtual-meter.md):
16 public (no authentication), 32 reader (LLS), 1 management (HLS-GMAC).

RAM: one (object, rights) pair per object, where rights is a 3-tuple (public, reader,
management) of None or (attribute modes, method modes); identical mode strings are shared.
The object list is streamed from this table, never copied.
"""

from cosem.association_ln import AssociationLN
from cosem.base import obis
from cosem.clock import Clock
from cosem.data import Data
from cosem.hdlc_setup import HdlcSettings, HdlcSetup
from cosem.local_port_setup import LocalPortSettings, LocalPortSetup
from cosem import profile_generic as pg
from cosem.register import Register
from cosem.sap_assignment import SapAssignment
from cosem.security_setup import SecuritySetup
from dlms import acse
from dlms import axdr

PUBLIC = 16
READER = 32
MANAGEMENT = 1
ROLES = (PUBLIC, READER, MANAGEMENT)  # index of a role's rights in an entry

_ATTR_MODE = {"-": 0, "r": 1, "w": 2, "b": 3}
_METHOD_MODE = {"-": 0, "x": 1}

# The xDLMS services this meter implements, as conformance bits (Green Book; see acse).
# It advertises exactly these; more arrive with the services that implement them.
CONFORMANCE = (acse.CONF_GET | acse.CONF_SET | acse.CONF_ACTION | acse.CONF_MULTIPLE_REFERENCES
               | acse.CONF_BLOCK_TRANSFER_WITH_GET | acse.CONF_BLOCK_TRANSFER_WITH_SET
               | acse.CONF_BLOCK_TRANSFER_WITH_ACTION)


def _modes(spec, table):
    return bytes([table[c] for c in spec])


class LogicalDevice:
    """The management logical device (SAP 1): its objects, access rights and client policies."""

    def __init__(self, name, server_sap=1, max_pdu=1024):
        self.name = name  # COSEM logical device name, 16 octets
        self.server_sap = server_sap
        self.fallback_sap = PUBLIC  # whose policy shapes the AARE refusing an unknown client
        self.security = None  # suite-0 services (app.Security) when the meter has them
        self.max_pdu = max_pdu
        self.security_setup_ln = obis("0.0.43.0.0.255")
        self.entries = []  # (obj, (public, reader, management) rights)
        self.policies = {}
        self.on_secret_change = []  # hooks f(role, secret) after an LLS secret was written
        self.on_event = []  # hooks f(kind, client): e.g. an authentication failure
        self.profiles = (None, None, None)  # load profile, billing, event log (add_history)
        self._shared = {}  # while building: one object per distinct access spec

    def add(self, obj, pub=None, reader=None, mgmt=None):
        """Rights per role: 'attrs' (no method access) or ('attrs', 'methods'), or None."""
        rights = []
        for spec in (pub, reader, mgmt):
            if spec is None:
                rights.append(None)
                continue
            if isinstance(spec, str):
                spec = (spec, "-" * len(obj.METHODS))
            a, m = spec
            if len(a) != len(obj.ATTRS) or len(m) != len(obj.METHODS):
                raise ValueError("access spec does not match the class: %r" % (obj,))
            key = a + "/" + m
            r = self._shared.get(key)
            if r is None:
                r = self._shared[key] = (_modes(a, _ATTR_MODE), _modes(m, _METHOD_MODE))
            rights.append(r)
        self.entries.append((obj, tuple(rights)))
        return obj

    def event(self, kind, client=0):
        for hook in self.on_event:
            hook(kind, client)

    def done(self):
        """Building finished: drop the build-time cache."""
        self._shared = None

    @staticmethod
    def _index(role):
        return 0 if role == PUBLIC else 1 if role == READER else 2 if role == MANAGEMENT else -1

    def lookup(self, role, ln):
        """(obj, (attr_modes, method_modes)) for a logical name visible to role, else None."""
        i = self._index(role)
        if i < 0:
            return None
        for obj, rights in self.entries:
            if obj.ln == ln:
                r = rights[i]
                return None if r is None else (obj, r)
        return None

    def count(self, role):
        """How many objects a role sees."""
        i = self._index(role)
        n = 0
        for _obj, rights in self.entries:
            if i >= 0 and rights[i] is not None:
                n += 1
        return n

    def visible(self, role):
        """Iterate (obj, rights) over the objects a role may see, in table order."""
        i = self._index(role)
        if i < 0:
            return
        for obj, rights in self.entries:
            if rights[i] is not None:
                yield obj, rights[i]


def _ro(obj):
    return "r" * len(obj.ATTRS)


def default_port_settings(identity):
    """The optical port's settings of a fresh meter: mode E, and the serial number as the
    IEC 62056-21 device address when it is a valid one."""
    serial = bytes(identity["serial"])
    if not LocalPortSettings.valid(6, serial):
        serial = b""
    return LocalPortSettings(device_addr=serial)


# Registers of the contract (design/virtual-meter.md), Blue Book units: Wh 30, varh 32, V 35,
# A 33, W 27, Hz 44, 255 unitless. (OBIS, quantity index, phase, unit)
_ENERGY = (
    ("1.0.1.8.0.255", 0, 0, 30),  # active energy import (+A), total
    ("1.0.2.8.0.255", 1, 0, 30),  # active energy export (-A), total
    ("1.0.3.8.0.255", 2, 0, 32),  # reactive energy import (+R), total
    ("1.0.4.8.0.255", 3, 0, 32),  # reactive energy export (-R), total
    ("1.0.21.8.0.255", 0, 1, 30),  # active energy import L1
    ("1.0.41.8.0.255", 0, 2, 30),  # L2
    ("1.0.61.8.0.255", 0, 3, 30),  # L3
)


def add_metering(dev, metering):
    """The measurement registers, fed by ``metering`` (app.Metering: the engine's values).
    Energies in Wh/varh (scaler 0, double-long-unsigned); voltage 0.01 V and current 1 mA
    (scalers -2, -3); power 0.1 W (scaler -1); power factor 0.001 (scaler -3, unitless);
    frequency 0.01 Hz. A phase the chip does not have is not in the table. Readable by the
    reader and the management client; nobody may reset them (billing registers)."""
    phases = metering.phases
    for ln, q, p, unit in _ENERGY:
        if p <= phases:
            _register(dev, ln, metering.energy(q, p), 0, unit, axdr.DOUBLE_LONG_UNSIGNED)
    for p in range(1, phases + 1):
        g = 20 * p
        _register(dev, "1.0.%d.7.0.255" % (g + 12), metering.instant("voltage", p), -2, 35,
                  axdr.LONG_UNSIGNED)
        _register(dev, "1.0.%d.7.0.255" % (g + 11), metering.instant("current", p), -3, 33,
                  axdr.DOUBLE_LONG_UNSIGNED)
    _register(dev, "1.0.1.7.0.255", metering.power(True), -1, 27, axdr.DOUBLE_LONG_UNSIGNED)
    _register(dev, "1.0.2.7.0.255", metering.power(False), -1, 27, axdr.DOUBLE_LONG_UNSIGNED)
    _register(dev, "1.0.13.7.0.255", metering.instant("pf", 0), -3, 255, axdr.LONG)
    _register(dev, "1.0.14.7.0.255", metering.frequency(), -2, 44, axdr.LONG_UNSIGNED)


# Profile depths (flash budget: docs/history.md): 45 days of 15-minute rows, 4 months of
# daily values, 256 events
LOAD_PROFILE_ENTRIES = 4320
BILLING_ENTRIES = 124
EVENT_LOG_ENTRIES = 256
LOAD_PROFILE_PERIOD = 900
BILLING_PERIOD = 86400

_CLOCK_LN = obis("0.0.1.0.0.255")
_ENERGY_COLUMNS = ("1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.3.8.0.255", "1.0.4.8.0.255")


def add_history(dev, clock, history, logs, metering=None):
    """Load profile 1.0.99.1.0.255, daily billing 1.0.98.1.0.255, standard event log
    0.0.99.98.0.255, the AMR profile status 0.0.96.10.1.255 and the event code
    0.0.96.11.0.255 (meter.history decides when rows are captured).

    logs: dict "load"/"billing"/"events" -> meter.profile_log.ProfileLog (or None).
    Reader and management read them; management may also write the load profile's
    capture_period and call reset/capture. Returns (load, billing, events)."""
    energy = []
    for i, ln in enumerate(_ENERGY_COLUMNS):
        src = metering.energy(i, 0) if metering is not None else None
        energy.append(pg.column(3, obis(ln), 2, pg.U32, src))
    clock_col = pg.column(8, _CLOCK_LN, 2, pg.CLOCK)
    status = Data("0.0.96.10.1.255", lambda: (axdr.UNSIGNED, history.amr_status()))
    code = Data("0.0.96.11.0.255", lambda: (axdr.UNSIGNED, history.last_code))
    load = pg.ProfileGeneric(
        "1.0.99.1.0.255", logs.get("load"),
        (clock_col, pg.column(1, status.ln, 2, pg.U8, history.status_column)) + tuple(energy),
        clock, LOAD_PROFILE_PERIOD)
    billing = pg.ProfileGeneric("1.0.98.1.0.255", logs.get("billing"),
                                (clock_col,) + tuple(energy), clock, BILLING_PERIOD)
    events = pg.ProfileGeneric(
        "0.0.99.98.0.255", logs.get("events"),
        (clock_col, pg.column(1, code.ln, 2, pg.U8, lambda: history.last_code)), clock, 0,
        increasing=False)
    ro = "r" * len(pg.ProfileGeneric.ATTRS)
    dev.add(load, reader=ro, mgmt=("rrrbrrrr", "xx"))
    dev.add(billing, reader=ro, mgmt=(ro, "xx"))
    dev.add(events, reader=ro, mgmt=(ro, "--"))  # the event log: neither cleared nor forged
    dev.add(status, reader="rr", mgmt="rr")
    dev.add(code, reader="rr", mgmt="rr")
    return load, billing, events


def _register(dev, ln, source, scaler, unit, tag):
    reg = Register(ln, source, scaler=scaler, unit=unit, tag=tag)
    dev.add(reg, reader=("rrr", "-"), mgmt=("rrr", "-"))


def build(clock, identity, hdlc_settings=None, port_settings=None, hdlc_targets=None,
          security=None, metering=None, history=None, logs=None):
    """Compose the logical device from the meter's services.

    clock: meter.clock.Clock; identity: dict with 'name' (16 octets), 'serial', 'firmware'
    (and optionally 'lls_secret', the reader's password);
    hdlc_settings: cosem.hdlc_setup.HdlcSettings shared with the HDLC ports (default: the
    Blue Book defaults); hdlc_targets: the list of Links / HDLC ports those settings are
    applied to when written (the application may fill it after building);
    port_settings: cosem.local_port_setup.LocalPortSettings of the optical port (default:
    ``default_port_settings(identity)``);
    security: the suite-0 services (app.Security: key store, counters, server title). Without
    it the management association cannot be established and the Security setup and
    invocation counter objects are absent.

    Management (client 1) reads everything readable and writes what the Blue Book lets a
    client write: clock time, time zone and DST; the reader's LLS secret; the HDLC and
    local port settings. Methods: the Clock's six. Association LN and SAP assignment
    methods are granted to nobody (see their modules).
    """
    if hdlc_settings is None:
        hdlc_settings = HdlcSettings()
    if port_settings is None:
        port_settings = default_port_settings(identity)
    dev = LogicalDevice(identity["name"])
    dev.policies[PUBLIC] = acse.Policy(mechanism=0, conformance=CONFORMANCE, max_pdu=dev.max_pdu)
    dev.policies[READER] = acse.Policy(
        mechanism=1, secret=identity.get("lls_secret", b"12345678"), conformance=CONFORMANCE,
        max_pdu=dev.max_pdu)
    dev.policies[MANAGEMENT] = acse.Policy(
        mechanism=5, app_context=3, conformance=CONFORMANCE, max_pdu=dev.max_pdu)

    cur = AssociationLN("0.0.40.0.0.255", dev)
    # Association LN: everything readable except the secret.
    aln_ro = "rrrrrr-rr"
    dev.add(cur, pub=aln_ro, reader=aln_ro, mgmt=aln_ro)
    dev.add(AssociationLN("0.0.40.0.1.255", dev, PUBLIC), pub=aln_ro, mgmt=aln_ro)
    # management may change the reader's LLS password
    dev.add(AssociationLN("0.0.40.0.2.255", dev, READER), reader=aln_ro, mgmt="rrrrrrwrr")
    dev.add(AssociationLN("0.0.40.0.3.255", dev, MANAGEMENT), mgmt=aln_ro)
    sap = SapAssignment("0.0.41.0.0.255", dev)
    dev.add(sap, pub=_ro(sap), reader=_ro(sap), mgmt=_ro(sap))

    ldn = Data("0.0.42.0.0.255", (axdr.OCTET_STRING, identity["name"]))
    dev.add(ldn, pub="rr", reader="rr", mgmt="rr")
    serial = Data("0.0.96.1.0.255", (axdr.OCTET_STRING, identity["serial"]))
    dev.add(serial, pub="rr", reader="rr", mgmt="rr")
    fw = Data("1.0.0.2.0.255", (axdr.OCTET_STRING, identity["firmware"]))
    dev.add(fw, pub="rr", reader="rr", mgmt="rr")
    clk = Clock("0.0.1.0.0.255", clock)
    # time, time zone, DST writable; status and clock_base are the meter's own
    dev.add(clk, pub=_ro(clk), reader=_ro(clk), mgmt=("rbbrbbbbr", "xxxxxx"))
    hdlc = HdlcSetup("0.0.22.0.0.255", hdlc_settings, hdlc_targets)
    dev.add(hdlc, reader=_ro(hdlc), mgmt="rbbbbbbbb")
    port = LocalPortSetup("0.0.20.0.0.255", port_settings)
    dev.add(port, reader="rrrrrr---", mgmt="rbbbbbwww")  # passwords: write-only
    if security is not None:
        dev.security = security
        ss = SecuritySetup("0.0.43.0.0.255", security.keystore, security.server_title,
                           security.policy)
        security.setup = ss
        dev.add(ss, mgmt=("rrrrrr", "xx------"))
        # the last invocation counter accepted from the management client (global key), so
        # that a head-end that lost its counter can continue above it
        ic = Data("0.0.43.1.0.255",
                  lambda: (axdr.DOUBLE_LONG_UNSIGNED, security.guard.last_accepted()))
        dev.add(ic, pub="rr", reader="rr", mgmt="rr")
    if metering is not None:
        add_metering(dev, metering)
    if history is not None:
        dev.profiles = add_history(dev, clock, history, logs or {}, metering)
    dev.done()
    return dev
