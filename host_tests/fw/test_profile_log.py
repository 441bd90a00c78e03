"""meter.profile_log.ProfileLog: the ring of fixed-size rows in segment files.
Runs under CPython and MicroPython, on a temporary directory of the host filesystem
(littlefs and power cuts: mp_test_profile_powercut.py)."""

import binascii
import os
import struct

from meter.profile_log import ProfileLog
from tmpdirs import rmtree, tmpdir


def row(i, size=6):
    """A row that tells its number: u32 i, then filler bytes derived from i."""
    r = bytearray(size)
    struct.pack_into(">I", r, 0, i)
    for k in range(4, size):
        r[k] = (i * 7 + k) & 0xFF
    return bytes(r)


def files(d, name):
    """{segment number: size} of the ring's files in d."""
    out = {}
    for f in os.listdir(d):
        if f.startswith(name + ".") and f[len(name) + 1:].isdigit():
            out[int(f[len(name) + 1:])] = os.stat(d + "/" + f)[6]
    return out


def shown(log):
    """The rows of the window (oldest first) as bytes, None for unreadable ones."""
    out = []
    for a in range(log.start(), log.next):
        r = log.read(a)
        out.append(None if r is None else bytes(r))
    return out


def test_append_and_read_round_trip():
    d = tmpdir("pl-rt")
    try:
        log = ProfileLog(d, "lp", 6, 20, seg_rows=4)
        assert (log.first, log.next, log.in_use(), log.last()) == (0, 0, 0, None)
        for i in range(10):
            log.append(row(i))
            assert bytes(log.last()) == row(i)
        for i in range(10):
            assert bytes(log.read(i)) == row(i), i
            assert log.read_u32(i) == i
            assert log.read_u32(i, 2) == struct.unpack(">I", row(i)[2:6])[0]
        # reading into a caller's buffer leaves the internal one alone
        out = bytearray(6 + 4)
        assert bytes(log.read(3, out)) == row(3) and out[:6] == row(3)
        assert log.read(10) is None and log.read(-1) is None and log.read_u32(99) is None
        # backwards and across segments, with the reader file kept open in between
        for i in (9, 0, 5, 4, 8, 1):
            assert bytes(log.read(i)) == row(i)
        assert log.appends == 10
        # a record is the row and its CRC-32, nothing else
        assert files(d, "lp") == {0: 40, 1: 40, 2: 20}
        with open(d + "/lp.1", "rb") as f:
            rec = f.read(10)
        assert rec[:6] == row(4)
        assert struct.unpack(">I", rec[6:])[0] == binascii.crc32(row(4)) & 0xFFFFFFFF
        log.close()
    finally:
        rmtree(d)


def test_a_row_appended_after_a_read_of_its_segment_is_readable():
    d = tmpdir("pl-rw")
    try:
        log = ProfileLog(d, "lp", 6, 20, seg_rows=8)
        log.append(row(0))
        assert bytes(log.read(0)) == row(0)  # segment 0 open for reading
        log.append(row(1))
        assert bytes(log.read(1)) == row(1)
        assert bytes(log.read(0)) == row(0)
        log.close()
    finally:
        rmtree(d)


def test_window_while_filling_past_entries():
    d = tmpdir("pl-win")
    try:
        entries = 10
        log = ProfileLog(d, "lp", 6, entries, seg_rows=4)
        for i in range(60):
            log.append(row(i))
            n = i + 1
            assert log.in_use() == (n if n < entries else entries), (n, log.in_use())
            assert log.start() == n - log.in_use()
            assert log.next == n
            assert shown(log) == [row(k) for k in range(log.start(), n)], n
    finally:
        rmtree(d)


