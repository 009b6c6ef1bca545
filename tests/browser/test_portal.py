"""The notice's portal end to end: a real browser, the widget, real calls with sipp."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import DID, PortalRun, add_holder
from tests.conftest import Call

HOLDER, PASSWORD, PHONE = "K7M2PA3B", "Tk7mW3pZ2x", "09012345678"


async def test_holder_logs_in_calls_and_the_page_moves_on(start_portal: Any, call: Call) -> None:
    p: PortalRun = await start_portal()
    add_holder(p.db, HOLDER, PASSWORD, "+819012345678")
    b = p.browser
    await b.open("/login")
    await b.wait("h1", "ログイン")
    await b.shot("01-login")
    await b.login(HOLDER, PASSWORD)
    dial = await b.wait("[data-ivr=dial]", "03-")
    assert dial == "03-5555-0001"
    assert "090-****-5678" in await b.wait(".ivrw-instr", "090")
    assert "有効期限まで" in await b.wait("[data-ivr=countdown]", "あと")
    assert await b.wait("[data-ivr=status]", "お待ち")
    page = await b.source()
    assert 'href="tel:+81355550001"' in page
    assert "test-token-portal-a" not in page  # the page holds the client token only
    assert "ct1." in page
    await b.shot("02-widget")
    result = await call(dial.replace("-", ""), caller=PHONE)
    assert result.answered
    await b.wait_path("/home")
    assert await b.wait("p.ok", "本人認証が完了")
    await b.shot("03-home")
    vid = p.db.conn.execute("SELECT verification_id FROM logins ORDER BY rowid").fetchone()[0]
    assert p.db.login(vid)[2:] in (("verified", "callback"), ("verified", "poll"))
    assert (await p.gateway.get(vid))["status"] == "verified"


async def test_another_phone_and_a_withheld_call_show_guidance(
    start_portal: Any, call: Call
) -> None:
    p: PortalRun = await start_portal()
    add_holder(p.db, HOLDER, PASSWORD, "+819012345678")
    b = p.browser
    await b.login(HOLDER, PASSWORD)
    await b.wait("[data-ivr=dial]", "03-")
    await call(DID, caller="08011112222")
    text = await b.wait("[data-ivr-hint=other_number]", "異なる電話番号")
    assert "090-****-5678" in text
    assert await b.path() == "/login/verify"
    assert "お待ち" in await b.wait("[data-ivr=status]")
    await call(DID, anonymous=True)
    text = await b.wait("[data-ivr-hint=withheld]", "186")
    assert "186-03-5555-0001" in text
    await b.shot("04-withheld-186")
    await b.click(".ivrw-lang")  # English is there too
    assert "Dial 186" in await b.wait("[data-ivr-hint=withheld]", "186")
    await b.shot("05-withheld-186-en")
    # The right phone still verifies after both.
    await call(DID, caller=PHONE)
    await b.wait_path("/home")


async def test_expiry_offers_a_retry(start_portal: Any) -> None:
    p: PortalRun = await start_portal(ttl_seconds=3)
    add_holder(p.db, HOLDER, PASSWORD, "+819012345678")
    b = p.browser
    await b.login(HOLDER, PASSWORD)
    await b.wait("[data-ivr=dial]", "03-")
    first = p.db.conn.execute("SELECT verification_id FROM logins ORDER BY rowid").fetchone()[0]
    await b.wait("[data-ivr-state=expired] [data-ivr=status]", "有効期限が切れました", timeout=15)
    await b.wait("[data-ivr=retry]", "もう一度")
    await b.shot("06-expired")
    await b.click("[data-ivr=retry]")
    await b.wait("[data-ivr=status]", "お待ち")
    ids = [r[0] for r in p.db.conn.execute("SELECT verification_id FROM logins ORDER BY rowid")]
    assert len(ids) == 2 and ids[0] == first
    assert (await p.gateway.get(first))["status"] == "expired"


async def test_five_wrong_passwords_lock_until_the_unlock_procedure(start_portal: Any) -> None:
    p: PortalRun = await start_portal()
    add_holder(p.db, HOLDER, PASSWORD, "+819012345678")
    b = p.browser
    for _ in range(4):
        await b.login(HOLDER, "Wrong1234x")
        await b.wait(".err", "正しくありません")
    await b.login(HOLDER, "Wrong1234x")
    await b.wait(".err", "ロックされています")
    await b.login(HOLDER, PASSWORD)  # the right one no longer opens it
    await b.wait(".err", "ロックされています")
    await b.shot("07-locked")
    await b.open("/unlock")
    await b.fill("login_id", HOLDER)
    await b._run(
        lambda: b.d.execute_script("document.getElementById('birth_date').value='1985-02-03'")
    )
    await b.click("#unlock")
    text = await b.wait(".ok", "ロックを解除しました")
    new_password = text.split(": ")[1].split()[0]
    assert not set(new_password) & set("lOoq")
    await b.login(HOLDER, new_password)
    await b.wait("[data-ivr=dial]", "03-")


async def test_050_is_refused_and_a_new_number_counts_from_tomorrow(
    start_portal: Any, call: Call
) -> None:
    p: PortalRun = await start_portal()
    add_holder(p.db, "Z9C3HJ6E", PASSWORD, None)  # nothing registered yet
    b = p.browser
    await b.login("Z9C3HJ6E", PASSWORD)
    await b.wait_path("/contracts/phone")
    await b.wait(".err", "ご利用できません")
    await b.open("/home")  # nothing else is open to this holder
    await b.wait_path("/contracts/phone")
    await b.fill("phone", "050-1234-5678")
    await b.click("#register")
    refused = await b.wait(".err", "050")
    assert "050から始まるIP電話の番号は本人認証にご利用いただけません" in refused
    await b.shot("08-register-050")
    await b.fill("phone", "090-5555-6666")
    await b.click("#register")
    tomorrow = p.today().toordinal() + 1
    note = await b.wait(".ok", "反映されます")
    assert str(p.today().fromordinal(tomorrow)) in note
    await b.shot("09-register-next-day")
    # Today it does not count yet: still nothing but registration.
    await b.login("Z9C3HJ6E", PASSWORD)
    await b.wait_path("/contracts/phone")
    p.next_day()
    await b.login("Z9C3HJ6E", PASSWORD)
    assert "090-****-6666" in await b.wait(".ivrw-instr", "090")
    await call(DID, caller="09055556666")
    await b.wait_path("/home")


async def test_a_number_changed_today_is_used_from_tomorrow(start_portal: Any, call: Call) -> None:
    p: PortalRun = await start_portal()
    add_holder(p.db, HOLDER, PASSWORD, "+819012345678")
    b = p.browser
    await b.login(HOLDER, PASSWORD)
    await b.wait("[data-ivr=dial]", "03-")
    await call(DID, caller=PHONE)
    await b.wait_path("/home")
    await b.open("/contracts/phone")
    await b.fill("phone", "080-7777-8888")
    await b.click("#register")
    await b.wait(".ok", "反映されます")
    assert "090-1234-5678" in await b.wait("#current-number", "090")
    await b.click("header button")  # log out
    await b.wait_path("/login")
    # Same day: the old number still counts, the new one does not verify.
    await b.login(HOLDER, PASSWORD)
    assert "090-****-5678" in await b.wait(".ivrw-instr", "090")
    await call(DID, caller="08077778888")
    await b.wait("[data-ivr-hint=other_number]", "異なる")
    assert await b.path() == "/login/verify"
    p.next_day()
    await b.login(HOLDER, PASSWORD)
    assert "080-****-8888" in await b.wait(".ivrw-instr", "080")
    await call(DID, caller="08077778888")
    await b.wait_path("/home")


async def test_the_insured_number_counts_when_the_holder_is_the_insured(
    start_portal: Any,
) -> None:
    p: PortalRun = await start_portal()
    add_holder(p.db, "R4TN8WX5", PASSWORD, "+81312345678", insured=True)
    # A policy-holder entry exists too, but for this contract the insured's field counts.
    p.db.add_phone("R4TN8WX5", "policy_holder", "+819099990000", p.today())
    b = p.browser
    await b.login("R4TN8WX5", PASSWORD)
    assert "03-****-5678" in await b.wait(".ivrw-instr", "03-")
