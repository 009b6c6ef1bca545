"""The reference portal's routes (aiohttp, server-rendered).

The login story of the notice: ID and password (lockout after five wrong ones), then a
verification created on the gateway for the number that counts today, the widget, and
the login completes when the portal's server has seen the verification verified: by the
signed callback (Standard Webhooks) or by asking the gateway. A holder without an
eligible number can only register one, and a new number counts from the next day.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

import aiohttp
from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from examples.portal import pages, rules
from examples.portal.db import Db, Session
from examples.portal.pages import hidden_csrf, message, national, page, t

COOKIE = "portal_sid"


@dataclass
class Config:
    gateway: str  # the gateway as this server reaches it
    gateway_public: str  # the gateway as browsers reach it (the widget's host)
    token: str  # the portal's API token: server side only
    callback_secret: str  # whsec_...
    callback_url: str
    clock_control: bool = False  # lets tests move the date (never in production)
    ttl_seconds: int | None = None  # None: the gateway's default


@dataclass
class Clock:
    offset: timedelta = field(default_factory=timedelta)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


DB = web.AppKey("db", Db)
CONFIG = web.AppKey("config", Config)
CLOCK = web.AppKey("clock", Clock)
HTTP = web.AppKey("http", aiohttp.ClientSession)
TOKENS = web.AppKey("tokens", dict)  # verification id -> its client token, for the page


# -- the gateway, server to server -------------------------------------------------------


async def gateway(request: web.Request, method: str, path: str, body: Any = None) -> Any:
    cfg = request.app[CONFIG]
    async with request.app[HTTP].request(
        method, cfg.gateway + path, json=body, headers={"Authorization": f"Bearer {cfg.token}"}
    ) as resp:
        data = await resp.json()
        if resp.status >= 400:
            raise web.HTTPBadGateway(text=f"gateway said {resp.status}: {data}")
        return data


# -- sessions ---------------------------------------------------------------------------


def current(request: web.Request, *stages: str) -> Session:
    sid = request.cookies.get(COOKIE, "")
    s = request.app[DB].session(sid) if sid else None
    if s is None or (stages and s.stage not in stages):
        if s is not None and s.stage == "register_only":
            raise web.HTTPSeeOther("/contracts/phone")
        raise web.HTTPSeeOther("/login")
    return s


async def form(request: web.Request, s: Session | None = None) -> dict[str, str]:
    data = {k: str(v) for k, v in (await request.post()).items()}
    if s is not None and not secrets.compare_digest(data.get("csrf", ""), s.csrf):
        raise web.HTTPForbidden(text="bad CSRF token")
    return data


def html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def start_session(request: web.Request, login_id: str, stage: str, to: str) -> web.Response:
    s = request.app[DB].new_session(login_id, stage)
    resp = web.HTTPSeeOther(to)
    resp.set_cookie(COOKIE, s.id, httponly=True, samesite="Lax", path="/")
    raise resp


# -- login -------------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    return html(pages.login_form())


async def login(request: web.Request) -> web.Response:
    db = request.app[DB]
    data = await form(request)
    login_id = data.get("login_id", "").strip()
    holder = db.holder(login_id)
    refused = message(
        "err", "ログインIDまたはパスワードが正しくありません。", "Wrong login ID or password."
    )
    if holder is None:
        return html(pages.login_form(refused), 401)
    ok = rules.password_matches(data.get("password", ""), holder.password_hash)
    attempt = rules.after_attempt(ok, holder.failures, holder.locked)
    db.set_attempt(login_id, attempt.failures, attempt.locked)
    if attempt.locked:
        locked = message(
            "err",
            "パスワードを5回連続して間違えたため、ロックされています。ロック解除の手続きを行ってください。",
            "The account is locked after five wrong passwords. Use the unlock procedure.",
        )
        return html(pages.login_form(locked), 423)
    if not attempt.ok:
        return html(pages.login_form(refused), 401)
    today = rules.today(request.app[CLOCK].now())
    number = rules.auth_number(db.phones(login_id), holder.holder_is_insured, today)
    if number is None:
        # No number that can authenticate: registering one is all this holder can do.
        return start_session(request, login_id, "register_only", "/contracts/phone")
    return start_session(request, login_id, "password_ok", "/login/retry")


async def new_verification(request: web.Request) -> web.Response:
    """Each login (and each retry) gets its own verification on the gateway."""
    s = current(request, "password_ok")
    db = request.app[DB]
    holder = db.holder(s.login_id)
    assert holder is not None
    today = rules.today(request.app[CLOCK].now())
    number = rules.auth_number(db.phones(s.login_id), holder.holder_is_insured, today)
    if number is None:
        raise web.HTTPSeeOther("/contracts/phone")
    v = await gateway(
        request,
        "POST",
        "/v1/verifications",
        {
            "phone_number": number,
            "reference": f"login:{s.login_id}",
            "callback_url": request.app[CONFIG].callback_url,
            "ttl_seconds": request.app[CONFIG].ttl_seconds,
        },
    )
    db.add_login(v["id"], s.login_id, v["phone_number"])
    s.verification_id = v["id"]
    db.update_session(s)
    request.app[TOKENS][v["id"]] = v["client_token"]
    raise web.HTTPSeeOther("/login/verify")


async def verify_page(request: web.Request) -> web.Response:
    s = current(request, "password_ok")
    if s.verification_id is None:
        raise web.HTTPSeeOther("/login/retry")
    token = request.app[TOKENS].get(s.verification_id)
    if token is None:  # the portal restarted: the gateway hands the token out again
        v = await gateway(request, "GET", f"/v1/verifications/{s.verification_id}")
        token = request.app[TOKENS][s.verification_id] = v["client_token"]
    holder = request.app[DB].holder(s.login_id)
    name = holder.name if holder else ""
    cfg = request.app[CONFIG]
    return html(pages.verify_page(cfg.gateway_public, s.verification_id, token, s.csrf, name))


async def complete(request: web.Request) -> web.Response:
    """The widget says "verified"; the server believes only the callback or the gateway."""
    s = current(request, "password_ok")
    db = request.app[DB]
    login = db.login(s.verification_id or "")
    if login is None:
        raise web.HTTPSeeOther("/login")
    login_id, phone, status, _ = login
    if status != "verified":
        v = await gateway(request, "GET", f"/v1/verifications/{s.verification_id}")
        if v["status"] == "verified" and v["phone_number"] == phone:
            db.settle_login(v["id"], "verified", "poll")
            status = "verified"
    if status != "verified" or login_id != s.login_id:
        raise web.HTTPSeeOther("/login/verify")
    s.stage = "in"
    db.update_session(s)
    holder = db.holder(s.login_id)
    raise web.HTTPSeeOther("/password" if holder and holder.must_change_password else "/home")


async def callback(request: web.Request) -> web.Response:
    """The gateway's signed callback: verified with the Standard Webhooks library."""
    body = await request.read()
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        event = Webhook(request.app[CONFIG].callback_secret).verify(body, headers)
    except WebhookVerificationError:
        return web.Response(status=401, text="bad signature")
    db = request.app[DB]
    if not db.first_delivery(headers["webhook-id"]):
        return web.Response(status=204)  # at least once: a repeat changes nothing
    data = event["data"]
    login = db.login(data["id"])
    if login is not None and data["status"] == "verified" and data["phone_number"] == login[1]:
        db.settle_login(data["id"], "verified", "callback")
    elif login is not None and data["status"] in ("expired", "cancelled"):
        db.settle_login(data["id"], data["status"], "callback")
    return web.Response(status=204)


