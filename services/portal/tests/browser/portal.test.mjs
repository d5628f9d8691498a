// The developer portal as people use it: a real headless Chromium on the whole embedded
// platform (target/debug/platform) signs in through auth's own login page, creates an
// application, copies its secret, uses it with curl, rotates it, and, as another person,
// authorizes the application, finds it under "Connected applications" and revokes it. Every
// page is audited with axe-core in the same run; screenshots at desktop and phone width land in
// target/screenshots/portal-*.png for a human to look at.
//
// Needs: `target/debug/platform` built, Debian's chromium (CHROMIUM overrides /usr/bin/chromium),
// curl.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, openSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const ROOT = resolve(import.meta.dirname, "../../../..");
const BASE_PORT = 21000 + Math.floor(Math.random() * 400) * 10;
const GATEWAY = `http://127.0.0.1:${BASE_PORT}`;
const PORTAL = `${GATEWAY}/portal`;
const SHOTS = join(ROOT, "target/screenshots");
const ADMIN = { username: "admin", password: "portal-test-password" };
const ALICE = { username: "alice", password: "correct horse battery staple" };
const BOB = { username: "bob", password: "bob's partner password" };
const PARTNER_CALLBACK = "http://127.0.0.1:9/callback";
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

let platform, browser, dataDir, logFile;
const secretsSeen = [];

const port = (offset) => String(BASE_PORT + offset);
const up = (offset) => `http://127.0.0.1:${BASE_PORT + offset}`;

function platformEnv() {
  return {
    ...process.env,
    RUST_LOG: "info",
    BOOTSTRAP_ADMIN_USERNAME: ADMIN.username,
    BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password,
    GATEWAY_HTTP__PORT: port(0),
    AUTH_HTTP__PORT: port(1),
    INTROSPECTION_HTTP__PORT: port(2),
    USER_PROFILE_HTTP__PORT: port(3),
    BLOG_HTTP__PORT: port(4),
    WEBHOOK_HTTP__PORT: port(5),
    NOTIFICATION_DISPATCH_HTTP__PORT: port(6),
    PORTAL_HTTP__PORT: port(7),
    GATEWAY_UPSTREAMS__AUTH: up(1),
    GATEWAY_UPSTREAMS__INTROSPECTION: up(2),
    GATEWAY_UPSTREAMS__USER_PROFILE: up(3),
    GATEWAY_UPSTREAMS__BLOG: up(4),
    GATEWAY_UPSTREAMS__WEBHOOK: up(5),
    GATEWAY_UPSTREAMS__NOTIFICATION_DISPATCH: up(6),
    GATEWAY_UPSTREAMS__PORTAL: up(7),
    GATEWAY_INTROSPECTION__URL: `${up(2)}/oauth2/introspect`,
    GATEWAY_TOKENS__ISSUER: GATEWAY,
    GATEWAY_USAGE__REPORT_INTERVAL: "1s",
    // Access tokens live a minute, the portal's refresh margin: every portal page refreshes the
    // person's tokens first, so the whole run goes through token refresh.
    AUTH_OAUTH__ACCESS_TOKEN_TTL: "60s",
    GATEWAY_DOCS__PUBLIC_URL: GATEWAY,
    AUTH_OAUTH__ISSUER: GATEWAY,
    AUTH_BOOTSTRAP__PORTAL_REDIRECT_URIS: `["${PORTAL}/callback"]`,
    INTROSPECTION_AUTH__URL: up(1),
    INTROSPECTION_AUTH__ISSUER: GATEWAY,
    PORTAL_PORTAL__PUBLIC_URL: PORTAL,
    PORTAL_PORTAL__GATEWAY_URL: GATEWAY,
  };
}