def _check_trimming(entries, seg_rows, count, row_size=6):
    d = tmpdir("pl-trim")
    try:
        log = ProfileLog(d, "r", row_size, entries, seg_rows=seg_rows)
        k = log.seg_rows
        rec = row_size + 4
        most = 0
        for i in range(count):
            log.append(row(i, row_size))
            n = i + 1
            segs = files(d, "r")
            on_flash = 0
            for size in segs.values():
                on_flash += size // rec
            # the files are exactly the segments from first to next - 1
            assert sorted(segs) == list(range(log.first // k, (log.next - 1) // k + 1)), (
                n, sorted(segs), log.first)
            assert on_flash == log.next - log.first, (n, on_flash)
            assert on_flash <= entries + 2 * k, (
                "entries %d seg_rows %d: %d rows on flash after %d appends"
                % (entries, k, on_flash, n))
            assert on_flash >= (n if n < entries else entries), (n, on_flash)
            if on_flash > most:
                most = on_flash
            # the shown window is always the newest `entries` rows
            assert log.in_use() == (n if n < entries else entries)
            assert log.start() == n - log.in_use()
            if n % 7 == 0 or n == count:
                assert shown(log) == [row(a, row_size) for a in range(log.start(), n)], n
        log.close()
        return most
    finally:
        rmtree(d)


def test_segment_trimming_keeps_the_window_within_bounds():
    # entries a multiple of seg_rows, and not (the load profile's 4320 and its 157-row
    # segments are not), one-row segments, and a window smaller than a segment
    for entries, seg_rows in ((8, 4), (10, 4), (7, 3), (13, 5), (5, 1), (3, 4), (1, 2)):
        most = _check_trimming(entries, seg_rows, entries + 6 * seg_rows + 5)
        assert most > entries  # old segments are not deleted before they must be
    assert _check_trimming(40, None, 150) > 40  # the default segment size (20 rows)
    assert _check_trimming(10, None, 40) > 10  # (5 rows)


def test_default_segment_size():
    d = tmpdir("pl-def")
    try:
        assert ProfileLog(d, "a", 22, 4320).seg_rows == 4096 // 26  # ~ one 4 KB block
        assert ProfileLog(d, "b", 22, 100).seg_rows == 50  # small rings: half the depth
        assert ProfileLog(d, "c", 6, 10).seg_rows == 5
        assert ProfileLog(d, "e", 21, 124).seg_rows == 62  # billing
        assert ProfileLog(d, "f", 6, 256).seg_rows == 128  # event log
        assert ProfileLog(d, "d", 6, 1).seg_rows == 2
    finally:
        rmtree(d)


def test_bad_sizes_are_refused():
    d = tmpdir("pl-bad")
    try:
        for rs, entries in ((0, 10), (6, 0), (6, -1)):
            try:
                ProfileLog(d, "x", rs, entries)
            except ValueError:
                pass
            else:
                raise AssertionError((rs, entries))
    finally:
        rmtree(d)


def test_a_row_of_the_wrong_size_is_refused_and_nothing_is_written():
    d = tmpdir("pl-size")
    try:
        log = ProfileLog(d, "lp", 6, 10, seg_rows=4)
        log.append(row(0))
        for bad in (b"", row(1)[:5], row(1) + b"\x00", bytes(10)):
            try:
                log.append(bad)
            except ValueError:
                pass
            else:
                raise AssertionError(len(bad))
        assert (log.next, log.appends, log.in_use()) == (1, 1, 1)
        assert files(d, "lp") == {0: 10}
        assert bytes(log.last()) == row(0)
    finally:
        rmtree(d)


def test_reset_empties_the_ring_and_numbering_goes_on():
    d = tmpdir("pl-reset")
    try:
        log = ProfileLog(d, "lp", 6, 10, seg_rows=4)
        for i in range(13):
            log.append(row(i))
        assert bytes(log.read(12)) == row(12)  # a reader file is open
        log.reset()
        assert log.in_use() == 0 and log.last() is None and log.read(12) is None
        assert files(d, "lp") == {}
        assert log.next >= 13 and log.next % 4 == 0 and log.first == log.next
        base = log.next
        for i in range(5):
            log.append(row(100 + i))
        assert log.in_use() == 5
        assert shown(log) == [row(100 + i) for i in range(5)]
        assert log.start() == base
        log.close()
        again = ProfileLog(d, "lp", 6, 10, seg_rows=4)
        assert shown(again) == [row(100 + i) for i in range(5)]
        again.reset()
        again.reset()  # twice: nothing to delete
        assert again.in_use() == 0
        assert ProfileLog(d, "lp", 6, 10, seg_rows=4).in_use() == 0
    finally:
        rmtree(d)


def test_a_new_log_on_the_same_directory_finds_the_same_rows():
    d = tmpdir("pl-rec")
    try:
        log = ProfileLog(d, "lp", 6, 10, seg_rows=4)
        other = ProfileLog(d, "ev", 6, 5, seg_rows=2)  # another ring in the same directory
        for i in range(37):
            log.append(row(i))
            if i < 3:
                other.append(row(1000 + i))
        before = (log.first, log.next, log.start(), log.in_use(), shown(log))
        log.close()
        again = ProfileLog(d, "lp", 6, 10, seg_rows=4)
        assert (again.first, again.next, again.start(), again.in_use(), shown(again)) == before
        again.append(row(37))  # numbering goes on where it stopped
        assert again.next == 38 and bytes(again.last()) == row(37)
        assert shown(again) == [row(i) for i in range(28, 38)]
        ev = ProfileLog(d, "ev", 6, 5, seg_rows=2)
        assert shown(ev) == [row(1000 + i) for i in range(3)]
        # a fresh directory: an empty ring
        empty = ProfileLog(d, "bill", 6, 5)
        assert (empty.first, empty.next, empty.in_use()) == (0, 0, 0)
    finally:
        rmtree(d)


def test_start_up_deletes_a_segment_a_power_cut_left_behind():
    d = tmpdir("pl-extra")
    try:
        log = ProfileLog(d, "lp", 6, 8, seg_rows=4)
        for i in range(20):
            log.append(row(i))
        oldest = log.first // 4
        with open(d + "/lp.%d" % oldest, "rb") as f:
            keep = f.read()
        n = 0
        while log.first // 4 == oldest:  # until the oldest segment is deleted
            log.append(row(20 + n))
            n += 1
        assert n <= 4
        log.close()
        # the cut between the new record and the deletion: the old file is still there
        with open(d + "/lp.%d" % oldest, "wb") as f:
            f.write(keep)
        again = ProfileLog(d, "lp", 6, 8, seg_rows=4)
        assert oldest not in files(d, "lp")
        assert again.first == log.first and again.next == log.next
        assert shown(again) == shown(log)
    finally:
        rmtree(d)


def test_a_record_that_fails_its_crc_reads_as_missing():
    d = tmpdir("pl-crc")
    try:
        log = ProfileLog(d, "lp", 6, 20, seg_rows=4)
        for i in range(8):
            log.append(row(i))
        log.close()
        # flip one bit of row 5's data (segment 1, record 1) and one of row 2's CRC
        for path, off in ((d + "/lp.1", 10 + 3), (d + "/lp.0", 2 * 10 + 8)):
            with open(path, "r+b") as f:
                f.seek(off)
                b = f.read(1)
                f.seek(off)
                f.write(bytes([b[0] ^ 0x10]))
        for log2 in (log, ProfileLog(d, "lp", 6, 20, seg_rows=4)):
            assert log2.read(5) is None and log2.read_u32(5) is None
            assert log2.read(2) is None
            for i in (0, 1, 3, 4, 6, 7):
                assert bytes(log2.read(i)) == row(i), i
            assert log2.in_use() == 8  # the row keeps its place
            log2.close()
        # a newest row that fails: last() is None
        with open(d + "/lp.1", "r+b") as f:
            f.seek(3 * 10)
            f.write(b"\xff")
        assert ProfileLog(d, "lp", 6, 20, seg_rows=4).last() is None
    finally:
        rmtree(d)


def test_a_partial_record_at_the_end_is_ignored():
    # not possible on littlefs (a file is committed whole at close), possible elsewhere
    d = tmpdir("pl-part")
    try:
        log = ProfileLog(d, "lp", 6, 20, seg_rows=4)
        for i in range(6):
            log.append(row(i))
        log.close()
        with open(d + "/lp.1", "ab") as f:
            f.write((row(6) + b"\x00\x00\x00\x00")[:7])  # 7 of 10 bytes
        again = ProfileLog(d, "lp", 6, 20, seg_rows=4)
        assert again.next == 6 and again.in_use() == 6
        assert shown(again) == [row(i) for i in range(6)]
        assert again.read(6) is None
        # the ring goes on: the next rows are readable where they are numbered
        for i in range(6, 11):
            again.append(row(i))
        assert shown(again) == [row(i) for i in range(11)]
        assert shown(ProfileLog(d, "lp", 6, 20, seg_rows=4)) == [row(i) for i in range(11)]
    finally:
        rmtree(d)


def test_a_missing_segment_file_reads_as_missing_rows():
    d = tmpdir("pl-miss")
    try:
        log = ProfileLog(d, "lp", 6, 20, seg_rows=4)
        for i in range(10):
            log.append(row(i))
        assert bytes(log.read(5)) == row(5)
        log.close()
        os.remove(d + "/lp.1")
        assert [log.read(i) for i in range(4, 8)] == [None] * 4
        assert bytes(log.read(8)) == row(8) and bytes(log.read(3)) == row(3)
    finally:
        rmtree(d)
