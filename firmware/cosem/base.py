"""The shape every COSEM interface class follows (DLMS UA Blue Book, IEC 62056-6-2).

An interface class is a Python class with:
* ``CLASS_ID``, ``VERSION``: what the object list announces;
* ``ATTRS``: a tuple of (name, A-XDR type tag) for attributes 1..n, in Blue Book order. The
  type is what a conformance tool expects to read back; ``ANY`` marks a CHOICE;
* ``METHODS``: a tuple of method names, 1..m;
* ``get(attr, w, ctx, ref)``: write attribute ``attr`` into the A-XDR writer ``w`` and return
  0, *or* return a generator that writes one item per step (long values: object list,
  profile buffer), *or* return a Data-Access-Result (> 0) without writing anything.

* ``set(attr, value, ctx)``: write attribute ``attr`` from a typed A-XDR value
  ``(tag, value)`` (as ``axdr.Reader.data()`` decodes it); returns a Data-Access-Result;
* ``action(method, param, w, ctx)``: invoke method ``method`` with the typed parameter (or
  None); it may write return data (one A-XDR Data) into ``w``; returns an Action-Result
  (same codes as Data-Access-Result).

``ctx`` is the association asking (its client SAP, negotiated context); ``ref`` the
attribute reference with any selective access. Access rights are checked by the
association before any of these is called; the class checks types and values. Classes
never do I/O themselves: values come from the objects they were given (meter, clock,
settings) when the table was built.

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


def expect(value, tag):
    """The plain value of a typed A-XDR value if its tag is ``tag``, else None."""
    if value is None or value[0] != tag:
        return None
    return value[1]


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

    def set(self, attr, value, ctx, ref=None):
        if ref is not None and ref.selector:
            return xdlms.DAR_OTHER_REASON
        if attr == 1:
            return xdlms.DAR_READ_WRITE_DENIED  # a logical name never changes
        return self.set_attr(attr, value, ctx)

    def set_attr(self, attr, value, ctx):
        """Attributes 2..n; subclasses override the writable ones."""
        return xdlms.DAR_READ_WRITE_DENIED

    def action(self, method, param, w, ctx):
        """Methods 1..m; subclasses override."""
        return xdlms.DAR_OBJECT_UNAVAILABLE

    def __repr__(self):
        return "<%s %s>" % (type(self).__name__, obis_text(self.ln))
