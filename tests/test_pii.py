"""PII detection: real-looking values per kind, and silence on ordinary data.

Check digits are computed here with the published algorithms, independently of
quality.pii, so a wrong implementation there cannot agree with itself.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quality.pii import Finding, detect_column, mask, name_hints, scan_table, value_kinds
from tests.conftest import cn_id_check

SEED = 20240607
RNG = random.Random(SEED)  # for ORDINARY, built once at import; each test draws from its own ``rng``


@pytest.fixture
def rng() -> random.Random:
    """A generator of the test's own: what a test draws does not depend on which tests ran before."""
    return random.Random(SEED)


def make_id(rng: random.Random) -> str:
    region = rng.choice(["110101", "310104", "440305", "510107", "330106", "620102"])
    born = datetime(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
    first17 = f"{region}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + cn_id_check(first17)


def flip_check(idno: str) -> str:
    return idno[:17] + ("0" if idno[17] != "0" else "1")


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):  # the check digit will sit right of body
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return body + str((10 - total % 10) % 10)


def kinds(findings: list[Finding]) -> set[str]:
    return {f.kind for f in findings}


# ---------------------------------------------------------------- positives

def test_emails_with_a_few_blanks():
    values = [f"user{i}.name@example{i % 3}.com" for i in range(40)] + ["", "  ", None, None]
    values += ["李雷@例子.中国", "o'brien+news@mail.example.org"]
    [f] = detect_column("contact", values)
    assert (f.kind, f.matches, f.checked, f.share) == ("email", 42, 42, 1.0)
    assert f.examples == ["u***@example0.com", "u***@example1.com", "u***@example2.com"]


def test_phones_in_mixed_formats():
    values = ["13812345678", "+86 139 1234 5678", "+86-15012345678", "0086 186 1234 5678", "8617712345678",
              "138-1234-5678", "010-12345678", "0755-1234567", "(021) 6123 4567", "+1 415 555 2671",
              "+44 20 7946 0958", "+49 (30) 901820", "+8613912345678"]
    [f] = detect_column("联系人", values)
    assert (f.kind, f.matches) == ("phone", len(values))
    for v in values:
        assert value_kinds(v) == ("phone",), v


