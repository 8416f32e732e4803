"""A demo province shaped like Bắc Kạn in 2017, as plain deterministic data (no I/O).

The tree is province committee -> 11 party committees (8 districts and the city, 3 agency
committees) -> 450 cells. Bạch Thông mirrors the article in `seed/`: 19 cells and, at the
default size, 2,689 members. Names come from the region's Tày, Nùng, Dao, Kinh and Mông
families, mixed per committee (more Dao and Mông in Pác Nặm, more Kinh in the city).
Everything is drawn from one `random.Random(seed)`, so a seed always gives the same province.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from streamsvc.domain.models import Member, Unit

__all__ = ["build_province", "demo_session_title", "demo_sites"]

_ROOT = Unit("BK", "Đảng bộ tỉnh Bắc Kạn", None)

# Bạch Thông as the article reports it: 19 party organisations, 2,689 members.
_BT_CELLS = 19
_BT_MEMBERS = 2_689
_DEFAULT_MEMBERS = 37_000
_CELL_MIN, _CELL_MAX = 20, 150
_CARD_FIRST, _CARD_END = 10_000_000, 100_000_000  # 8 digits, never a leading zero

# Share of each group among a committee's members: (Tày, Nùng, Dao, Kinh, Mông).
_MIX_TOWN = (45, 7, 8, 38, 2)
_MIX_RURAL = (56, 10, 15, 15, 4)
_MIX_NORTH = (45, 22, 15, 14, 4)
_MIX_HIGHLAND = (45, 8, 24, 10, 13)


@dataclass(frozen=True, slots=True)
class _Committee:
    code: str
    name: str
    cells: int
    mix: tuple[int, ...]
    place: str = ""  # "huyện Bạch Thông": how a viewing point names the district
    communes: tuple[str, ...] = ()  # "xã Mỹ Thanh", "thị trấn Phủ Thông", "phường Sông Cầu"
    offices: tuple[str, ...] = ()  # without "Chi bộ "; {h} "huyện Ba Bể", {n} "Ba Bể"


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _places(town: str | None, communes: str, kind: str = "xã") -> tuple[str, ...]:
    head = (f"thị trấn {town}",) if town else ()
    return head + tuple(f"{kind} {name}" for name in _split(communes))


# A district committee keeps its first two offices and a choice of five of the rest.
_DISTRICT_OFFICES = _split(
    "Cơ quan Huyện ủy {n}, Cơ quan UBND {h}, Văn hóa - Thông tin {h}, Công an {h}, Quân sự {h}, "
    "Trung tâm Y tế {h}, Phòng Giáo dục và Đào tạo {h}, Phòng Tài chính - Kế hoạch {h}, "
    "Phòng Nông nghiệp và Phát triển nông thôn {h}, Kho bạc Nhà nước {h}, "
    "Chi cục Thuế {h}, Bảo hiểm xã hội {h}"
)

_COMMITTEES: tuple[_Committee, ...] = (
    _Committee(
        code="BK.TP",
        name="Đảng bộ thành phố Bắc Kạn",
        cells=50,
        mix=_MIX_TOWN,
        place="thành phố Bắc Kạn",
        communes=_places(
            None,
            "Đức Xuân, Nguyễn Thị Minh Khai, Phùng Chí Kiên, Sông Cầu, Huyền Tụng, Xuất Hóa",
            kind="phường",
        )
        + _places(None, "Dương Quang, Nông Thượng"),
        offices=_split(
            "Cơ quan Thành ủy {n}, Cơ quan UBND {h}, Công an {h}, Ban Chỉ huy Quân sự {h}, "
            "Phòng Tư pháp {h}, Phòng Nội vụ {h}, Trung tâm Bồi dưỡng chính trị {h}, "
            "Phòng Giáo dục và Đào tạo {h}, Trường THPT Bắc Kạn, Trung tâm Y tế {h}"
        ),
    ),
    _Committee(
        code="BK.BB",
        name="Đảng bộ huyện Ba Bể",
        cells=62,
        mix=_MIX_RURAL,
        place="huyện Ba Bể",
        communes=_places(
            "Chợ Rã",
            "Bành Trạch, Cao Thượng, Cao Trĩ, Chu Hương, Địa Linh, Đồng Phúc, Hà Hiệu, "
            "Hoàng Trĩ, Khang Ninh, Mỹ Phương, Nam Mẫu, Phúc Lộc, Quảng Khê, Thượng Giáo, "
            "Yến Dương",
        ),
        offices=("Trường THPT Ba Bể", "Vườn quốc gia Ba Bể"),
    ),
    _Committee(
        code="BK.BT",
        name="Đảng bộ huyện Bạch Thông",
        cells=_BT_CELLS,
        mix=_MIX_RURAL,
        place="huyện Bạch Thông",
        communes=_places(
            "Phủ Thông",
            "Cẩm Giàng, Cao Sơn, Dương Phong, Đôn Phong, Hà Vị, Lục Bình, Mỹ Thanh, "
            "Nguyên Phúc, Quang Thuận, Quân Bình, Sỹ Bình, Tân Tú, Vi Hương, Vũ Muộn, Tú Trĩ, "
            "Phương Linh",
        ),
        offices=("Cơ quan Huyện ủy {n}", "Văn hóa - Thông tin {h}"),
    ),
    _Committee(
        code="BK.CD",
        name="Đảng bộ huyện Chợ Đồn",
        cells=70,
        mix=_MIX_RURAL,
        place="huyện Chợ Đồn",
        communes=_places(
            "Bằng Lũng",
            "Bản Thi, Bằng Lãng, Bằng Phúc, Bình Trung, Đại Sảo, Đồng Lạc, Đông Viên, "
            "Lương Bằng, Nam Cường, Nghĩa Tá, Ngọc Phái, Phong Huân, Phương Viên, Quảng Bạch, "
            "Rã Bản, Tân Lập, Xuân Lạc, Yên Mỹ, Yên Nhuận, Yên Phong, Yên Thịnh, Yên Thượng",
        ),
        offices=("Trường THPT Chợ Đồn",),
    ),
    _Committee(
        code="BK.CM",
        name="Đảng bộ huyện Chợ Mới",
        cells=55,
        mix=_MIX_RURAL,
        place="huyện Chợ Mới",
        communes=_places(
            "Đồng Tâm",
            "Bình Văn, Cao Kỳ, Hòa Mục, Mai Lạp, Như Cố, Nông Hạ, Nông Thịnh, Quảng Chu, "
            "Tân Sơn, Thanh Bình, Thanh Mai, Thanh Vận, Yên Cư, Yên Đĩnh, Yên Hân",
        ),
        offices=("Trường THPT Chợ Mới",),
    ),
    _Committee(
        code="BK.NR",
        name="Đảng bộ huyện Na Rì",
        cells=68,
        mix=_MIX_NORTH,
        place="huyện Na Rì",
        communes=_places(
            "Yến Lạc",
            "Ân Tình, Côn Minh, Cư Lễ, Cường Lợi, Dương Sơn, Đổng Xá, Hảo Nghĩa, Hữu Thác, "
            "Kim Hỷ, Kim Lư, Lam Sơn, Lạng San, Liêm Thủy, Lương Hạ, Lương Thành, "
            "Lương Thượng, Quang Phong, Sơn Thành, Văn Học, Văn Minh, Văn Vũ, Vũ Loan, "
            "Xuân Dương",
        ),
        offices=("Trường THPT Na Rì",),
    ),
    _Committee(
        code="BK.NS",
        name="Đảng bộ huyện Ngân Sơn",
        cells=40,
        mix=_MIX_NORTH,
        place="huyện Ngân Sơn",
        communes=_places(
            "Nà Phặc",
            "Bằng Vân, Cốc Đán, Đức Vân, Hiệp Lực, Lãng Ngâm, Thuần Mang, Thượng Ân, "
            "Thượng Quan, Trung Hòa, Vân Tùng",
        ),
        offices=("Trường THPT Ngân Sơn",),
    ),
    _Committee(
        code="BK.PN",
        name="Đảng bộ huyện Pác Nặm",
        cells=36,
        mix=_MIX_HIGHLAND,
        place="huyện Pác Nặm",
        communes=_places(
            None,
            "An Thắng, Bằng Thành, Bộc Bố, Cao Tân, Cổ Linh, Công Bằng, Giáo Hiệu, "
            "Nghiên Loan, Nhạn Môn, Xuân La",
        ),
        offices=("Trường THPT Pác Nặm",),
    ),
    _Committee(
        code="BK.CQ",
        name="Đảng bộ Khối các cơ quan tỉnh",
        cells=30,
        mix=_MIX_TOWN,
        offices=_split(
            "Văn phòng Tỉnh ủy, Ban Tổ chức Tỉnh ủy, Ban Tuyên giáo Tỉnh ủy, "
            "Ủy ban Kiểm tra Tỉnh ủy, Ban Dân vận Tỉnh ủy, Báo Bắc Kạn, "
            "Đài Phát thanh - Truyền hình tỉnh, Văn phòng UBND tỉnh, "
            "Văn phòng Đoàn ĐBQH và HĐND tỉnh, Sở Tài chính, Sở Kế hoạch và Đầu tư, "
            "Sở Giáo dục và Đào tạo, Sở Y tế, Sở Nội vụ, Sở Tư pháp, "
            "Sở Nông nghiệp và Phát triển nông thôn, Sở Giao thông vận tải, Sở Xây dựng, "
            "Sở Công Thương, Sở Tài nguyên và Môi trường, Sở Lao động - Thương binh và Xã hội, "
            "Sở Văn hóa - Thể thao và Du lịch, Sở Thông tin và Truyền thông, "
            "Sở Khoa học và Công nghệ, Thanh tra tỉnh, Ban Dân tộc tỉnh, Trường Chính trị tỉnh, "
            "Ủy ban MTTQ tỉnh, Tỉnh đoàn, Hội Liên hiệp Phụ nữ tỉnh, Hội Nông dân tỉnh, "
            "Liên đoàn Lao động tỉnh, Bệnh viện Đa khoa tỉnh, Trường Cao đẳng Bắc Kạn, "
            "Kho bạc Nhà nước tỉnh, Cục Thuế tỉnh"
        ),
    ),
    _Committee(
        code="BK.DN",
        name="Đảng bộ Khối doanh nghiệp tỉnh",
        cells=10,
        mix=_MIX_TOWN,
        offices=_split(
            "Công ty Điện lực Bắc Kạn, Viễn thông Bắc Kạn, Bưu điện tỉnh, "
            "Ngân hàng Nông nghiệp chi nhánh Bắc Kạn, Ngân hàng Chính sách xã hội tỉnh, "
            "Ngân hàng Đầu tư và Phát triển chi nhánh Bắc Kạn, "
            "Ngân hàng Công thương chi nhánh Bắc Kạn, Công ty Cổ phần Cấp thoát nước Bắc Kạn, "
            "Công ty TNHH MTV Lâm nghiệp Bắc Kạn, Công ty Cổ phần Khoáng sản Bắc Kạn, "
            "Công ty Cổ phần Vận tải Bắc Kạn, Công ty Xổ số kiến thiết Bắc Kạn"
        ),
    ),
    _Committee(
        code="BK.QS",
        name="Đảng bộ Quân sự tỉnh",
        cells=10,
        mix=_MIX_TOWN,
        offices=_split(
            "Ban Tham mưu, Phòng Chính trị, Phòng Hậu cần, Phòng Kỹ thuật, Đại đội Bộ binh 1, "
            "Đại đội Bộ binh 2, Đại đội Trinh sát, Đại đội Thông tin, Trường Quân sự tỉnh, "
            "Trung đội Dân quân thường trực"
        ),
    ),
)

# Tày place names are mostly two syllables: a landform word and a proper part.
_VILLAGE_HEADS = _words("Nà Bản Khuổi Pác Cốc Phiêng Lủng Bó Pò Thôm Đon Nặm Khau Kéo")
_VILLAGE_TAILS = _words(
    "Pài Cà Chiêng Luông Mò Ngòi Cám Tộc Làng Châm Bốc Dường Hin Vọt Lạ Tuấn Pẻn Lẹng Khí "
    "Pảng Phát Kha Lếch Ngằn Quang Khảo Mòn Mặn Nghịu Phầy Cuôn Mu Tát Vài Mạ Nưa Slam Roòng "
    "Thàn"
)
_VILLAGES = (
    *(f"{h} {t}" for h in _VILLAGE_HEADS for t in _VILLAGE_TAILS),
    *_split("Đồng Tâm, Tân Thành, Quyết Tiến, Thanh Sơn, Bình Minh, Tổng Nẻng, Tân Lập"),
)
# Weight of a cell's size by what it is: a village cell is the yardstick.
_W_VILLAGE, _W_SCHOOL, _W_HEALTH, _W_OFFICE, _W_COMMUNE = 1.0, 0.7, 0.5, 1.2, 1.0


@dataclass(frozen=True, slots=True)
class _Group:
    """Naming habits of one ethnic group."""

    families: tuple[tuple[str, ...], tuple[float, ...]]
    middle_m: tuple[tuple[str, ...], tuple[float, ...]]
    middle_f: tuple[tuple[str, ...], tuple[float, ...]]
    given_m: tuple[str, ...]
    given_f: tuple[str, ...]
    female_share: float


def _weighted(spec: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """'Hoàng:14, Nông:12' -> names and cumulative weights, ready for `Random.choices`."""
    names: list[str] = []
    cum: list[float] = []
    total = 0.0
    for item in _split(spec):
        name, weight = item.rsplit(":", 1)
        total += float(weight)
        names.append(name)
        cum.append(total)
    return tuple(names), tuple(cum)


_TAY_NUNG_M = _weighted(
    "Văn:70, Đức:5, Minh:4, Quang:4, Xuân:3, Thanh:4, Hữu:3, Ngọc:2, Công:2, Đình:3"
)
_TAY_NUNG_F = _weighted(
    "Thị:68, Thị Thu:5, Thị Thanh:5, Thị Kim:3, Thị Hồng:3, Thị Lan:2, Thu:4, Thanh:3, "
    "Minh:2, Ngọc:3, Thị Minh:2"
)
_TAY_NUNG_GIVEN_M = _words(
    "Lưu Kiện Điền Thắng Hùng Dũng Tuấn Thành Quân Bình Sơn Hải Chiến Nam Toàn Tiến Hòa Thạch "
    "Khánh Cường Lợi Lịch Đông Tâm Thái Huấn Tài Chung Phong Lâm Thuận Quyết Hưng Nghĩa Pịn "
    "Slấy Thiêm Vằn"
)
_TAY_NUNG_GIVEN_F = _words(
    "Hương Lan Mai Hoa Thảo Huyền Nga Hằng Liên Phượng Yến Hạnh Thúy Dung Nhung Tuyết Vân "
    "Thơm Ngần Nhàn Dịu Mến Ngoan Duyên Sen Hiền Thủy Lụa Chuyên Bích"
)

# Order matches the _MIX_* tuples: Tày, Nùng, Dao, Kinh, Mông.
_GROUPS: tuple[_Group, ...] = (
    _Group(
        families=_weighted(
            "Hoàng:14, Nông:12, Lộc:6, Ma:7, Hà:7, Triệu:5, Lục:3, Đồng:4, Bế:4, Lường:2, "
            "Hứa:3, Lành:2, La:3, Lưu:3, Dương:4, Nguyễn:5, Tô:2, Vi:2, Đàm:2, Mạc:1, Quan:1"
        ),
        middle_m=_TAY_NUNG_M,
        middle_f=_TAY_NUNG_F,
        given_m=_TAY_NUNG_GIVEN_M,
        given_f=_TAY_NUNG_GIVEN_F,
        female_share=0.42,
    ),
    _Group(
        families=_weighted(
            "Lý:6, Nông:8, Hoàng:8, Lăng:3, Mông:2, Vi:3, Lương:3, Chu:2, Mã:2, Sầm:1"
        ),
        middle_m=_TAY_NUNG_M,
        middle_f=_TAY_NUNG_F,
        given_m=_TAY_NUNG_GIVEN_M,
        given_f=_TAY_NUNG_GIVEN_F,
        female_share=0.40,
    ),
    _Group(
        families=_weighted("Bàn:10, Triệu:10, Đặng:8, Lý:6, Phùng:4, Hoàng:3, Chìu:1"),
        middle_m=_weighted("Văn:55, Tài:10, Phúc:6, Quý:5, Kim:4, Tiến:5, Đức:3, Hữu:3"),
        middle_f=_weighted("Thị:80, Thị Mai:4, Thị Kim:4, Kim:4, Thị Thu:3, Thị Hồng:3"),
        given_m=_words(
            "Tòn Chàn Quẩy Phin Sinh Lở Nhất Phẩu Kiêm Chăn Sần Lâm Tiến Quyết Sơn Thành Vần "
            "Phú Thắng Vinh Trường Minh Hòa Lợi"
        ),
        given_f=_words(
            "Mây Múi Lìn Nải Sâm Mùi Mai Hoa Thu Liên Dung Phấy Phương Hiền Xuân Lan Nguyệt Thoa"
        ),
        female_share=0.35,
    ),
    _Group(
        families=_weighted(
            "Nguyễn:30, Trần:10, Lê:8, Phạm:6, Vũ:4, Đỗ:3, Hoàng:4, Phan:2, Bùi:3, Đinh:2, "
            "Ngô:2, Dương:2, Đào:2"
        ),
        middle_m=_weighted(
            "Văn:35, Đức:10, Quang:7, Minh:8, Hữu:6, Ngọc:4, Xuân:4, Mạnh:4, Trọng:4, "
            "Thanh:5, Tiến:4, Công:4"
        ),
        middle_f=_weighted(
            "Thị:45, Thị Thu:8, Thị Thanh:7, Thị Minh:5, Thu:6, Thanh:5, Ngọc:5, Minh:3, "
            "Thị Hồng:6, Thị Kim:5, Phương:3"
        ),
        given_m=_words(
            "Anh Bình Cường Dũng Đức Giang Hải Hiếu Hoàng Hùng Huy Khánh Long Minh Nam Phong "
            "Quang Quân Sơn Thắng Thành Trung Tuấn Việt Vinh Hiệp Tùng Kiên"
        ),
        given_f=_words(
            "Anh Hà Hạnh Hằng Hoa Hồng Huyền Hương Lan Linh Loan Mai Nga Ngọc Nhung Phương "
            "Quỳnh Thảo Thủy Trang Tuyết Vân Yến Dung Liên Ly Oanh Thúy"
        ),
        female_share=0.45,
    ),
    _Group(
        families=_weighted("Giàng:6, Vàng:5, Sùng:4, Lý:4, Hầu:2, Thào:2, Mùa:1"),
        middle_m=_weighted("A:40, Seo:20, Văn:30, Mí:10"),
        middle_f=_weighted("Thị:100"),
        given_m=_words("Páo Chứ Dìa Sình Lử Chính Pó Sử Dơ Tủa Chả Lềnh"),
        given_f=_words("Mỷ Dợ Sua Chá Mai Lan Dính Pà Sy Mua"),
        female_share=0.30,
    ),
)


def _spread(rng: random.Random, total: int, weights: list[float]) -> list[int]:
    """Split `total` over cells in proportion to `weights`, each cell within 20..150.

    The bounds widen only when `total` cannot fit them (a tiny or huge demo); the
    leftover of integer rounding goes to the heaviest cells that still have room.
    """
    n = len(weights)
    if n == 0:
        return []
    lo = min(_CELL_MIN, total // n)
    hi = max(_CELL_MAX, -(-total // n))
    weights = [w * rng.lognormvariate(0.0, 0.6) for w in weights]
    sizes = [lo] * n
    left = total - lo * n
    open_ = list(range(n))
    while left > 0:
        wsum = sum(weights[i] for i in open_)
        given = 0
        still_open = []
        for i in open_:
            add = min(int(left * weights[i] / wsum), hi - sizes[i], left - given)
            sizes[i] += add
            given += add
            if sizes[i] < hi:
                still_open.append(i)
        if given == 0:  # every share rounded down: fewer units left than open cells
            for i in sorted(still_open, key=lambda i: -weights[i])[:left]:
                sizes[i] += 1
            break
        left -= given
        open_ = still_open
    return sizes


def _commune_cells(rng: random.Random, place: str, count: int) -> list[tuple[str, float]]:
    """Cells of one commune: villages (or street groups in towns), a school, a health station."""
    kind, _, bare = place.partition(" ")
    if kind == "thị":  # "thị trấn X"
        bare = bare.partition(" ")[2]
    extras = [
        (f"Trạm Y tế {place}", _W_HEALTH),
        (f"Trường Tiểu học {bare}", _W_SCHOOL),
        (f"Trường PTDTBT THCS {bare}" if kind == "xã" else f"Trường THCS {bare}", _W_SCHOOL),
        (f"Trường Mầm non {bare}", _W_SCHOOL),
    ]
    picked = rng.sample(extras, min(len(extras), count // 3))
    villages = count - len(picked)
    if kind == "xã":
        homes = [f"thôn {v}, {place}" for v in rng.sample(_VILLAGES, villages)]
    else:
        numbers = sorted(rng.sample(range(1, 3 * villages + 6), villages))
        homes = [f"tổ dân phố {k}, {place}" for k in numbers]
    return [(name, _W_VILLAGE) for name in homes] + picked


def _committee_cells(rng: random.Random, c: _Committee) -> list[tuple[str, float]]:
    """Names (without "Chi bộ ") and size weights of one committee's cells, in code order."""
    if not c.communes:  # agency committees: a choice of their offices, in list order
        chosen = sorted(rng.sample(range(len(c.offices)), c.cells))
        return [(c.offices[i], _W_OFFICE) for i in chosen]
    offices = list(c.offices)
    if c.code not in ("BK.TP", "BK.BT"):
        offices = [*_DISTRICT_OFFICES[:2], *rng.sample(_DISTRICT_OFFICES[2:], 5), *offices]
    short = c.place.removeprefix("huyện ").removeprefix("thành phố ")
    cells = [(o.format(h=c.place, n=short), _W_OFFICE) for o in offices]
    if c.code == "BK.BT":  # the article's district: one cell per commune plus two offices
        return cells + [(p, _W_COMMUNE) for p in c.communes]
    per_commune = [0] * len(c.communes)
    order = rng.sample(range(len(c.communes)), len(c.communes))
    for k in range(c.cells - len(offices)):
        per_commune[order[k % len(order)]] += 1
    for place, count in zip(c.communes, per_commune, strict=True):
        cells += _commune_cells(rng, place, count)
    return cells


