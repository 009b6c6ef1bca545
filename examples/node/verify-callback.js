// Verify the gateway's signed callback in Node.js with no dependency (node:crypto only):
// the Standard Webhooks scheme (webhook-id, webhook-timestamp, webhook-signature).
//
//   const { verifyCallback } = require("./verify-callback");
//   const event = verifyCallback(process.env.IVR_CALLBACK_SECRET, rawBody, req.headers);
//
// rawBody must be the exact bytes received (a Buffer), not re-serialised JSON.
"use strict";
const crypto = require("node:crypto");

const TOLERANCE_SECONDS = 5 * 60;

function verifyCallback(secret, rawBody, headers, nowSeconds = Date.now() / 1000) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) throw new Error("missing webhook headers");
  const ts = Number(timestamp);
  if (!Number.isInteger(ts) || Math.abs(nowSeconds - ts) > TOLERANCE_SECONDS) {
    throw new Error("timestamp too old or too new");  // a replay
  }
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = crypto
    .createHmac("sha256", key)
    .update(`${id}.${timestamp}.`)
    .update(rawBody)
    .digest();
  // One "v1,<base64>" per secret the gateway holds (several during a rotation).
  const ok = signatures.split(" ").some((entry) => {
    const [version, sig] = entry.split(",", 2);
    if (version !== "v1" || !sig) return false;
    const given = Buffer.from(sig, "base64");
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
  if (!ok) throw new Error("no valid signature");
  return JSON.parse(rawBody.toString("utf8"));
}

module.exports = { verifyCallback };

// `node verify-callback.js SECRET HEADERS_JSON < body`: prints the event's type and status.
if (require.main === module) {
  const [secret, headersJson] = process.argv.slice(2);
  const chunks = [];
  process.stdin.on("data", (c) => chunks.push(c));
  process.stdin.on("end", () => {
    try {
      const event = verifyCallback(secret, Buffer.concat(chunks), JSON.parse(headersJson));
      console.log(`${event.type} ${event.data.status}`);
    } catch (e) {
      console.error(`refused: ${e.message}`);
      process.exit(1);
    }
  });
}