async def logout(request: web.Request) -> web.Response:
    s = current(request)
    await form(request, s)
    request.app[DB].end_session(s.id)
    resp = web.HTTPSeeOther("/login")
    resp.del_cookie(COOKIE, path="/")
    raise resp


# -- inside -------------------------------------------------------------------------------


async def home(request: web.Request) -> web.Response:
    s = current(request, "in")
    holder = request.app[DB].holder(s.login_id)
    assert holder is not None
    body = f"""{message("ok", "電話番号による本人認証が完了しました。", "Confirmed by phone.")}
<ul><li><a href="/contracts/phone">{t("ご契約一覧 (電話番号の登録・変更)", "Contracts (register or change the phone number)")}</a></li>
<li><a href="/password">{t("お客様情報 (パスワードの変更)", "Your details (change password)")}</a></li></ul>"""
    return html(page(("メニュー", "Menu"), body, csrf=s.csrf, user=holder.name))


def _phone_page(request: web.Request, s: Session, note: str = "") -> web.Response:
    db = request.app[DB]
    holder = db.holder(s.login_id)
    assert holder is not None
    today = rules.today(request.app[CLOCK].now())
    entries = db.phones(s.login_id)
    now_number = rules.auth_number(entries, holder.holder_is_insured, today)
    later = rules.pending_change(entries, holder.holder_is_insured, today)
    field_name = (
        t("被保険者 (保険契約者と同じ) の電話番号", "Insured's number (same as the policy holder)")
        if holder.holder_is_insured
        else t("保険契約者の電話番号", "Policy holder's number")
    )
    current_text = escape(national(now_number)) if now_number else t("未登録", "not registered")
    pending = ""
    if later is not None:
        pending = message(
            "ok",
            f"{national(later.e164)} への変更を受け付けました。{later.effective.isoformat()} 以降に反映されます。",
            f"The change to {national(later.e164)} applies from {later.effective.isoformat()}.",
        )
    must = ""
    if s.stage == "register_only":
        must = message(
            "err",
            "本人認証に利用できる電話番号が登録されていないため、「契約者さま専用ページ」をご利用できません。電話番号を登録してください。",
            "No phone number that can authenticate is registered: register one to use this site.",
        )
    body = f"""{must}{note}{pending}
<p>{field_name}<b id="current-number" style="font-size:1.2rem">{current_text}</b></p>
<form method="post" action="/contracts/phone">{hidden_csrf(s.csrf)}
<label for="phone">{t("新しい電話番号", "New phone number")}</label>
<input id="phone" name="phone" inputmode="tel" autocomplete="tel" required>
<p class="note">{
        t(
            "日本国内の電話番号で 090・080・070 から始まる携帯電話または固定電話（050・0120・0570 から始まる番号でないもの）。申し込みいただいた内容は、翌日以降に反映されます。",
            "A Japanese mobile (090, 080, 070) or fixed-line number; not 050, 0120 or 0570. A change applies from the next day.",
        )
    }</p>
<button id="register">変更を申し込む</button></form>"""
    return html(
        page(
            ("電話番号の登録・変更", "Register or change the phone number"),
            body,
            csrf=s.csrf,
            user=holder.name,
        )
    )


