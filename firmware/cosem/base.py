"""The shape every COSEM interface class follows (DLMS UA Blue Book, IEC 62056-6-2).

An interface class is a Python class with:
* ``CLASS_ID``, ``VERSION``: what the object list announces;
* ``ATTRS``: a tuple of (name, A-XDR type tag) for attributes 1..n, in Blue Book order. The
  type is what a conformance tool expects to read back; ``ANY`` marks a CHOICE;
* ``METHODS``: a tuple of method names, 1..m;
* ``get(attr, w, ctx, ref)``: write attribute ``attr`` into the A-XDR writer ``w`` and return
  0, *or* return a generator that writes one item per step (long values: object list,
  profile buffer), *or* return a Data-Access-Result (> 0) without writing anything.

``ctx`` is the association asking (its client SAP, negotiated context); ``ref`` the
attribute reference with any selective access. Classes never do I/O themselves: values
come from the objects they were given (meter, clock, settings) when the table was built.

RAM: one instance per object; the logical name is a 6-byte bytes object.
"""

from dlms import axdr
from dlms import xdlms

ANY = -1  # CHOICE: several A-XDR types are allowed for this attribute


def obis(text):
    """'1.0.1.8.0.255' -> 6 bytes (used when the table is built, not per request)."""
    parts = text.split(".")
    if len(parts) != 6:
        raise ValueError("OBIS needs 6 groups: " + text)
    return bytes([int(p) for p in parts])


def obis_text(ln):
    return ".".join([str(b) for b in ln])


class CosemObject:
    CLASS_ID = 0
    VERSION = 0
    ATTRS = (("logical_name", axdr.OCTET_STRING),)
    METHODS = ()

    def __init__(self, ln):
        self.ln = obis(ln) if isinstance(ln, str) else bytes(ln)

    def get(self, attr, w, ctx, ref):
        if ref is not None and ref.selector:
            return xdlms.DAR_OTHER_REASON  # no selective access on this attribute
        if attr == 1:
            w.octet_string(self.ln)
            return 0
        return self.get_attr(attr, w, ctx)

    def get_attr(self, attr, w, ctx):
        """Attributes 2..n; subclasses override."""
        return xdlms.DAR_OBJECT_UNAVAILABLE

    def __repr__(self):
        return "<%s %s>" % (type(self).__name__, obis_text(self.ln))