async function ready() {
  for (let i = 0; i < 300; i++) {
    try {
      const [gateway, portal] = await Promise.all([fetch(`${GATEWAY}/readyz`), fetch(`${up(7)}/readyz`)]);
      if (gateway.ok && portal.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the platform did not become ready");
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "portal-browser-"));
  mkdirSync(SHOTS, { recursive: true });
  logFile = join(dataDir, "platform.log");
  const log = openSync(logFile, "w");
  // The platform keeps its SQLite files under ./data: run it in the temporary directory.
  platform = spawn(join(ROOT, "target/debug/platform"), [], { cwd: dataDir, env: platformEnv(), stdio: ["ignore", log, log] });
  await ready();
  for (const who of [ALICE, BOB]) {
    const res = await fetch(`${GATEWAY}/users`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: who.username, email: `${who.username}@example.com`, password: who.password }),
    });
    const created = await res.json();
    assert.equal(res.status, 201, JSON.stringify(created));
    who.id = created.data.id;
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  if (platform && platform.exitCode === null && platform.signalCode === null) {
    const exited = new Promise((r) => platform.once("exit", r));
    platform.kill("SIGTERM");
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

// axe-core's checks are injected past the pages' CSP (script-src 'self').
const person = () => browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });

/** Zero serious or critical accessibility violations on the page as it stands. */
async function audit(page, name) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(async () => await globalThis.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => ["serious", "critical"].includes(v.impact));
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`),
    [],
    `accessibility of ${name}`,
  );
}

/** Desktop and phone-width screenshots, and the audit at both widths. */
async function shoot(page, name) {
  await audit(page, name);
  await page.screenshot({ path: join(SHOTS, `portal-${name}.png`), fullPage: true });
  const desktop = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${name} fits a phone-width screen (overflows by ${overflow}px)`);
  await audit(page, `${name} (phone)`);
  await page.screenshot({ path: join(SHOTS, `portal-${name}-phone.png`), fullPage: true });
  await page.setViewportSize(desktop);
}