async def phone_page(request: web.Request) -> web.Response:
    return _phone_page(request, current(request, "in", "register_only"))


async def phone_change(request: web.Request) -> web.Response:
    s = current(request, "in", "register_only")
    data = await form(request, s)
    verdict = await gateway(
        request, "POST", "/v1/phone-numbers/check", {"phone_number": data.get("phone", "")}
    )
    if not verdict["eligible"]:
        msg = verdict.get("message") or {}
        note = message(
            "err",
            msg.get("ja", "この電話番号はご利用できません。"),
            msg.get("en", "This number cannot be used."),
        )
        return _phone_page(request, s, note)
    db = request.app[DB]
    holder = db.holder(s.login_id)
    assert holder is not None
    role = rules.counting_role(holder.holder_is_insured)
    db.add_phone(s.login_id, role, verdict["e164"], rules.effective_from(request.app[CLOCK].now()))
    raise web.HTTPSeeOther("/contracts/phone")


async def password_page(request: web.Request, note: str = "") -> web.Response:
    s = current(request, "in")
    holder = request.app[DB].holder(s.login_id)
    assert holder is not None
    first = ""
    if holder.must_change_password:
        first = message(
            "err",
            "初期パスワードでログインしました。任意のパスワードへ変更してください。",
            "You logged in with an initial password: please change it.",
        )
    body = f"""{first}{note}<form method="post" action="/password">{hidden_csrf(s.csrf)}
<label for="new_password">{t("新しいパスワード", "New password")}</label>
<input id="new_password" name="new_password" type="password" autocomplete="new-password" required>
<p class="note">{t("英字大文字、英字小文字、数字を混在させ、8～16文字。", "Upper case, lower case and digits, 8 to 16 characters.")}</p>
<button id="change">変更する</button></form>"""
    return html(page(("パスワードの変更", "Change password"), body, csrf=s.csrf, user=holder.name))


