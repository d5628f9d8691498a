// The login and consent pages as a person uses them: a real headless Chromium fills the forms
// and clicks the buttons; the application's side (PKCE, code exchange) is done with fetch.
// Screenshots land in target/screenshots/ for a human to look at.
//
// Needs: `target/debug/auth` built, Debian's chromium (CHROMIUM overrides /usr/bin/chromium).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const ROOT = resolve(import.meta.dirname, "../../../..");
const PORT = 18000 + Math.floor(Math.random() * 1000);
const BASE = `http://127.0.0.1:${PORT}`;
const REDIRECT = "http://127.0.0.1:9/callback";
const SHOTS = join(ROOT, "target/screenshots");
const ADMIN = { username: "admin", password: "browser-test-password" };

let server, browser, dataDir, client, otherClient;

const b64url = (buf) => buf.toString("base64url");

async function waitForServer() {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${BASE}/readyz`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("auth did not become ready");
}

async function json(path, options = {}) {
  const res = await fetch(`${BASE}${path}`, options);
  return { status: res.status, body: await res.json() };
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "auth-browser-"));
  mkdirSync(SHOTS, { recursive: true });
  server = spawn(join(ROOT, "target/debug/auth"), [], {
    env: {
      ...process.env,
      AUTH_HTTP__PORT: String(PORT),
      AUTH_DATABASE__URL: `sqlite://${dataDir}/auth.db`,
      AUTH_OAUTH__ISSUER: BASE,
      BOOTSTRAP_ADMIN_USERNAME: ADMIN.username,
      BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password,
      RUST_LOG: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  await waitForServer();
  const basic = Buffer.from(`${ADMIN.username}:${ADMIN.password}`).toString("base64");
  const login = await json("/oauth", { method: "POST", headers: { authorization: `Basic ${basic}` } });
  assert.equal(login.status, 200);
  const createApp = async (name) => {
    const app = await json("/applications", {
      method: "POST",
      headers: { authorization: `Bearer ${login.body.access_token}`, "content-type": "application/json" },
      body: JSON.stringify({ name, grant_types: ["authorization_code"], redirect_uris: [REDIRECT], scopes: ["profile", "email"] }),
    });
    assert.equal(app.status, 201);
    return app.body.data;
  };
  client = await createApp("Photo Printer Ltd");
  otherClient = await createApp("Calendar Sync");
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function authorizeUrl(scope, app = client) {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash("sha256").update(verifier).digest());
  const state = b64url(randomBytes(12));
  const params = new URLSearchParams({
    response_type: "code",
    client_id: app.client_id,
    redirect_uri: REDIRECT,
    scope,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  return { url: `${BASE}/oauth2/authorize?${params}`, verifier, state };
}

/// The browser's navigation to the application's callback, which nothing serves here.
async function callbackAfter(page, action) {
  const callback = page.waitForRequest((req) => req.url().startsWith(REDIRECT));
  await page.route(`${REDIRECT}**`, (route) => route.fulfill({ status: 200, contentType: "text/html", body: "<p>Back at the application</p>" }));
  await action();
  const url = new URL((await callback).url());
  await page.waitForURL((u) => u.href.startsWith(REDIRECT));
  return url;
}

test("sign in, consent, and the application gets a working token", async () => {
  const page = await browser.newPage({ viewport: { width: 800, height: 900 } });
  const { url, verifier, state } = authorizeUrl("profile email");
  await page.goto(url);
  assert.equal(await page.title(), "Sign in");
  assert.match(await page.textContent("main"), /to continue to Photo Printer Ltd/);
  await page.screenshot({ path: join(SHOTS, "1-login.png"), fullPage: true });

  await page.fill("#username", ADMIN.username);
  await page.fill("#password", "not-the-password");
  await page.click("button[type=submit]");
  assert.match(await page.textContent("[role=alert]"), /Wrong username or password/);
  assert.equal(await page.inputValue("#username"), ADMIN.username, "the username is kept");
  await page.screenshot({ path: join(SHOTS, "2-login-error.png"), fullPage: true });

  await page.fill("#password", ADMIN.password);
  await page.click("button[type=submit]");
  assert.equal(await page.title(), "Allow access?");
  const consent = await page.textContent("main");
  assert.match(consent, /Photo Printer Ltd/);
  assert.match(consent, /See your e-mail address/);
  await page.screenshot({ path: join(SHOTS, "3-consent.png"), fullPage: true });

  const callback = await callbackAfter(page, () => page.click("button[value=approve]"));
  assert.equal(callback.searchParams.get("state"), state);
  const code = callback.searchParams.get("code");
  assert.ok(code);

  const form = new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier });
  const basic = Buffer.from(`${client.client_id}:${client.client_secret}`).toString("base64");
  const token = await json("/oauth2/token", { method: "POST", headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded" }, body: form });
  assert.equal(token.status, 200);
  assert.equal(token.body.scope, "email profile");
  const me = await json("/accounts/me", { headers: { authorization: `Bearer ${token.body.access_token}` } });
  assert.equal(me.body.data.username, ADMIN.username);
  await page.close();
});

test("deny sends the person back with access_denied; sign out ends the session", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  // Another application: nothing consented to yet, so the consent page shows.
  const { url, state } = authorizeUrl("profile", otherClient);
  await page.goto(url);
  await page.fill("#username", ADMIN.username);
  await page.fill("#password", ADMIN.password);
  await page.click("button[type=submit]");
  const callback = await callbackAfter(page, () => page.click("button[value=deny]"));
  assert.equal(callback.searchParams.get("error"), "access_denied");
  assert.equal(callback.searchParams.get("state"), state);

  await page.goto(authorizeUrl("profile", otherClient).url);
  await page.click("text=Sign out");
  assert.equal(await page.title(), "Signed out");
  await page.screenshot({ path: join(SHOTS, "4-signed-out.png"), fullPage: true });
  await page.goto(authorizeUrl("profile").url);
  assert.equal(await page.title(), "Sign in", "signed out means signing in again");
  await context.close();
});

test("an unregistered redirect URI shows an error page, never a redirect", async () => {
  const page = await browser.newPage();
  const response = await page.goto(`${BASE}/oauth2/authorize?response_type=code&client_id=${client.client_id}&redirect_uri=${encodeURIComponent("https://evil.example.com/cb")}`);
  assert.equal(response.status(), 400);
  assert.equal(page.url().startsWith(BASE), true);
  assert.match(await page.textContent("[role=alert]"), /not registered/);
  await page.screenshot({ path: join(SHOTS, "5-error.png"), fullPage: true });
  await page.close();
});
