"""meter.secrets: keys old-or-new, transmit counter by reservation, replay guard.
Runs under CPython and MicroPython, on an in-memory store."""

from meter import secrets


class MemStore:
    """meter.store.Store's interface on a dict; ``fail_at`` simulates a power cut."""

    def __init__(self):
        self.records = {}
        self.writes = 0
        self.fail_at = -1

    def save(self, name, version, payload):
        if self.writes == self.fail_at:
            self.writes += 1
            raise OSError("power cut")
        self.writes += 1
        self.records[name] = (version, bytes(payload))

    def load(self, name, version):
        rec = self.records.get(name)
        if rec is None or rec[0] != version:
            return None
        return rec[1]


DEFAULTS = [bytes(range(16)), bytes(range(0xD0, 0xE0)), b"\xaa" * 16, bytes(range(16))]


def test_keys_default_then_persisted():
    st = MemStore()
    ks = secrets.KeyStore(st, DEFAULTS)
    assert ks.get(secrets.KEY_AK) == DEFAULTS[1]
    ks.set_keys([(secrets.KEY_EK, b"\x11" * 16), (secrets.KEY_AK, b"\x22" * 16)])
    again = secrets.KeyStore(st, DEFAULTS)
    assert again.get(secrets.KEY_EK) == b"\x11" * 16
    assert again.get(secrets.KEY_AK) == b"\x22" * 16
    assert again.get(secrets.KEY_KEK) == DEFAULTS[3]
    assert "11" not in repr(again) and "\\x11" not in repr(again)


def test_a_failed_key_write_keeps_the_old_keys():
    st = MemStore()
    ks = secrets.KeyStore(st, DEFAULTS)
    st.fail_at = st.writes
    try:
        ks.set_keys([(secrets.KEY_EK, b"\x33" * 16)])
    except OSError:
        pass
    assert ks.get(secrets.KEY_EK) == DEFAULTS[0]
    assert secrets.KeyStore(st, DEFAULTS).get(secrets.KEY_EK) == DEFAULTS[0]


def test_bad_key_length_is_refused():
    ks = secrets.KeyStore(MemStore(), DEFAULTS)
    try:
        ks.set_keys([(secrets.KEY_EK, b"short")])
    except ValueError:
        pass
    else:
        raise AssertionError("accepted a short key")


def test_tx_counter_starts_at_one_and_reserves_before_use():
    st = MemStore()
    c = secrets.TxCounter(st, reserve=10)
    assert st.writes == 0
    assert c.next() == 1
    assert st.writes == 1  # the reservation was written before the first value was used
    for expected in range(2, 12):
        assert c.next() == expected
    assert st.writes == 2  # 11 reached the bound 11: a new reservation


def test_tx_counter_never_repeats_across_power_cuts():
    st = MemStore()
    seen = set()
    c = secrets.TxCounter(st, reserve=8)
    for cut in range(12):
        for _ in range(cut * 3 + 1):
            v = c.next()
            assert v not in seen
            seen.add(v)
        c = secrets.TxCounter(st, reserve=8)  # power cut: restart from the store
    assert min(seen) >= 1


def test_tx_counter_cut_during_reservation_write():
    st = MemStore()
    c = secrets.TxCounter(st, reserve=8)
    used = [c.next() for _ in range(8)]  # 1..8, bound 9
    st.fail_at = st.writes  # the next reservation write is cut
    try:
        c.next()
    except OSError:
        pass
    c2 = secrets.TxCounter(st, reserve=8)
    assert c2.next() > max(used)


def test_rx_guard_refuses_replays_across_restarts():
    st = MemStore()
    g = secrets.RxGuard(st)
    assert g.accept(secrets.KEY_EK, 5)
    assert not g.accept(secrets.KEY_EK, 5)
    assert not g.accept(secrets.KEY_EK, 4)
    assert g.accept(secrets.KEY_EK, 6)
    assert g.accept(secrets.KEY_AK, 1)  # per key
    g2 = secrets.RxGuard(st)
    assert not g2.check(secrets.KEY_EK, 6)
    assert g2.check(secrets.KEY_EK, 7)
    assert g2.last_accepted() == 6
    g2.reset(secrets.KEY_EK)
    assert g2.check(secrets.KEY_EK, 1)