async def password_change(request: web.Request) -> web.Response:
    s = current(request, "in")
    data = await form(request, s)
    pw = data.get("new_password", "")
    problem = rules.password_problem(pw)
    if problem:
        return await password_page(request, message("err", *problem))
    request.app[DB].set_password(s.login_id, pw, must_change=False)
    return await password_page(
        request, message("ok", "パスワードを変更しました。", "Password changed.")
    )


async def unlock_page(request: web.Request, note: str = "") -> web.Response:
    body = f"""{note}<p>{
        t(
            "ログインIDと生年月日を入力してください。確認できると、ロックを解除し、新しい初期パスワードを発行します。",
            "Enter your login ID and date of birth: the lock is lifted and a new initial password issued.",
        )
    }</p>
<form method="post" action="/unlock">
<label for="login_id">{
        t("ログインID", "Login ID")
    }</label><input id="login_id" name="login_id" required>
<label for="birth_date">{
        t("生年月日 (西暦)", "Date of birth")
    }</label><input id="birth_date" name="birth_date" type="date" required>
<div><button id="unlock">ロックを解除する</button></div></form>"""
    return html(page(("ロック解除の手続き", "Unlock procedure"), body))


async def unlock(request: web.Request) -> web.Response:
    data = await form(request)
    db = request.app[DB]
    holder = db.holder(data.get("login_id", "").strip())
    if holder is None or holder.birth_date != data.get("birth_date"):
        return await unlock_page(
            request,
            message("err", "ご登録の内容と一致しません。", "That does not match our records."),
        )
    pw = rules.new_initial_password()
    db.set_password(holder.login_id, pw, must_change=True)
    # A real portal mails the new initial password to the registered address.
    note = message(
        "ok",
        f"ロックを解除しました。新しい初期パスワード (デモ表示): {pw}",
        f"Unlocked. New initial password (shown for the demo): {pw}",
    )
    return html(
        page(
            ("ロック解除の手続き", "Unlock procedure"),
            note + '<p><a href="/login">ログイン</a></p>',
        )
    )


async def move_clock(request: web.Request) -> web.Response:
    """Tests only (``--clock-control``): move the portal's date by ``days``."""
    data = await request.json()
    request.app[CLOCK].offset += timedelta(days=float(data["days"]))
    return web.json_response({"now": request.app[CLOCK].now().isoformat()})


async def root(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/home")


def make_app(db: Db, config: Config) -> web.Application:
    app = web.Application()
    app[DB] = db
    app[CONFIG] = config
    app[CLOCK] = Clock()
    app[TOKENS] = {}

    async def http_ctx(app: web.Application) -> Any:
        app[HTTP] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        yield
        await app[HTTP].close()

    app.cleanup_ctx.append(http_ctx)
    r = app.router
    r.add_get("/", root)
    r.add_get("/login", login_page)
    r.add_post("/login", login)
    r.add_get("/login/retry", new_verification)
    r.add_get("/login/verify", verify_page)
    r.add_get("/login/complete", complete)
    r.add_post("/callbacks/ivr", callback)
    r.add_post("/logout", logout)
    r.add_get("/home", home)
    r.add_get("/contracts/phone", phone_page)
    r.add_post("/contracts/phone", phone_change)
    r.add_get("/password", password_page)
    r.add_post("/password", password_change)
    r.add_get("/unlock", unlock_page)
    r.add_post("/unlock", unlock)
    if config.clock_control:
        r.add_post("/_test/clock", move_clock)
    return app
