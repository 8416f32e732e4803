"""`streamsvc serve --demo`, the README's first command: a newcomer sees live counts move."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from serverproc import ServerProcess, eventually

pytestmark = pytest.mark.slow


async def test_the_demo_fills_a_province_and_its_simulated_sites_check_members_in(tmp_path: Path):
    server = ServerProcess(f"sqlite:///{tmp_path / 'demo.db'}", tmp_path / "server.log",
                           extra_args=("--demo",))  # fmt: skip
    await server.start()
    try:
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"{server.url}/api/v1/sessions") as r:
                (session,) = (await r.json())["sessions"]
            assert session["expected"] == 37_000 and session["state"] == "open"
            live: dict = {}

            async def checking_in() -> bool:
                nonlocal live
                async with http.get(f"{server.url}/api/v1/sessions/{session['id']}/live") as r:
                    live = await r.json()
                return live["present"] > 0 and sum(s["connected"] for s in live["sites"]) > 1

            # the simulated coordinators start within seconds
            await eventually(checking_in, 60, "simulated check-ins from connected sites")
            kinds = {site["kind"] for site in live["sites"]}
            assert live["present"] > 0, "no simulated check-in arrived"
            assert kinds == {"hall", "bridge", "broadcast", "self_study"}
            silent = [s for s in live["sites"] if not s["connected"]]
            assert len(silent) >= 1  # one demo site stays silent, so the dashboard shows one
            async with http.get(f"{server.url}/sessions/{session['id']}") as r:
                assert r.status == 200 and "text/html" in r.headers["Content-Type"]

        # a newcomer signs in as the district viewer the banner names: one district's share
        banner = (tmp_path / "server.log").read_text()
        assert "district-viewer / demo-district-viewer" in banner
        async with aiohttp.ClientSession() as anonymous:
            body = {"login": "district-viewer", "password": "demo-district-viewer"}
            async with anonymous.post(f"{server.url}/api/v1/auth/login", json=body) as r:
                assert r.status == 200, await r.text()
                signed_in = await r.json()
            assert signed_in["user"]["unit"] == "BK.CD"
            viewer = {"Authorization": f"Bearer {signed_in['token']}"}
            async with anonymous.get(f"{server.url}/api/v1/sessions", headers=viewer) as r:
                (seen,) = (await r.json())["sessions"]
            assert seen["id"] == session["id"]
            live_url = f"{server.url}/api/v1/sessions/{session['id']}/live"
            async with anonymous.get(live_url, headers=viewer) as r:
                district = await r.json()
            assert 0 < district["expected"] < 37_000
            codes = [u["code"] for u in district["units"]]
            assert "BK.CD" in codes and all(c.split(".")[:2] == ["BK", "CD"] for c in codes)
    finally:
        server.stop()
    assert "Dashboard:" in (tmp_path / "server.log").read_text()