def _full_name(rng: random.Random, group: _Group) -> str:
    if rng.random() < group.female_share:
        middle, given = group.middle_f, group.given_f
    else:
        middle, given = group.middle_m, group.given_m
    family = rng.choices(group.families[0], cum_weights=group.families[1])[0]
    middle_name = rng.choices(middle[0], cum_weights=middle[1])[0]
    return f"{family} {middle_name} {rng.choice(given)}"


def build_province(
    seed: int = 2017, members: int = _DEFAULT_MEMBERS
) -> tuple[list[Unit], list[Member]]:
    """The demo province: units (parents before children) and `members` members in its cells.

    Cells hold 20-150 members each (bounds widen only when `members` cannot fit them); card
    numbers are unique 8-digit strings. The same seed always gives the same province.
    """
    if members < 0:
        raise ValueError("members must not be negative")
    rng = random.Random(seed)
    units = [_ROOT]
    cells: list[tuple[Unit, float, _Committee]] = []
    for c in _COMMITTEES:
        units.append(Unit(c.code, c.name, _ROOT.code))
        for number, (name, weight) in enumerate(_committee_cells(rng, c), start=1):
            cells.append((Unit(f"{c.code}.{number:03d}", f"Chi bộ {name}", c.code), weight, c))
    units.extend(cell for cell, _, _ in cells)

    bt = [i for i, (_, _, c) in enumerate(cells) if c.code == "BK.BT"]
    rest = [i for i, (_, _, c) in enumerate(cells) if c.code != "BK.BT"]
    bt_total = round(members * _BT_MEMBERS / _DEFAULT_MEMBERS)
    sizes = [0] * len(cells)
    for idx, total in ((bt, bt_total), (rest, members - bt_total)):
        for i, size in zip(idx, _spread(rng, total, [cells[i][1] for i in idx]), strict=True):
            sizes[i] = size

    cards = rng.sample(range(_CARD_FIRST, _CARD_END), members)
    people: list[Member] = []
    for (cell, _, committee), size in zip(cells, sizes, strict=True):
        groups = rng.choices(_GROUPS, weights=committee.mix, k=size)
        for group in groups:
            people.append(Member(str(cards[len(people)]), _full_name(rng, group), cell.code))
    return units, people


