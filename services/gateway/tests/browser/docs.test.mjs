// The API reference page as a partner reads it: a real headless Chromium opens /docs on a
// gateway in front of a real auth, follows the navigation, and opens the OpenAPI document the
// page links to. The screenshot lands in target/screenshots/ for a human to look at.
//
// Needs: `target/debug/auth` and `target/debug/gateway` built, Debian's chromium (CHROMIUM
// overrides /usr/bin/chromium).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const ROOT = resolve(import.meta.dirname, "../../../..");
const AUTH_PORT = 19000 + Math.floor(Math.random() * 500);
const GATEWAY_PORT = AUTH_PORT + 500;
const GATEWAY = `http://127.0.0.1:${GATEWAY_PORT}`;
const SHOTS = join(ROOT, "target/screenshots");

let servers = [], browser, dataDir;

async function ready(base, name) {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not become ready`);
}

function run(binary, env) {
  const child = spawn(join(ROOT, "target/debug", binary), [], {
    env: { ...process.env, RUST_LOG: "warn", ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  servers.push(child);
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "gateway-browser-"));
  mkdirSync(SHOTS, { recursive: true });
  run("auth", {
    AUTH_HTTP__PORT: String(AUTH_PORT),
    AUTH_DATABASE__URL: `sqlite://${dataDir}/auth.db`,
  });
  const config = join(dataDir, "gateway.toml");
  writeFileSync(
    config,
    `[docs]\npublic_url = "https://api.example.com"\nsources = [{ name = "auth", url = "http://127.0.0.1:${AUTH_PORT}/openapi.json" }]\n`,
  );
  run("gateway", { GATEWAY_HTTP__PORT: String(GATEWAY_PORT), GATEWAY_CONFIG_FILE: config });
  await ready(`http://127.0.0.1:${AUTH_PORT}`, "auth");
  await ready(GATEWAY, "gateway");
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  for (const server of servers) server.kill("SIGTERM");
  rmSync(dataDir, { recursive: true, force: true });
});

test("a partner reads the API reference and reaches the OpenAPI document from it", async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  const response = await page.goto(`${GATEWAY}/docs`);
  assert.equal(response.status(), 200);
  assert.equal(await page.title(), "API reference · Partner API platform");
  assert.match(await page.locator("header").innerText(), /Base URL: https:\/\/api\.example\.com/);

  // Every service's operations are there, grouped by tag, with their method.
  const token = page.locator("section.op", { has: page.locator("code", { hasText: /^\/oauth2\/token$/ }) });
  assert.equal(await token.count(), 1);
  assert.equal(await token.locator(".m").innerText(), "POST");
  assert.match(await token.innerText(), /401/);
  await page.screenshot({ path: join(SHOTS, "docs-1-top.png") });

  // The navigation leads to a tag's section.
  await page.getByRole("link", { name: "applications", exact: true }).click();
  assert.match(page.url(), /#tag-applications$/);
  assert.ok(await page.locator("#tag-applications").isVisible());
  const create = page.locator("#post-_applications");
  assert.ok(await create.isVisible());
  assert.match(await create.innerText(), /Creates an/);
  await page.screenshot({ path: join(SHOTS, "docs-2-applications.png") });
  await page.screenshot({ path: join(SHOTS, "docs-3-full.png"), fullPage: true });

  assert.deepEqual(errors, [], "no script errors, no blocked resources");

  // The document client generators read, linked from the page. (Chromium asks the JSON
  // viewer's /favicon.ico of the gateway, which has none: only the page itself is checked.)
  await page.getByRole("link", { name: "OpenAPI 3.1 document" }).click();
  const doc = JSON.parse(await page.locator("body").innerText());
  assert.equal(doc.servers[0].url, "https://api.example.com");
  assert.ok(doc.paths["/oauth2/token"] && doc.paths["/docs"]);
  await page.goBack();
  await page.getByRole("link", { name: "Swagger 2.0" }).click();
  const swagger = JSON.parse(await page.locator("body").innerText());
  assert.equal(swagger.swagger, "2.0");
  assert.equal(swagger.host, "api.example.com");
});