async function signInAtAuth(page, who) {
  await page.getByLabel("Username").fill(who.username);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

function curlToken(clientId, secret) {
  const out = execFileSync("curl", [
    "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", `${clientId}:${secret}`,
    "-d", "grant_type=client_credentials", `${GATEWAY}/oauth2/token`,
  ]);
  return Number(out.toString());
}

let app; // the application the registration platform creates: { id, secret }

test("a partner asks to become a registration platform and an administrator approves", async () => {
  const bob = await (await person()).newPage();
  await bob.goto(PORTAL);
  assert.match(bob.url(), /\/oauth2\/authorize\?/, "the portal sends people to auth's sign-in page");
  await bob.getByText("Developer portal").first().waitFor();
  await shoot(bob, "sign-in");
  await signInAtAuth(bob, BOB);
  await bob.waitForURL(`${PORTAL}/applications`);
  assert.match(await bob.locator("main").innerText(), /Only registration platforms create applications/);
  await shoot(bob, "applications-not-a-platform");
  assert.equal((await bob.goto(`${PORTAL}/applications/new`)).status(), 403);
  const lost = await bob.goto(`${PORTAL}/no/such/page`);
  assert.equal(lost.status(), 404);
  assert.match(lost.headers()["content-type"], /text\/html/, "a page, not a JSON envelope");
  await bob.getByText("There is no such page in the portal.").waitFor();
  await bob.goto(`${PORTAL}/account`);
  await bob.getByLabel("What will you build?").fill("A booking app for sports clubs");
  await bob.getByRole("button", { name: "Ask to become a registration platform" }).click();
  await bob.getByText("Your request was sent to the administrators.").waitFor();
  assert.match(await bob.locator("main").innerText(), /waiting for an administrator/);
  await shoot(bob, "account-asked");

  const admin = await (await person()).newPage();
  await admin.goto(`${PORTAL}/admin/role-requests`);
  await signInAtAuth(admin, ADMIN);
  await admin.waitForURL(`${PORTAL}/admin/role-requests`);
  const request = admin.getByRole("listitem").filter({ hasText: "bob" });
  assert.match(await request.innerText(), /A booking app for sports clubs/);
  await shoot(admin, "role-requests");
  await admin.getByRole("button", { name: "Approve bob" }).click();
  await admin.getByText("Request approved.").waitFor();
  assert.equal(await admin.getByRole("listitem").filter({ hasText: "bob" }).count(), 0);
  await admin.context().close();

  // Bob's session sees the new role at once.
  await bob.goto(`${PORTAL}/applications`);
  await bob.getByRole("link", { name: "New application" }).waitFor();
  await bob.context().close();
});

test("the registration platform creates an application, reads its secret once and rotates it", async () => {
  const context = await person();
  const page = await context.newPage();
  await page.goto(PORTAL);
  await signInAtAuth(page, BOB);
  await page.waitForURL(`${PORTAL}/applications`);
  assert.equal(await page.getByRole("heading", { level: 1 }).innerText(), "Applications");
  assert.equal(await page.getByText(/no applications yet/).count(), 1);

  const cookies = await context.cookies(PORTAL);
  const session = cookies.find((c) => c.name === "portal_session");
  assert.ok(session, "a session cookie");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Lax");
  assert.equal(session.secure, false, "not Secure on plain-http loopback only");
  assert.equal(session.path, "/portal");

  await page.getByRole("link", { name: "New application" }).click();
  await page.waitForURL(`${PORTAL}/applications/new`);
  await shoot(page, "new-application");
  // A mistake is shown beside its field, and what was typed is kept.
  await page.getByLabel("Redirect URIs").fill("ftp://not-a-redirect");
  await page.getByRole("button", { name: "Create application" }).click();
  const nameInput = page.getByLabel("Name", { exact: true });
  assert.equal(await nameInput.getAttribute("aria-invalid"), "true");
  assert.match(await page.locator("#name-error").innerText(), /\S/);
  assert.equal(await page.getByLabel("Redirect URIs").inputValue(), "ftp://not-a-redirect");
  assert.equal(await page.getByText('"success"').count(), 0, "never a raw JSON envelope");
  await shoot(page, "new-application-errors");

  await nameInput.fill("Photo printer");
  await page.getByLabel("Redirect URIs").fill(PARTNER_CALLBACK);
  await page.getByLabel(/^client_credentials/).check();
  await page.getByLabel(/^email/).check();
  await page.getByLabel(/^notifications:send/).check();
  await page.getByRole("button", { name: "Create application" }).click();
  await page.getByRole("heading", { name: "Photo printer" }).waitFor();
  const secret = await page.locator("#client-secret").inputValue();
  const id = await page.locator("#client-id").inputValue();
  assert.match(secret, /^[0-9a-f-]{20,}|^[A-Za-z0-9_-]{20,}$/);
  secretsSeen.push(secret);
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: GATEWAY });
  await page.locator('button[data-copy="client-secret"]').click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, "the copy button copies the secret");
  await shoot(page, "application-created");
  assert.equal(curlToken(id, secret), 200, "the secret from the page works with curl");

  // The secret is shown once: the application's page never shows it again.
  await page.goto(`${PORTAL}/applications/${id}`);
  assert.equal(await page.locator("#client-secret").count(), 0);
  assert.ok(!(await page.content()).includes(secret));
  await shoot(page, "application");

  // Rotate with a day's overlap: both secrets work.
  await page.getByLabel("The current secret keeps working").selectOption("86400");
  await page.getByRole("button", { name: "Rotate the secret" }).click();
  await page.locator("#client-secret").waitFor();
  const rotated = await page.locator("#client-secret").inputValue();
  secretsSeen.push(rotated);
  assert.notEqual(rotated, secret);
  assert.match(await page.getByText(/still accepted until/).innerText(), /UTC/);
  await shoot(page, "secret-rotated");
  assert.equal(curlToken(id, secret), 200, "the old secret works during the overlap");
  assert.equal(curlToken(id, rotated), 200, "the new one too");
  // Rotating again without overlap: only the newest works.
  await page.getByLabel("The current secret keeps working").selectOption("0");
  await page.getByRole("button", { name: "Rotate the secret" }).click();
  await page.locator("#client-secret").waitFor();
  const newest = await page.locator("#client-secret").inputValue();
  secretsSeen.push(newest);
  assert.equal(curlToken(id, newest), 200);
  assert.equal(curlToken(id, rotated), 401, "the replaced secret stops at once");
  assert.equal(curlToken(id, secret), 401, "and so does the first one");
  app = { id, secret: newest };

  // A form posted without the session's CSRF token is refused and changes nothing.
  const forged = await page.request.post(`${PORTAL}/applications/${id}/secret`, {
    form: { overlap_seconds: "0" },
    maxRedirects: 0,
  });
  assert.equal(forged.status(), 403);
  assert.equal(curlToken(id, newest), 200, "the refused form rotated nothing");
  // Pages of one session loaded at once each refresh the tokens, in turn (a refresh token
  // works once): none is sent back to sign in.
  const parallel = await Promise.all(
    Array.from({ length: 6 }, () => page.request.get(`${PORTAL}/applications`, { maxRedirects: 0 })),
  );
  assert.deepEqual(parallel.map((r) => r.status()), [200, 200, 200, 200, 200, 200]);
  await context.close();
});

