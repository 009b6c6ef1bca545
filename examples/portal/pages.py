"""The portal's HTML: server-rendered, Japanese first with English beside it."""

from __future__ import annotations

import json
from html import escape

import phonenumbers

CSS = """
body{font:16px/1.7 system-ui,'Noto Sans CJK JP',sans-serif;margin:0;background:#f4f6f8;color:#1b1f23}
header{background:#0b3d6e;color:#fff;padding:.6rem 1.25rem}header b{font-size:1.1rem}
main{max-width:40rem;margin:1.5rem auto;background:#fff;padding:1.25rem 1.5rem;border-radius:8px}
h1{font-size:1.3rem;margin-top:0}.en{display:block;font-size:.8rem;color:#5a6570}
label{display:block;margin-top:.75rem;font-weight:600}
input{font:inherit;padding:.35rem .5rem;width:16rem;max-width:100%}
button{font:inherit;padding:.4rem 1.2rem;margin-top:1rem;cursor:pointer}
.err{background:#fdecea;border-left:4px solid #b42318;padding:.5rem .75rem}
.ok{background:#e9f6ec;border-left:4px solid #1a7f37;padding:.5rem .75rem}
.note{font-size:.85rem;color:#4a5560}table{border-collapse:collapse}td,th{padding:.3rem .6rem;border:1px solid #d0d6dc}
"""


def national(e164: str) -> str:
    """``+819012345678`` -> ``090-1234-5678``, as a holder writes it."""
    parsed = phonenumbers.parse(e164)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def t(ja: str, en: str) -> str:
    """A Japanese text with its English below (both escaped)."""
    return f'{escape(ja)}<span class="en" lang="en">{escape(en)}</span>'


def page(title: tuple[str, str], body: str, *, csrf: str | None = None, user: str = "") -> str:
    logout = ""
    if csrf is not None:
        logout = (
            f'<form method="post" action="/logout" style="float:right;margin:0">'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            f'<button style="margin:0">ログアウト</button></form>'
        )
    who = f' <span style="margin-left:1rem">{escape(user)} さま</span>' if user else ""
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title[0])} | 契約者さま専用ページ</title><style>{CSS}</style></head>
<body><header>{logout}<b>契約者さま専用ページ</b>{who}</header>
<main><h1>{t(*title)}</h1>{body}</main></body></html>"""


def message(kind: str, ja: str, en: str) -> str:
    return f'<p class="{kind}" role="{"alert" if kind == "err" else "status"}">{t(ja, en)}</p>'


def hidden_csrf(csrf: str) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(csrf)}">'


def login_form(error: str = "") -> str:
    return page(
        ("ログイン", "Log in"),
        f"""{error}
<form method="post" action="/login">
<label for="login_id">{t("ログインID", "Login ID")}</label>
<input id="login_id" name="login_id" autocomplete="username" required>
<label for="password">{t("パスワード", "Password")}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<div><button id="login">ログイン</button></div></form>
<ul class="note">
<li>{
            t(
                "ログインIDおよび初期パスワードには、小文字 l (エル)、大文字 O (オー)、小文字 o (オー)、小文字 q (キュー) を使用していません。",
                "Login IDs and initial passwords never use l, O, o or q.",
            )
        }</li>
<li>{
            t(
                "初期パスワードでログインした際は、ログイン後に任意のパスワードへ変更してください。",
                "After logging in with an initial password, please change it.",
            )
        }</li>
<li>{
            t(
                "パスワードは、英字大文字、英字小文字、数字を混在させ、8～16文字で設定してください。",
                "Passwords mix upper case, lower case and digits, 8 to 16 characters.",
            )
        }</li>
<li>{
            t(
                "パスワードは5回連続して間違えるとロックがかかります。",
                "Five wrong passwords in a row lock the account.",
            )
        }
 <a href="/unlock">{t("ロック解除の手続き", "Unlock procedure")}</a></li>
</ul>""",
    )


def verify_page(gateway: str, verification_id: str, token: str, csrf: str, user: str) -> str:
    opts = json.dumps({"verification": verification_id, "token": token}).replace("<", "\\u003c")
    script_src = escape(gateway + "/widget/v1/ivr-widget.js")
    return page(
        ("電話番号による本人認証", "Confirm by phone"),
        f"""<p>{
            t(
                "ご登録の電話番号から、下記の認証専用電話番号へお電話ください。確認できると、自動で次の画面へ進みます。",
                "Call the authentication number below from your registered phone. The page moves on by itself once it is confirmed.",
            )
        }</p>
<div id="ivr-auth"></div>
<script src="{script_src}"></script>
<script>
IvrWidget.mount(document.getElementById("ivr-auth"), Object.assign({opts}, {{
  onVerified: function () {{ location.assign("/login/complete"); }},
  onRetry: function () {{ location.assign("/login/retry"); }}
}}));
</script>""",
        csrf=csrf,
        user=user,
    )