def test_cn_mobile_as_integers_is_phone(rng):
    values = [int(f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}") for _ in range(500)]
    [f] = detect_column("contact", values)
    assert f.kind == "phone" and f.share == 1.0
    assert all("*" * 4 in e and len(e) == 11 for e in f.examples)


def test_cn_ids_count_only_with_valid_check_digit(rng):
    valid = [make_id(rng) for _ in range(300)]
    invalid = [flip_check(v) for v in valid[:100]]
    assert value_kinds(valid[0]) == ("cn_id",)
    assert "cn_id" not in value_kinds(invalid[0])
    [f] = detect_column("owner", valid + invalid)
    assert (f.kind, f.matches, f.checked, f.invalid_checksum) == ("cn_id", 300, 400, 100)
    assert f.share == 0.75
    # only bad check digits: nothing to report, however the column is named
    assert detect_column("身份证号", invalid) == []


def test_cn_id_lowercase_x_separators_and_legacy_15(rng):
    x_ids = []
    while len(x_ids) < 5:
        v = make_id(rng)
        if v.endswith("X"):
            x_ids.append(v)
    assert value_kinds(x_ids[0].lower()) == ("cn_id",)
    assert value_kinds(f"{x_ids[1][:6]} {x_ids[1][6:14]} {x_ids[1][14:]}") == ("cn_id",)
    assert value_kinds("110101900307123") == ("cn_id",)  # 1990-03-07
    assert value_kinds("110101901307123") == ()  # month 13
    assert value_kinds("110101" + "21000307" + "1234") == ()  # born in 2100
    bad_region = "910101199003071234"
    assert value_kinds(bad_region[:17] + cn_id_check(bad_region[:17])) == ()


def test_cn_id_mask_hides_birth_date(rng):
    v = make_id(rng)
    m = mask("cn_id", v)
    assert m == v[:4] + "*" * 10 + v[-4:]
    assert v[6:14] not in m


def test_bank_cards(rng):
    cards = [luhn_complete("622202", 19, rng) for _ in range(50)] + \
            [luhn_complete("4", 16, rng) for _ in range(50)] + \
            [luhn_complete("53", 16, rng) for _ in range(20)] + [luhn_complete("2221", 16, rng)] + \
            [luhn_complete("37", 15, rng) for _ in range(20)]
    spaced = [" ".join(c[i:i + 4] for i in range(0, len(c), 4)) for c in cards[:10]]
    [f] = detect_column("payment", cards + spaced)
    assert (f.kind, f.share) == ("bank_card", 1.0)
    assert mask("bank_card", "6222 0212 3456 7890") == "6222 **** **** 7890"
    for e in f.examples:
        digits = e.replace(" ", "").replace("*", "")
        assert len(digits) == 8


def test_bank_card_needs_iin_length_and_luhn(rng):
    assert value_kinds(luhn_complete("9", 16, rng)) == ()  # unknown issuer
    assert value_kinds(luhn_complete("4", 15, rng)) == ()  # Visa is 13, 16 or 19 digits
    good = luhn_complete("4", 16, rng)
    assert value_kinds(good[:-1] + str((int(good[-1]) + 1) % 10)) == ()  # Luhn broken


def test_card_like_sequential_ids_are_not_cards():
    """One in ten sequential 16-digit ids passes Luhn; far below the card threshold, hint or not."""
    ids = list(range(4_000_000_000_000_000, 4_000_000_000_000_000 + 5000))
    assert sum("bank_card" in value_kinds(i) for i in ids) == 500
    assert detect_column("card_no", ids) == []
    assert detect_column("card_no", [str(i) for i in ids]) == []


def test_ip_addresses():
    v4 = [f"10.{i % 256}.{i // 256}.{i % 7}" for i in range(100)] + ["192.168.001.010", "255.255.255.255"]
    v6 = ["2001:db8::1", "fe80::1ff:fe23:4567:890a", "::1", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"]
    [f] = detect_column("remote", v4 + v6)
    assert (f.kind, f.matches) == ("ip_address", 106)
    assert mask("ip_address", "192.168.1.20") == "192.168.*.*"
    assert mask("ip_address", "2001:db8::1") == "2001:db8:*:*:*:*:*:*"
    assert value_kinds("256.1.1.1") == () and value_kinds("12:30:45") == ()


def test_passports():
    prc = ["E12345678", "EA1234567", "G87654321", "D1234567", "SE7654321", "P2345678"]
    [f] = detect_column("doc", prc)
    assert (f.kind, f.share) == ("passport", 1.0)
    assert mask("passport", "E12345678") == "E****5678"
    foreign = ["C01X00T47", "L898902C3", "123456789", "AB1234567"]
    assert detect_column("doc", foreign) == []  # generic ICAO numbers only with a name hint
    [f] = detect_column("passport_no", foreign)
    assert f.kind == "passport" and f.matches == 4


def test_name_hint_lowers_threshold_but_never_invents():
    values = ["alice@example.com"] * 3 + ["n/a"] * 9  # 25%
    assert detect_column("notes", values) == []
    [f] = detect_column("邮箱", values)
    assert f.kind == "email" and f.share == 0.25
    assert detect_column("email", ["n/a", "unknown", ""]) == []
    assert detect_column("mobile_phone", [1, 2, 3]) == []
    assert name_hints("mobilePhone") == {"phone"} and name_hints("hotel_name") == set()
    assert name_hints("client_ip") == {"ip_address"} and name_hints("zip") == set()
    assert name_hints("身份证号码") == {"cn_id"} and name_hints("id") == set()


# ---------------------------------------------------------------- negatives

ORDINARY = {
    "price": [round(RNG.uniform(0.5, 99999), 2) for _ in range(3000)],
    "count": [RNG.randrange(0, 10**6) for _ in range(3000)],
    "year": [RNG.randrange(1990, 2025) for _ in range(3000)],
    "id": list(range(1, 100_001)),
    "order_no": [int(f"{RNG.choice('2456789')}{RNG.randrange(10**10):010d}") for _ in range(3000)],
    "order_no_text": [f"{RNG.choice('02')}{RNG.randrange(10**10):010d}" for _ in range(3000)],
    "order_no_1x": [int(f"1{RNG.choice('012')}{RNG.randrange(10**9):09d}") for _ in range(3000)],
    "created_ts": [1_700_000_000 + i * 37 for i in range(3000)],
    "created_ms": [1_700_000_000_000 + i * 37 for i in range(3000)],
    "created_at": [f"2024-01-{1 + i % 28:02d} 12:{i % 60:02d}:00" for i in range(3000)],
    "created_iso": [f"2024-01-{1 + i % 28:02d}T12:{i % 60:02d}:00+08:00" for i in range(3000)],
    "zip": [f"{RNG.randrange(100000, 860000)}" for _ in range(3000)],
    "zip_int": [RNG.randrange(100000, 860000) for _ in range(3000)],
    "version": [f"{RNG.randrange(5)}.{RNG.randrange(20)}.{RNG.randrange(50)}" for _ in range(3000)],
    "ratio": [f"{RNG.random():.4f}" for _ in range(3000)],
    "flag": [True, False] * 1500,
    "category": [f"category_{i % 12}" for i in range(3000)],
    "sku": [f"SKU-{i:06d}" for i in range(3000)],
    "amount_text": [f"{RNG.randrange(10**6)}.{RNG.randrange(100):02d}" for _ in range(3000)],
    "negative": [-13812345678 - i for i in range(3000)],
}


@pytest.mark.parametrize("name", sorted(ORDINARY))
def test_no_findings_on_ordinary_columns(name):
    assert detect_column(name, ORDINARY[name]) == []


def test_version_strings_are_not_ips():
    assert detect_column("ip", ["1.2.3", "10.0.1", "2.14.7"] * 100) == []


# ---------------------------------------------------------------- masking

def test_masks_never_show_the_middle(rng):
    assert mask("email", "zhangsan@example.com") == "z***@example.com"
    assert mask("email", "a@example.com") == "***@example.com"
    assert mask("phone", "13812345678") == "138****5678"
    assert mask("phone", "+86 138 1234 5678") == "+86 138 **** 5678"
    assert mask("phone", "010-12345678") == "010-****5678"
    assert "7946" not in mask("phone", "+44 20 7946 0958")
    assert mask("cn_id", "11010119900307123X") == "1101**********123X"
    assert mask("bank_card", "6222021234567890") == "6222 **** **** 7890"
    assert mask("passport", "E12345678") == "E****5678"
    for _ in range(200):
        phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        assert mask("phone", phone)[3:7] == "****"
        card = luhn_complete("62", rng.choice([16, 17, 18, 19]), rng)
        assert card[4:-4] not in mask("bank_card", card).replace(" ", "")
        assert mask("bank_card", card).replace(" ", "").count("*") == len(card) - 8
        idno = make_id(rng)
        assert idno[4:14] not in mask("cn_id", idno)


def test_examples_are_masked_and_distinct():
    ids = ["110101197808305149", "330106195903189055", "310104200312036361", "440305198001011235"]
    [f] = detect_column("idno", ids * 5)
    assert f.examples == ["1101**********5149", "3301**********9055", "3101**********6361"]  # three of four shown


def _kinds(name: str, values: list[object]) -> list[tuple[str, float]]:
    return [(f.kind, f.share) for f in detect_column(name, values)]


def test_the_documented_thresholds_decide_a_finding(rng):
    words = [f"word{i}" for i in range(10)]
    emails = [f"p{i}@example.com" for i in range(10)]
    # 50% of the values without a name hint, 20% with one ("email").
    assert _kinds("notes", emails[:5] + words[:5]) == [("email", 0.5)]
    assert _kinds("notes", emails[:4] + words[:6]) == []
    assert _kinds("email", emails[:2] + words[:8]) == [("email", 0.2)]
    assert _kinds("email", emails[:1] + words[:9]) == []
    # Bank cards need 80% (one random number in ten passes Luhn), and a correct Luhn digit.
    cards = [luhn_complete("62", 16, rng) for _ in range(10)]
    assert _kinds("ref", cards[:8] + words[:2]) == [("bank_card", 0.8)]
    assert _kinds("ref", cards[:7] + words[:3]) == []
    wrong = [c[:-1] + str((int(c[-1]) + 1) % 10) for c in cards]
    assert _kinds("ref", wrong) == []


# ---------------------------------------------------------------- DuckDB

def _table(n: int) -> pa.Table:
    rng = random.Random(7)
    return pa.table({
        "id": pa.array(range(n), pa.int64()),
        "email": [f"person{i}@example.com" if i % 10 else None for i in range(n)],
        "mobile": pa.array([13800000000 + rng.randrange(10**8) for _ in range(n)], pa.int64()),
        "id_card": [make_id(rng) for _ in range(n)],
        "price": [rng.uniform(1, 1000) for _ in range(n)],
        "qty": pa.array([rng.randrange(100) for _ in range(n)], pa.int32()),
        "year": pa.array([rng.randrange(1990, 2025) for _ in range(n)], pa.int64()),
        "order_no": pa.array([20000000000 + i for i in range(n)], pa.int64()),
        "ip": [f"172.16.{i % 256}.{i % 200}" for i in range(n)],
        "version": [f"1.{i % 9}.{i % 4}" for i in range(n)],
        "seen_at": pa.array([datetime(2024, 1, 1) + timedelta(minutes=i) for i in range(n)]),
        "ok": [i % 2 == 0 for i in range(n)],
    })


def _columns(con: duckdb.DuckDBPyConnection, rel: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()]


def test_scan_table_on_parquet(tmp_path):
    path = tmp_path / "people.parquet"
    pq.write_table(_table(30_000), path, row_group_size=5000)
    con = duckdb.connect()
    rel = f"read_parquet('{path}')"
    findings = scan_table(con, rel, _columns(con, rel), sample_rows=2000)
    by_col = {f.column: f for f in findings}
    assert set(by_col) == {"email", "mobile", "id_card", "ip"}
    assert by_col["email"].kind == "email" and by_col["email"].share == 1.0  # nulls are not counted
    assert by_col["email"].checked < 2000
    assert by_col["mobile"].kind == "phone" and by_col["mobile"].checked == 2000
    assert by_col["id_card"].kind == "cn_id" and by_col["ip"].kind == "ip_address"
    # the sample is seeded: the same findings every time
    assert scan_table(con, rel, _columns(con, rel), sample_rows=2000) == findings


def test_scan_table_small_table_and_odd_names():
    con = duckdb.connect()
    con.execute('CREATE TABLE t ("用户 邮箱" VARCHAR, "we""ird" VARCHAR, n DOUBLE)')
    con.execute("INSERT INTO t VALUES ('a.b@example.com', '13912345678', 1.5), ('c@example.org', NULL, 2.5)")
    findings = scan_table(con, "t", _columns(con, "t"))
    assert [(f.column, f.kind, f.checked) for f in findings] == [("用户 邮箱", "email", 2), ('we"ird', "phone", 1)]
    assert scan_table(con, "t", [("n", "DOUBLE")]) == []


def test_detection_over_twenty_mixed_columns_of_10k_values(rng):
    cols = {f"c{i}": vals for i, vals in enumerate([
        [f"user{j}@example.com" for j in range(10_000)],
        [f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}" for _ in range(10_000)],
        [make_id(rng) for _ in range(10_000)],
        [luhn_complete("62", 19, rng) for _ in range(10_000)],
        [f"10.{j % 256}.{j // 256}.1" for j in range(10_000)],
        [f"E{rng.randrange(10**8):08d}" for _ in range(10_000)],
        list(range(10_000)),
        [rng.uniform(0, 1) for _ in range(10_000)],
        [f"record {j} says alpha near station {j}" for j in range(10_000)],
        [f"2024-01-01 12:{j % 60:02d}:00" for j in range(10_000)],
    ] * 2)}
    found = [f for name, vals in cols.items() for f in detect_column(name, vals)]
    # The first six columns of each ten hold personal data; numbers, floats, text and times do not.
    # The speed of this is bench/quality.py's "pii" figure, not a test's.
    kinds = ["email", "phone", "cn_id", "bank_card", "ip_address", "passport"]
    assert [(f.column, f.kind) for f in found] == [(f"c{first + i}", kind) for first in (0, 10)
                                                   for i, kind in enumerate(kinds)]