test("the registration platform adds a webhook endpoint, sends a test event, reads the log and resends", async () => {
  assert.ok(app, "the application exists");
  // The partner's receiver: records deliveries, answers 200 with a body the log shows.
  const deliveries = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      deliveries.push({ headers: req.headers, body });
      res.writeHead(200, { "content-type": "text/plain" }).end("thanks from the partner");
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  // An open server would keep node (and `make test`) waiting if the test failed.
  receiver.unref();
  const receiverUrl = `http://127.0.0.1:${receiver.address().port}/hooks`;
  const context = await person();
  const page = await context.newPage();
  await page.goto(`${PORTAL}/applications/${app.id}`);
  await signInAtAuth(page, BOB);
  await page.getByRole("link", { name: "Manage webhooks" }).click();
  await page.getByRole("heading", { name: "Webhooks of Photo printer" }).waitFor();
  await page.getByLabel("URL").fill("ftp://example.com/hooks");
  await page.getByRole("button", { name: "Add endpoint" }).click();
  assert.equal(await page.getByLabel("URL").getAttribute("aria-invalid"), "true");
  assert.match(await page.locator("#url-error").innerText(), /\S/);
  await shoot(page, "webhooks-errors");
  await page.getByLabel("URL").fill(receiverUrl);
  await page.getByLabel("Description").fill("Bookings");
  await page.getByRole("button", { name: "Add endpoint" }).click();
  await page.getByRole("heading", { name: "Endpoint", exact: true }).waitFor();
  const endpointPage = page.url();

  await page.getByRole("button", { name: "Send a test event" }).click();
  await page.getByText("A webhook.test event is on its way").waitFor();
  for (let i = 0; i < 100 && deliveries.length < 1; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(deliveries.length, 1, "the test event reached the receiver");
  let delivered;
  for (let i = 0; i < 50; i++) {
    await page.goto(endpointPage);
    delivered = page.getByRole("listitem").filter({ hasText: "Delivered" });
    if ((await delivered.count()) > 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(await delivered.first().innerText(), /webhook\.test · HTTP 200/);
  await delivered.first().getByText("Response body").click();
  assert.match(await delivered.first().innerText(), /thanks from the partner/);

  // The revealed secret verifies the delivery (Standard Webhooks: HMAC-SHA256 of id.timestamp.body).
  await page.getByRole("button", { name: "Reveal the secret" }).click();
  const secret = await page.locator("#signing-secret").inputValue();
  secretsSeen.push(secret);
  assert.match(secret, /^whsec_/);
  await shoot(page, "webhook-endpoint");
  const { headers, body } = deliveries[0];
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const expected = createHmac("sha256", key).update(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`).digest("base64");
  assert.ok(headers["webhook-signature"].split(" ").includes(`v1,${expected}`), "the delivery is signed with the shown secret");

  await page.getByRole("button", { name: /^Resend message/ }).first().click();
  for (let i = 0; i < 100 && deliveries.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(deliveries.length, 2, "resent");
  assert.equal(deliveries[1].headers["webhook-id"], headers["webhook-id"], "a resend is the same message");

  // Recover: every message that failed since a time goes again (none failed here).
  const anHourAgo = new Date(Date.now() - 3600e3).toISOString().slice(0, 16);
  await page.getByLabel("Send again every message that failed since (UTC)").fill(anHourAgo);
  await page.getByRole("button", { name: "Recover failed messages" }).click();
  await page.getByText("0 failed message(s) sent again.").waitFor();
  // Edit: the settings form saves with the ETag it was shown.
  await page.getByLabel("Description").fill("Bookings and cancellations");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved.").waitFor();
  assert.equal(await page.getByLabel("Description").inputValue(), "Bookings and cancellations");
  await page.getByRole("button", { name: "Disable" }).click();
  await page.getByRole("heading", { name: "Disabled" }).waitFor();
  await page.getByRole("button", { name: "Enable" }).click();
  await page.getByRole("heading", { name: "Enabled" }).waitFor();
  await page.goto(`${PORTAL}/applications/${app.id}/webhooks`);
  assert.match(await page.getByRole("listitem").filter({ hasText: receiverUrl }).innerText(), /enabled/);
  await shoot(page, "webhooks");
  await page.getByRole("link", { name: "Event types, schemas and examples" }).click();
  await page.getByRole("heading", { name: "user.updated" }).waitFor();
  await shoot(page, "event-types");
  // A second endpoint, deleted again.
  await page.goto(`${PORTAL}/applications/${app.id}/webhooks`);
  await page.getByLabel("URL").fill(`${receiverUrl}/second`);
  await page.getByRole("button", { name: "Add endpoint" }).click();
  await page.getByRole("button", { name: "Delete this endpoint" }).click();
  await page.waitForURL(`${PORTAL}/applications/${app.id}/webhooks`);
  assert.equal(await page.getByRole("listitem").filter({ hasText: "/second" }).count(), 0);
  await context.close();
  receiver.close();
});

let service; // { provider_id, service_id, token }

test("the registration platform makes the application a service provider and registers a service", async () => {
  const context = await person();
  const page = await context.newPage();
  await page.goto(`${PORTAL}/applications/${app.id}`);
  await signInAtAuth(page, BOB);
  await page.getByRole("link", { name: "Manage provider services" }).click();
  await page.getByRole("button", { name: "Make Photo printer a service provider" }).click();
  const providerId = Number(await page.locator("#provider-id").innerText());
  assert.ok(providerId > 0);
  await page.getByLabel("Name").fill("Appointments");
  await page.getByLabel(/^Rate limit/).fill("fast");
  await page.getByRole("button", { name: "Register the service" }).click();
  assert.equal(await page.getByLabel(/^Rate limit/).getAttribute("aria-invalid"), "true");
  assert.equal(await page.getByLabel("Name").inputValue(), "Appointments", "what was typed is kept");
  await shoot(page, "services-errors");
  await page.getByLabel(/^Rate limit/).fill("5");
  await page.getByRole("button", { name: "Register the service" }).click();
  const token = await page.locator("#service-token").inputValue();
  secretsSeen.push(token);
  const serviceId = Number(await page.locator(".notice code").innerText());
  await shoot(page, "services");
  // A rotation shows a new token once; the first stops working (checked by the send below).
  await page.getByRole("button", { name: "Rotate token of Appointments" }).click();
  const rotated = await page.locator("#service-token").inputValue();
  assert.notEqual(rotated, token);
  secretsSeen.push(rotated);
  service = { provider_id: providerId, service_id: serviceId, token: rotated, old: token };
  await page.goto(`${PORTAL}/applications/${app.id}/services`);
  assert.equal(await page.locator("#service-token").count(), 0, "a token is shown once");
  await context.close();
});

/** POST /Services as the provider application (seed 004), to Alice, in her inbox. */
async function notifyAlice(serviceToken) {
  const token = await fetch(`${GATEWAY}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${app.id}:${app.secret}`).toString("base64")}` },
    body: new URLSearchParams({ grant_type: "client_credentials", scope: "notifications:send" }),
  }).then((r) => r.json());
  const res = await fetch(`${GATEWAY}/Services`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token.access_token}` },
    body: JSON.stringify({
      provider_id: service.provider_id, service_token: serviceToken, service_id: service.service_id,
      parameters: { destination: ALICE.id, notification: { title: "Court booked", message: "Tuesday 18:00, court 2", channel: "INAPP" } },
    }),
  });
  return { status: res.status, body: await res.json() };
}

test("another person authorizes the application, finds it under Connected applications and revokes it", async () => {
  assert.ok(app, "the first test created the application");
  const context = await person();
  const page = await context.newPage();
  // The partner's "Log in with" link, with PKCE; the partner's callback is caught here.
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  let code;
  await page.route(`${PARTNER_CALLBACK}**`, (route) => {
    code = new URL(route.request().url()).searchParams.get("code");
    route.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><title>Partner</title><p>Back at the partner</p>" });
  });
  const authorize = new URL(`${GATEWAY}/oauth2/authorize`);
  Object.entries({
    response_type: "code", client_id: app.id, redirect_uri: PARTNER_CALLBACK, scope: "profile email notifications:send",
    state: "s1", code_challenge: challenge, code_challenge_method: "S256",
  }).forEach(([k, v]) => authorize.searchParams.set(k, v));
  await page.goto(authorize.toString());
  await signInAtAuth(page, ALICE);
  await page.getByRole("button", { name: "Allow" }).click();
  await page.getByText("Back at the partner").waitFor();
  assert.ok(code, "the partner received a code");
  const exchanged = await fetch(`${GATEWAY}/oauth2/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${app.id}:${app.secret}`).toString("base64")}`,
    },
    body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: PARTNER_CALLBACK, code_verifier: verifier }),
  });
  assert.equal(exchanged.status, 200);
  const { access_token: token } = await exchanged.json();
  const me = () => fetch(`${GATEWAY}/users/me`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
  assert.equal(await me(), 200, "the partner acts for Alice");

  // With her consent the provider reaches her; the old service token is refused.
  assert.equal((await notifyAlice(service.old)).status, 403);
  const sent = await notifyAlice(service.token);
  assert.equal(sent.status, 202, JSON.stringify(sent.body));
  const bob = await (await person()).newPage();
  await bob.goto(`${PORTAL}/applications/${app.id}/services/${service.service_id}`);
  await signInAtAuth(bob, BOB);
  await bob.getByRole("heading", { name: "Appointments" }).waitFor();
  let listed;
  for (let i = 0; i < 50; i++) {
    listed = await bob.getByRole("listitem").filter({ hasText: sent.body.data.notifications[0].id }).innerText().catch(() => "");
    if (/delivered|sent/.test(listed)) break;
    await new Promise((r) => setTimeout(r, 100));
    await bob.reload();
  }
  assert.match(listed, /(delivered|sent) · notification · INAPP/);
  await shoot(bob, "service-notifications");
  await bob.context().close();

  // Alice is signed in at auth already: the portal signs her in without asking again.
  await page.goto(`${PORTAL}/connected`);
  await page.waitForURL(`${PORTAL}/connected`);
  const item = page.getByRole("listitem").filter({ hasText: "Photo printer" });
  assert.equal(await item.count(), 1);
  assert.match(await item.innerText(), /email/);
  await shoot(page, "connected");

  // Applications of someone else are not hers to see, nor may she create any.
  const other = await page.goto(`${PORTAL}/applications/${app.id}`);
  assert.equal(other.status(), 404);
  await shoot(page, "not-yours");
  const create = await page.goto(`${PORTAL}/applications/new`);
  assert.equal(create.status(), 403);
  // Nor change them: her own session's CSRF token does not make Bob's application hers.
  await page.goto(`${PORTAL}/connected`);
  const csrf = await page.locator('input[name="csrf"]').first().inputValue();
  const rotate = await page.request.post(`${PORTAL}/applications/${app.id}/secret`, { form: { csrf, overlap_seconds: "0" }, maxRedirects: 0 });
  assert.equal(rotate.status(), 404);
  const remove = await page.request.post(`${PORTAL}/applications/${app.id}/delete`, { form: { csrf }, maxRedirects: 0 });
  assert.equal(remove.status(), 404);
  assert.equal(curlToken(app.id, app.secret), 200, "Bob's application is untouched");

  // Her inbox has the provider's notification; she reads it and chooses how she is notified.
  await page.goto(`${PORTAL}/connected`);
  await page.getByRole("link", { name: "Notifications", exact: true }).click();
  const note = page.getByRole("listitem").filter({ hasText: "Court booked" });
  assert.match(await note.innerText(), /Court booked new[\s\S]*Tuesday 18:00, court 2/);
  await shoot(page, "inbox");
  await page.getByRole("button", { name: "Mark read: Court booked" }).click();
  await page.waitForURL(`${PORTAL}/notifications`);
  assert.equal(await page.getByRole("button", { name: "Mark read: Court booked" }).count(), 0);
  await page.getByRole("link", { name: "Choose how and when you are notified" }).click();
  await page.getByLabel("Time zone").fill("Mars/Olympus_Mons");
  await page.getByLabel("Hold notifications during quiet hours").check();
  await page.getByRole("button", { name: "Save preferences" }).click();
  assert.equal(await page.getByLabel("Time zone").getAttribute("aria-invalid"), "true");
  assert.ok(await page.getByLabel("Hold notifications during quiet hours").isChecked(), "what was chosen is kept");
  await shoot(page, "preferences-errors");
  await page.getByLabel("Time zone").fill("Europe/Paris");
  await page.getByLabel("From", { exact: true }).fill("22:30");
  await page.getByLabel("SMS", { exact: true }).uncheck();
  await page.getByLabel(`Accept its advertisements`).check();
  await page.getByRole("button", { name: "Save preferences" }).click();
  await page.getByText("Saved.").waitFor();
  // Read back from the platform: the page shows what notification-dispatch stored.
  await page.goto(`${PORTAL}/notifications/preferences`);
  assert.equal(await page.getByLabel("Time zone").inputValue(), "Europe/Paris");
  assert.equal(await page.getByLabel("From", { exact: true }).inputValue(), "22:30");
  assert.equal(await page.getByLabel("Until", { exact: true }).inputValue(), "07:00");
  assert.equal(await page.getByLabel("SMS", { exact: true }).isChecked(), false);
  assert.equal(await page.getByLabel("Accept its advertisements").isChecked(), true);
  await shoot(page, "preferences");

  await page.goto(`${PORTAL}/connected`);
  await page.getByRole("button", { name: "Revoke access of Photo printer" }).click();
  await page.getByText("Access revoked for").waitFor();
  assert.equal(await page.getByRole("listitem").filter({ hasText: "Photo printer" }).count(), 0);
  await shoot(page, "connected-revoked");
  let status;
  for (let i = 0; i < 50 && (status = await me()) !== 401; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(status, 401, "the revoked application's token is refused");

  // Signing out ends the portal session: its pages send her to sign in again.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "You are signed out" }).waitFor();
  await shoot(page, "signed-out");
  const after = await page.request.get(`${PORTAL}/applications`, { maxRedirects: 0 });
  assert.equal(after.status(), 303);
  assert.match(after.headers().location, /^\/portal\/sign-in/);
  await context.close();
});

