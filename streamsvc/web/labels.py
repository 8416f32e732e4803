"""Every label the web pages show, in Vietnamese, their users' language: the one place to edit.

Pages get them as JSON embedded in the HTML (`pages.render`), so no page carries its own
strings and there is no extra request for them. Keys are English, grouped by page.
"""

from __future__ import annotations

__all__ = ["LABELS"]

LABELS: dict[str, dict[str, str]] = {
    "common": {
        "app_name": "Điểm danh học tập nghị quyết",
        "connected": "Đã kết nối",
        "disconnected": "Mất kết nối",
        "reconnecting": "Đang kết nối lại…",
        "loading": "Đang tải…",
        "error": "Lỗi",
        "kind_hall": "Hội trường",
        "kind_bridge": "Điểm cầu truyền hình",
        "kind_broadcast": "Điểm xem truyền hình",
        "kind_self_study": "Tự học",
    },
    # The organizer's pages (index.html, session.html).
    "organizer": {},
    # The coordinator's check-in page (checkin.html).
    "checkin": {},
}
