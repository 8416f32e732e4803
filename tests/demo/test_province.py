import re
import unicodedata
from collections import Counter

from streamsvc.demo.province import build_province, demo_session_title, demo_sites
from streamsvc.domain.models import FORMS

# Families of the region, written out here independently of the generator.
TAY = {
    "Hoàng",
    "Nông",
    "Lộc",
    "Ma",
    "Hà",
    "Triệu",
    "Lục",
    "Đồng",
    "Bế",
    "Lường",
    "Hứa",
    "Lành",
    "La",
    "Lưu",
    "Dương",
    "Nguyễn",
    "Tô",
    "Vi",
    "Đàm",
    "Mạc",
    "Quan",
}
NUNG = {"Lý", "Nông", "Hoàng", "Lăng", "Mông", "Vi", "Lương", "Chu", "Mã", "Sầm"}
DAO = {"Bàn", "Triệu", "Đặng", "Lý", "Phùng", "Hoàng", "Chìu"}
KINH = {
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Vũ",
    "Đỗ",
    "Hoàng",
    "Phan",
    "Bùi",
    "Đinh",
    "Ngô",
    "Dương",
    "Đào",
}
MONG = {"Giàng", "Vàng", "Sùng", "Lý", "Hầu", "Thào", "Mùa"}
FAMILIES = TAY | NUNG | DAO | KINH | MONG

UNITS, MEMBERS = build_province()


def _committees(units):
    return [u for u in units if u.parent == "BK"]


def _cells(units):
    committees = {u.code for u in _committees(units)}
    return [u for u in units if u.parent in committees]


def test_counts():
    assert 9 <= len(_committees(UNITS)) <= 13
    assert 430 <= len(_cells(UNITS)) <= 470
    assert len(UNITS) == 1 + len(_committees(UNITS)) + len(_cells(UNITS))
    assert len(MEMBERS) == 37_000


def test_member_count_is_exact_for_any_size():
    for size in (0, 1, 5_000, 37_001, 80_000):
        assert len(build_province(3, size)[1]) == size


def test_codes_are_unique_and_short_ascii():
    assert len({u.code for u in UNITS}) == len(UNITS)
    assert len({m.code for m in MEMBERS}) == len(MEMBERS)
    for u in UNITS:
        assert re.fullmatch(r"BK(\.[A-Z]{2}(\.\d{3})?)?", u.code), u.code


def test_card_numbers_have_eight_digits():
    for m in MEMBERS:
        assert re.fullmatch(r"[1-9]\d{7}", m.code), m.code


def test_tree_has_one_root_and_known_parents():
    codes = {u.code for u in UNITS}
    roots = [u for u in UNITS if u.parent is None]
    assert [(r.code, r.name) for r in roots] == [("BK", "Đảng bộ tỉnh Bắc Kạn")]
    seen = set()
    for u in UNITS:  # parents come first, so the list imports in one pass
        assert u.parent is None or u.parent in seen
        seen.add(u.code)
    assert all(u.parent is None or u.parent in codes for u in UNITS)


def test_every_member_is_in_a_cell_of_20_to_150():
    cells = {u.code for u in _cells(UNITS)}
    sizes = Counter(m.unit for m in MEMBERS)
    assert set(sizes) <= cells
    assert min(sizes.values()) >= 20
    assert max(sizes.values()) <= 150
    assert max(sizes.values()) - min(sizes.values()) > 50  # spread unevenly


def test_bach_thong_matches_the_article():
    cells = [u for u in UNITS if u.parent == "BK.BT"]
    assert len(cells) == 19
    assert sum(1 for m in MEMBERS if m.unit.startswith("BK.BT.")) == 2_689
    assert "Chi bộ Văn hóa - Thông tin huyện Bạch Thông" in {u.name for u in cells}


def test_names_are_vietnamese_with_regional_families():
    for m in MEMBERS:
        parts = m.full_name.split(" ")
        assert 3 <= len(parts) <= 4, m.full_name
        assert parts[0] in FAMILIES, m.full_name
        assert unicodedata.is_normalized("NFC", m.full_name)
    with_marks = sum(1 for m in MEMBERS if not m.full_name.isascii())
    assert with_marks / len(MEMBERS) > 0.95
    families = Counter(m.full_name.split(" ")[0] for m in MEMBERS)
    for group in (TAY, NUNG, DAO, KINH, MONG):
        assert sum(families[f] for f in group) > 100
    middles = Counter(m.full_name.split(" ")[1] for m in MEMBERS)
    assert middles["Văn"] > 5_000
    assert middles["Thị"] > 5_000


def test_unit_names_are_vietnamese_cells():
    for u in _cells(UNITS):
        assert u.name.startswith("Chi bộ "), u.name
        assert unicodedata.is_normalized("NFC", u.name)
    assert len({u.name for u in _cells(UNITS)}) == len(_cells(UNITS))


def test_deterministic_for_a_seed():
    assert build_province(7, 2_000) == build_province(7, 2_000)
    assert build_province() == (UNITS, MEMBERS)
    assert build_province(8, 2_000)[1] != build_province(7, 2_000)[1]


def test_demo_sites_cover_all_forms_with_existing_units():
    sites = demo_sites(UNITS)
    codes = {u.code for u in UNITS}
    assert 30 <= len(sites) <= 40
    assert {s["kind"] for s in sites} == set(FORMS)
    assert len({s["name"] for s in sites}) == len(sites)
    for s in sites:
        assert set(s) == {"name", "kind", "unit", "capacity"}
        assert s["unit"] is None or s["unit"] in codes
    halls = [s for s in sites if s["kind"] == "hall"]
    assert halls == [{"name": "Hội trường Tỉnh ủy", "kind": "hall", "unit": None, "capacity": 500}]
    bridges = {s["unit"] for s in sites if s["kind"] == "bridge"}
    assert "BK.BT" in bridges
    assert bridges <= {u.code for u in _committees(UNITS)}
    assert all(50 <= s["capacity"] <= 200 for s in sites if s["kind"] == "broadcast")
    assert all(s["capacity"] is None for s in sites if s["kind"] == "self_study")
    assert any(s["name"] == "Tự nghiên cứu – Đảng bộ huyện Pác Nặm" for s in sites)


def test_demo_sites_are_deterministic_and_follow_the_roster():
    assert demo_sites(UNITS, 5) == demo_sites(UNITS, 5)
    trimmed = [u for u in UNITS if not u.code.startswith("BK.PN")]
    assert all(s["unit"] is None or not s["unit"].startswith("BK.PN") for s in demo_sites(trimmed))


def test_session_title():
    assert demo_session_title() == "Học tập, quán triệt Nghị quyết Trung ương 6 khóa XII"