test("a newcomer from a partner's Log in with link signs up, consents, lands back and confirms the e-mail", async () => {
  const context = await person();
  const page = await context.newPage();
  let authKey;
  await page.route(`${PARTNER_CALLBACK}**`, (route) => {
    authKey = new URL(route.request().url()).searchParams.get("auth_key");
    route.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><title>Partner</title><p>Welcome at the partner</p>" });
  });
  await page.goto(`${GATEWAY}/api/oauth?app_id=${app.id}&state=n1`);
  await page.getByRole("link", { name: "Create an account" }).click();
  await page.getByRole("heading", { name: "Create an account" }).waitFor();
  await shoot(page, "sign-up");
  await page.getByLabel("Username").fill("nora");
  await page.getByLabel("E-mail address").fill("nora@example.com");
  await page.getByLabel("Password").fill("password1");
  await page.getByRole("button", { name: "Create account" }).click();
  assert.equal(await page.getByLabel("Password").getAttribute("aria-invalid"), "true");
  assert.match(await page.locator("#password-error").innerText(), /Too easy to guess/);
  assert.equal(await page.getByLabel("Username").inputValue(), "nora", "what was typed is kept");
  await shoot(page, "sign-up-errors");
  await page.getByLabel("Password").fill("kettle ostrich violin morning");
  await page.getByRole("button", { name: "Create account" }).click();
  // The authorization that sent her continues: consent, then back at the partner.
  await page.getByRole("button", { name: "Allow" }).click();
  await page.getByText("Welcome at the partner").waitFor();
  assert.ok(authKey, "seed 003's auth_key reached the partner");
  const exchanged = await fetch(`${GATEWAY}/api/authorize?app_id=${app.id}&app_secret=${app.secret}&auth_key=${authKey}`);
  assert.equal(exchanged.status, 200);
  const token = (await exchanged.json()).access_token;
  const verifiedFlag = async () => {
    const info = await fetch(`${GATEWAY}/api/get_user_info?access_token=${token}`).then((r) => r.json());
    return info.user_info?.user_verified;
  };
  let flag;
  for (let i = 0; i < 50 && (flag = await verifiedFlag()) === undefined; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(flag, "0", "not verified before the link is opened");

  // The confirmation e-mail went through notification-dispatch's e-mail channel; make run's
  // sandbox puts it in her inbox, which the portal shows.
  await page.goto(`${PORTAL}/notifications`);
  const mail = page.getByRole("listitem").filter({ hasText: "Confirm your e-mail address" });
  for (let i = 0; i < 50 && (await mail.count()) === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    await page.reload();
  }
  assert.match(await mail.innerText(), /sandbox stand-in for EMAIL/);
  const link = await mail.getByRole("link").getAttribute("href");
  await mail.getByRole("link").click();
  await page.getByRole("heading", { name: "Your e-mail address is confirmed" }).waitFor();
  await shoot(page, "email-confirmed");
  for (let i = 0; i < 50 && (flag = await verifiedFlag()) !== "1"; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(flag, "1", "seed 003's user_verified");
  const again = await page.goto(link);
  assert.equal(again.status(), 400, "the link works once");
  await context.close();
});

test("the registration platform deletes the application after confirming", async () => {
  const context = await person();
  const page = await context.newPage();
  await page.goto(`${PORTAL}/applications/${app.id}`);
  await signInAtAuth(page, BOB);
  await page.waitForURL(`${PORTAL}/applications/${app.id}`);
  // Usage rose with the partner's calls (GET /users/me for Alice, POST /Services).
  await page.getByRole("link", { name: "See usage" }).click();
  let perApi = "";
  for (let i = 0; i < 50 && !/\/Services/.test(perApi); i++) {
    await page.reload();
    perApi = await page.locator("section", { has: page.getByRole("heading", { name: "Per API" }) }).innerText();
    if (!/\/Services/.test(perApi)) await new Promise((r) => setTimeout(r, 200));
  }
  assert.match(perApi, /\/users\s+[1-9]/, "the partner's profile reads are counted");
  assert.match(perApi, /\/Services\s+[1-9]\d*\s+1\s/, "the POST /Services refused for its old token is a 4xx");
  await shoot(page, "usage");
  await page.getByRole("link", { name: "Last 30 days" }).click();
  assert.equal(await page.locator("section", { has: page.getByRole("heading", { name: "Per day" }) }).locator("tbody tr").count(), 30);
  await page.goto(`${PORTAL}/applications/${app.id}`);
  await page.getByRole("link", { name: "Delete this application…" }).click();
  await shoot(page, "delete-application");
  await page.getByRole("button", { name: "Delete the application" }).click();
  await page.waitForURL(`${PORTAL}/applications`);
  assert.equal(await page.getByText("Photo printer").count(), 0);
  assert.equal(curlToken(app.id, app.secret), 401, "a deleted application's secret is refused");
  await context.close();
});

test("no secret shown in the portal ever reaches the logs", () => {
  const log = readFileSync(logFile, "utf8");
  assert.ok(log.includes("application created in the portal"), "the log was captured");
  assert.ok(log.includes("signed out of the portal"), "a sign-out happened");
  assert.ok(!log.includes("a token was not revoked at sign-out"), `signing out revoked the tokens: ${log.split("\n").filter((l) => l.includes("not revoked")).join("\n")}`);
  for (const secret of secretsSeen) assert.ok(!log.includes(secret), "a client secret is in the platform's log");
});