# Committees whose members mostly study on their own: remote communes, shift workers.
_SELF_STUDY = ("BK.NS", "BK.PN", "BK.DN")


def demo_sites(units: list[Unit], rng_seed: int = 2017) -> list[dict[str, Any]]:
    """About 36 viewing points of one session, in all four forms, as site registration bodies.

    One hall, a bridge point per district, three broadcast points per district (two at
    communes, one at a village cultural house) and three self-study entries. Only committees
    and cells present in `units` are used, so a trimmed roster still gives valid sites.
    """
    rng = random.Random(rng_seed)
    present = {u.code for u in units}
    children: dict[str, list[Unit]] = {}
    for u in units:
        if u.parent is not None:
            children.setdefault(u.parent, []).append(u)

    sites = [_site("Hội trường Tỉnh ủy", "hall", None, 500)]
    districts = [c for c in _COMMITTEES if c.communes and c.code in present]
    for c in districts:
        sites.append(_site(f"Điểm cầu {c.place}", "bridge", c.code, rng.randrange(80, 301, 20)))
    for c in districts:
        cells = children.get(c.code, [])
        for n, place in enumerate(rng.sample(c.communes, 3)):
            # Cell names are built above as "Chi bộ <place>" or "Chi bộ thôn X, <place>".
            commune_cell = [u for u in cells if u.name == f"Chi bộ {place}"]
            villages = [u for u in cells if u.name.endswith(f", {place}")]
            if n == 2 and villages:
                cell = rng.choice(villages)
                name, unit = f"Nhà văn hóa {cell.name.removeprefix('Chi bộ ')}", cell.code
            else:
                name = f"Điểm xem truyền hình {place}"
                unit = commune_cell[0].code if commune_cell else c.code
            sites.append(_site(name, "broadcast", unit, rng.randrange(50, 201, 10)))
    for c in _COMMITTEES:
        if c.code in _SELF_STUDY and c.code in present:
            sites.append(_site(f"Tự nghiên cứu – {c.name}", "self_study", c.code, None))
    return sites


def _site(name: str, kind: str, unit: str | None, capacity: int | None) -> dict[str, Any]:
    return {"name": name, "kind": kind, "unit": unit, "capacity": capacity}


def demo_session_title() -> str:
    """The resolution the article's province studied online in 2017."""
    return "Học tập, quán triệt Nghị quyết Trung ương 6 khóa XII"
