"""Keys and invocation counters of security suite 0, persisted so that a power cut can
never make the meter repeat an IV or accept a replayed request (DLMS UA Green Book,
"Security suite 0": IV = system title || invocation counter; a counter value must never be
used twice with the same key).

Three record kinds, one writer each (meter.store: CRC-checked, two copies, written
new-then-rename, so after a power cut a record is the old one or the new one, never a
mixture):

* ``keys``  global unicast encryption key (EK), authentication key (AK), broadcast key
  (BK) and master key (KEK), 16 bytes each. Never readable by a client, never logged.
* ``ictx``  the meter's own transmit invocation counter, *by reservation*: the record holds
  an upper bound R; counters below R may be used. At start the counter continues at R (what
  was used before the cut is unknown, but it was below R) and a new bound R + RESERVE is
  written *before* the first use. So a cut at any instant costs at most RESERVE unused
  values and never repeats one. Flash writes: one per RESERVE ciphered APDUs.
* ``icrx``  the last invocation counter accepted from the client, per key: a request with a
  counter not strictly greater is a replay and is refused. It is written at every
  acceptance (before the request is served), because a value lost in a power cut would
  reopen a replay window. Management traffic is rare (a few requests a day on a real
  meter), so the wear is negligible; see docs for the arithmetic.

Flash corruption (not a power cut: a bit error in a record) makes meter.store fall back to
the other of a record's two copies, one save older. Then ``ictx`` continues one reservation
beyond the bound it read (the lost one reached at most that far): still never a repeated
counter; ``keys`` are the keys before the last transfer (never the development defaults
while a copy survives); ``icrx`` is one acceptance behind, so the one request accepted last
could be replayed once. Before the two copies, a damaged record meant the defaults: counter
1, the development keys, no replay guard.

RAM: four 16-byte keys, a few ints.
"""

import struct

KEY_EK = 0  # key ids, as used by the replay guard
KEY_AK = 1
KEY_BK = 2
KEY_KEK = 3

RESERVE = 1024  # transmit counters reserved per flash write
_V = 1  # record version


def _stale(store, name):
    f = getattr(store, "stale", None)
    return bool(f and f(name))


class KeyStore:
    """EK, AK, BK, KEK; loaded from the ``keys`` record or the development defaults."""

    def __init__(self, store, defaults):
        self.store = store
        self.keys = [bytes(k) for k in defaults]  # EK, AK, BK, KEK
        rec = store.load("keys", _V) if store is not None else None
        if rec is not None and len(rec) == 64:
            self.keys = [bytes(rec[i * 16:i * 16 + 16]) for i in range(4)]
        self.generation = 0  # bumped at every change: associations re-derive their ciphers

    def get(self, kid):
        return self.keys[kid]

    def set_keys(self, updates):
        """updates: list of (key id, 16 bytes). All of them take effect together."""
        keys = list(self.keys)
        for kid, key in updates:
            if len(key) != 16:
                raise ValueError("key length")
            keys[kid] = bytes(key)
        if self.store is not None:
            self.store.save("keys", _V, b"".join(keys))
        self.keys = keys
        self.generation += 1

    def __repr__(self):
        return "<KeyStore>"  # never the keys


class TxCounter:
    """The meter's own invocation counter, persisted by reservation (see module doc)."""

    def __init__(self, store, reserve=RESERVE):
        self.store = store
        self.reserve = reserve
        start = 1  # clients reject 0 (dlms-cosem starts from 0 and wants more)
        rec = store.load("ictx", _V) if store is not None else None
        if rec is not None and len(rec) == 4:
            start = struct.unpack(">I", rec)[0]
            if _stale(store, "ictx"):
                # the newest reservation was lost to the flash (meter.store): it reached
                # at most one reservation beyond this one
                start = min(start + reserve, 0xFFFFFFFF)
        self.value = start  # the next counter to use
        self.bound = start  # nothing reserved yet in this run
        self.writes = 0

    def _reserve(self):
        bound = self.value + self.reserve
        if bound > 0xFFFFFFFF:
            bound = 0xFFFFFFFF
        if self.store is not None:
            self.store.save("ictx", _V, struct.pack(">I", bound))
        self.bound = bound
        self.writes += 1

    def next(self):
        """The next counter value, never repeated, also across power cuts."""
        if self.value >= self.bound:
            if self.value >= 0xFFFFFFFF:
                raise ValueError("invocation counter exhausted: new keys needed")
            self._reserve()  # persisted before the value is used
        v = self.value
        self.value = v + 1
        return v

    def peek(self):
        return self.value


class RxGuard:
    """Last accepted client invocation counter per key; replays (<=) are refused."""

    def __init__(self, store):
        self.store = store
        self.last = [0, 0, 0, 0]  # per key id; 0 = nothing accepted yet
        self.valid = [False, False, False, False]
        rec = store.load("icrx", _V) if store is not None else None
        if rec is not None and len(rec) == 20:
            flags = rec[0]
            for i in range(4):
                self.last[i] = struct.unpack(">I", rec[4 + 4 * i:8 + 4 * i])[0]
                self.valid[i] = bool(flags & (1 << i))

    def check(self, kid, ic):
        """True if ic may be accepted (strictly above the last accepted one)."""
        return not self.valid[kid] or ic > self.last[kid]

    def accept(self, kid, ic):
        """Record ic as accepted (persisted before the request is served)."""
        if not self.check(kid, ic):
            return False
        self.last[kid] = ic
        self.valid[kid] = True
        self._save()
        return True

    def check_and_update(self, key_id, ic):
        """dlms.security's guard interface: its KEY_GLOBAL (0) and KEY_BROADCAST (1)."""
        return self.accept(KEY_EK if key_id == 0 else KEY_BK, ic)

    def reset(self, kid):
        """A new key starts a new counter sequence."""
        self.last[kid] = 0
        self.valid[kid] = False
        self._save()

    def _save(self):
        if self.store is None:
            return
        flags = 0
        for i in range(4):
            if self.valid[i]:
                flags |= 1 << i
        self.store.save("icrx", _V, bytes([flags, 0, 0, 0]) + struct.pack(
            ">IIII", self.last[0], self.last[1], self.last[2], self.last[3]))

    def last_accepted(self, kid=KEY_EK):
        return self.last[kid]
