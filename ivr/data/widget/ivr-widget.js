/*
 * ivr-widget.js: the phone-number authentication widget for a login page.
 * One file, no build step, no framework, nothing loaded from third-party hosts.
 *
 *   <div id="ivr-auth"></div>
 *   <script src="https://GATEWAY/widget/v1/ivr-widget.js"></script>
 *   <script>
 *     IvrWidget.mount(document.getElementById("ivr-auth"), {
 *       verification: "vrf_...",        // the id from POST /v1/verifications
 *       token: "ct1....",               // its client_token (never the portal's API token)
 *       lang: "ja",                     // or "en"; the holder can switch
 *       onVerified: function (view) { location.assign("/login/complete"); },
 *       onRetry: function () { location.reload(); }
 *     });
 *   </script>
 *
 * Or without script of your own: <div data-ivr-verification="vrf_..." data-ivr-token="ct1..."
 * data-ivr-complete-url="/login/complete" data-ivr-retry-url="/login/retry"></div>.
 * The page must still confirm the verification on its server (callback or GET /v1/...):
 * what a browser says is never proof.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var BASE = script ? script.src.replace(/\/widget\/v1\/ivr-widget\.js(\?.*)?$/, "") : "";

  var TEXT = {
    ja: {
      title: "電話による本人確認",
      instruction: "ご登録の電話番号（{masked}）から、発信者番号を通知して、次の番号へお電話ください。音声案内のあと、通話は自動で終わります。",
      dialLabel: "認証専用電話番号",
      tapToCall: "タップして発信",
      qr: "スマートフォンのカメラで読み取ると、この番号に発信できます。",
      remaining: "有効期限まで あと {m}分{s}秒",
      lastMinute: "有効期限まで、あと1分です。",
      pending: "お電話をお待ちしています。",
      verified: "本人確認ができました。",
      expired: "有効期限が切れました。もう一度お試しください。",
      cancelled: "この本人確認は取り消されました。もう一度お試しください。",
      retry: "もう一度試す",
      offline: "通信できません。再接続しています…",
      ifYou: "お客様からのお電話でしたら: ",
      withheld: "発信者番号が非通知の着信がありました。番号の前に「186」をつけて（186-{dial}）おかけ直しください。",
      payphone: "公衆電話からの着信がありました。公衆電話では本人確認できません。ご登録の電話からおかけください。",
      unavailable: "発信者番号が表示されない着信がありました。ご登録の電話から、番号を通知しておかけ直しください。",
      not_eligible: "本人確認に利用できない番号（050・0120・0570 など）からの着信がありました。ご登録の電話番号（{masked}）からおかけください。",
      other_number: "ご登録とは異なる電話番号からの着信がありました。ご登録の電話番号（{masked}）からおかけください。",
      other: "English"
    },
    en: {
      title: "Confirm it is you by phone",
      instruction: "From your registered phone ({masked}), with caller ID shown, call the number below. A short message plays and the call ends by itself.",
      dialLabel: "Authentication number",
      tapToCall: "Tap to call",
      qr: "Scan with your smartphone camera to call this number.",
      remaining: "Expires in {m} min {s} s",
      lastMinute: "One minute left.",
      pending: "Waiting for your call.",
      verified: "You are verified.",
      expired: "This request has expired. Please try again.",
      cancelled: "This request was cancelled. Please try again.",
      retry: "Try again",
      offline: "Connection lost. Reconnecting…",
      ifYou: "If that was you: ",
      withheld: "A call came in with the caller ID withheld. Dial 186 before the number (186-{dial}) and call again.",
      payphone: "A call came in from a pay phone. Pay phones cannot be used; please call from your registered phone.",
      unavailable: "A call came in without a caller number. Call again from your registered phone with caller ID shown.",
      not_eligible: "A call came in from a number that cannot be used (050, 0120, 0570 ...). Please call from your registered number ({masked}).",
      other_number: "A call came in from a number other than the registered one. Please call from your registered number ({masked}).",
      other: "日本語"
    }
  };

  var CSS =
    ".ivrw{font:16px/1.6 system-ui,'Noto Sans CJK JP','Hiragino Sans',sans-serif;max-width:32rem;border:1px solid #c8cdd2;border-radius:8px;padding:1rem 1.25rem;color:#1b1f23;background:#fff}" +
    ".ivrw h2{font-size:1.15rem;margin:0 0 .5rem}" +
    ".ivrw-dial{display:block;font-size:1.9rem;font-weight:700;letter-spacing:.04em;color:#0b4fa3;text-decoration:none;margin:.25rem 0}" +
    ".ivrw-dial:focus{outline:3px solid #f0a000;outline-offset:2px}" +
    ".ivrw-small{font-size:.85rem;color:#4a5560}" +
    ".ivrw [hidden]{display:none!important}" +
    /* A desktop-sized screen gets the QR code to scan with a phone; a phone gets the link. */
    ".ivrw-qr{display:none;margin:.5rem 0}.ivrw-qr img{width:148px;height:148px}.ivrw-tap{display:none}" +
    "@media (min-width:40rem) and (not (pointer:coarse)){.ivrw-qr{display:block}}" +
    "@media (max-width:40rem),(pointer:coarse){.ivrw-tap{display:block}}" +
    ".ivrw-status{font-weight:700;margin:.75rem 0 .25rem}" +
    ".ivrw-ok{color:#1a7f37}.ivrw-bad{color:#b42318}" +
    ".ivrw-hint{background:#fff4e5;border-left:4px solid #f0a000;padding:.5rem .75rem;margin:.5rem 0}" +
    ".ivrw button{font:inherit;padding:.4rem 1rem;margin-top:.5rem;cursor:pointer}" +
    ".ivrw-lang{float:right;font-size:.8rem;padding:.1rem .5rem!important;margin:0!important}";

  function fmt(s, vars) {
    return s.replace(/\{(\w+)\}/g, function (_, k) { return vars[k] == null ? "" : String(vars[k]); });
  }

  function h(tag, attrs, text) {
    var el = document.createElement(tag);
    for (var k in attrs) { if (attrs[k] != null) el.setAttribute(k, attrs[k]); }
    if (text != null) el.textContent = text;
    return el;
  }

  function addStyle() {
    if (document.getElementById("ivrw-style")) return;
    var st = h("style", { id: "ivrw-style" });
    st.textContent = CSS;
    document.head.appendChild(st);
  }

  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function mount(root, opts) {
    addStyle();
    var lang = (opts.lang || document.documentElement.lang || "ja").slice(0, 2) === "en" ? "en" : "ja";
    var base = opts.gateway || BASE;
    var view = null, deadline = null, stopped = false, offline = false, warned = false;
    var seenHint = null, lastStatus = null;

    root.innerHTML = "";
    var box = h("section", { "class": "ivrw", "aria-labelledby": "ivrw-title-" + opts.verification });
    var langBtn = h("button", { type: "button", "class": "ivrw-lang" });
    var title = h("h2", { id: "ivrw-title-" + opts.verification });
    var instr = h("p", { "class": "ivrw-instr" });
    var label = h("div", { "class": "ivrw-small" });
    var dial = h("a", { "class": "ivrw-dial", "data-ivr": "dial" });
    var tap = h("div", { "class": "ivrw-small ivrw-tap" });
    var qr = h("div", { "class": "ivrw-qr" });
    var qrImg = h("img", { alt: "", "data-ivr": "qr" });
    var qrText = h("div", { "class": "ivrw-small" });
    qr.appendChild(qrImg); qr.appendChild(qrText);
    var countdown = h("div", { "class": "ivrw-small", "aria-hidden": "true", "data-ivr": "countdown" });
    var status = h("p", { "class": "ivrw-status", role: "status", "aria-live": "polite", "data-ivr": "status", tabindex: "-1" });
    var hint = h("div", { "class": "ivrw-hint", role: "alert", "data-ivr": "hint", hidden: "" });
    var retry = h("button", { type: "button", "data-ivr": "retry", hidden: "" });
    [langBtn, title, instr, label, dial, tap, qr, countdown, status, hint, retry].forEach(function (e) { box.appendChild(e); });
    root.appendChild(box);
    box.setAttribute("data-ivr-state", "loading");

    langBtn.addEventListener("click", function () { lang = lang === "ja" ? "en" : "ja"; render(); });
    retry.addEventListener("click", function () {
      if (opts.onRetry) opts.onRetry();
      else if (opts.retryUrl) location.assign(opts.retryUrl);
      else location.reload();
    });

    function t(key) { return TEXT[lang][key]; }

    function render() {
      var T = TEXT[lang];
      box.lang = lang;
      langBtn.textContent = T.other;
      langBtn.lang = lang === "ja" ? "en" : "ja";
      title.textContent = T.title;
      label.textContent = T.dialLabel;
      tap.textContent = T.tapToCall;
      qrText.textContent = T.qr;
      if (!view) return;
      var vars = { masked: view.phone_number_masked, dial: view.dial_number.national };
      instr.textContent = fmt(T.instruction, vars);
      dial.textContent = view.dial_number.national;
      dial.href = view.dial_number.tel_uri;
      dial.setAttribute("aria-label", T.dialLabel + " " + view.dial_number.national.split("").join(" "));
      qrImg.src = base + "/widget/v1/qr/" + encodeURIComponent(view.dial_number.e164) + ".svg";
      var st = view.status;
      box.setAttribute("data-ivr-state", st);
      status.className = "ivrw-status" + (st === "verified" ? " ivrw-ok" : st === "pending" ? "" : " ivrw-bad");
      status.textContent = offline && st === "pending" ? T.offline : T[st] || st;
      var kind = st === "pending" && view.hint ? view.hint.kind : null;
      if (kind && T[kind]) {
        hint.hidden = false;
        hint.setAttribute("data-ivr-hint", kind);
        hint.textContent = T.ifYou + fmt(T[kind], vars);
      } else {
        hint.hidden = true;
        hint.removeAttribute("data-ivr-hint");
        hint.textContent = "";
      }
      retry.textContent = T.retry;
      retry.hidden = !(st === "expired" || st === "cancelled");
      var live = st === "pending";
      [dial, tap, qr, countdown].forEach(function (e) { e.hidden = !live; });
      tick();
    }

    function tick() {
      if (!view || view.status !== "pending" || deadline === null) { countdown.textContent = ""; return; }
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      countdown.textContent = fmt(t("remaining"), { m: Math.floor(left / 60), s: ("0" + (left % 60)).slice(-2) });
      if (left <= 60 && left > 0 && !warned) { warned = true; status.textContent = t("lastMinute") + " " + t("pending"); }
    }
    var timer = setInterval(tick, 1000);

    function settle(v) {
      view = v;
      deadline = Date.now() + v.expires_in * 1000;  // the gateway's clock, not this one
      seenHint = v.hint ? v.hint.at : null;
      render();
      if (v.status !== lastStatus) {
        lastStatus = v.status;
        if (opts.onStatus) opts.onStatus(v);
        if (v.status === "verified") {
          status.focus();
          if (opts.onVerified) opts.onVerified(v);
          else if (opts.completeUrl) location.assign(opts.completeUrl);
        } else if (v.status === "expired" || v.status === "cancelled") {
          retry.focus();
          if (opts.onExpired) opts.onExpired(v);
        }
      }
    }

    function endAs(statusName) {
      settle(Object.assign({}, view || { dial_number: { national: "", e164: "", tel_uri: "" }, phone_number_masked: "" },
        { status: statusName, expires_in: 0, hint: null }));
    }

    async function loop() {
      var failures = 0, wait = 0;
      while (!stopped) {
        var url = base + "/client/v1/verifications/" + encodeURIComponent(opts.verification) + "?wait=" + wait;
        if (seenHint) url += "&seen_hint=" + encodeURIComponent(seenHint);
        try {
          var r = await fetch(url, { headers: { Authorization: "Bearer " + opts.token }, cache: "no-store", mode: "cors" });
          if (r.status === 401 || r.status === 404) { endAs("expired"); break; }
          if (!r.ok) throw new Error("HTTP " + r.status);
          var v = await r.json();
          failures = 0;
          if (offline) { offline = false; }
          settle(v);
          if (v.status !== "pending") break;
          wait = 25;
        } catch (e) {
          failures += 1;
          offline = true;
          render();
          await sleep(Math.min(500 * Math.pow(2, failures), 10000));
        }
      }
      clearInterval(timer);
    }

    render();
    loop();
    return { stop: function () { stopped = true; clearInterval(timer); } };
  }

  function autoMount() {
    var els = document.querySelectorAll("[data-ivr-verification]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (el.getAttribute("data-ivr-mounted")) continue;
      el.setAttribute("data-ivr-mounted", "1");
      mount(el, {
        verification: el.getAttribute("data-ivr-verification"),
        token: el.getAttribute("data-ivr-token"),
        lang: el.getAttribute("data-ivr-lang") || undefined,
        completeUrl: el.getAttribute("data-ivr-complete-url") || undefined,
        retryUrl: el.getAttribute("data-ivr-retry-url") || undefined
      });
    }
  }

  window.IvrWidget = { mount: mount, version: "1" };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", autoMount);
  else autoMount();
})();
