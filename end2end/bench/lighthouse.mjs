// Lighthouse (mobile, its default throttling) on three pages of a signed-in
// server, plus what the pages cost to transfer, cold and warm. Used by
// scripts/lighthouse.sh, which starts the release server.
//   node lighthouse.mjs <base-url> <user> <password> <out-dir> <site-pkg-dir>
// Prints a markdown table and writes it to <out-dir>/summary.md; the
// Lighthouse reports (JSON) stay in <out-dir>.
import { chromium, request } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const [base, user, password, out, pkg] = process.argv.slice(2);
const here = dirname(fileURLToPath(import.meta.url));
const lighthouse = join(here, "..", "lighthouse", "node_modules", ".bin", "lighthouse");
const chromeFlags = "--headless=new --no-sandbox --disable-gpu --disable-background-networking --disable-component-update";

// Signed in through the real form; the cookie goes with every request.
const api = await request.newContext({ baseURL: base, extraHTTPHeaders: { origin: base } });
const signIn = await api.post("/auth/login", { form: { username: user, password, next: "/" }, maxRedirects: 0 });
if (signIn.status() !== 303) throw new Error(`sign-in answered ${signIn.status()}`);
const state = await api.storageState();
const cookie = state.cookies.map((c) => `${c.name}=${c.value}`).join("; ");

// A finished batch with results, for its page.
const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({
  custom_id: `lh-${i}`, method: "POST", url: "/v1/chat/completions",
  body: { model: "gpt-4o-mini", messages: [{ role: "user", content: `question ${i}` }] },
})).join("\n") + "\n";
const created = await api.post("/api/batches", {
  multipart: { endpoint: "/v1/chat/completions", file: { name: "lighthouse.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(lines) } },
});
if (created.status() !== 200) throw new Error(`create answered ${created.status()}: ${await created.text()}`);
const { id } = await created.json();
for (let i = 0; ; i++) {
  const r = await api.post("/api/get_batch", { form: { id } });
  if ((await r.json()).status === "completed") break;
  if (i > 600) throw new Error("the batch did not finish");
  await new Promise((r) => setTimeout(r, 200));
}

const pages = [["/", "table"], [`/batches/${id}`, "finished batch"], ["/batches/new", "New batch"]];
const rows = [];
for (const [path, name] of pages) {
  const file = join(out, `${name.replace(/ /g, "-")}.json`);
  execFileSync(lighthouse, [
    base + path, "--quiet", "--output=json", `--output-path=${file}`,
    "--only-categories=performance,accessibility,best-practices",
    `--chrome-flags=${chromeFlags}`, `--extra-headers=${JSON.stringify({ Cookie: cookie })}`,
  ], { env: { ...process.env, CHROME_PATH: process.env.CHROME_PATH ?? "/usr/bin/chromium" }, stdio: "inherit" });
  const r = JSON.parse(readFileSync(file, "utf8"));
  const score = (c) => Math.round(r.categories[c].score * 100);
  const failed = Object.values(r.audits)
    .filter((a) => a.score !== null && a.score < 1 && ["binary", "numeric"].includes(a.scoreDisplayMode) && a.details?.type !== "opportunity")
    .map((a) => a.id);
  rows.push({
    name, path,
    performance: score("performance"), accessibility: score("accessibility"), bestPractices: score("best-practices"),
    lcp: r.audits["largest-contentful-paint"].numericValue / 1000,
    tti: r.audits["interactive"].numericValue / 1000,
    bytes: r.audits["total-byte-weight"].numericValue,
    failed: failed.slice(0, 8),
  });
}

// What each page costs to load on a cold cache (and `/` again on a warm
// one), and which WASM files its first load fetched.
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", args: chromeFlags.split(" ").slice(1) });
const gz = (file) => gzipSync(readFileSync(join(pkg, file)), { level: 9 }).length;
const load = async (page, path) => {
  await page.goto(base + path);
  await page.locator('body[data-hydrated="true"]').waitFor();
  return page.evaluate(() => {
    const all = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
    return {
      bytes: all.reduce((n, e) => n + (e.transferSize || 0), 0),
      wasm: all.filter((e) => new URL(e.name).pathname.endsWith(".wasm"))
        .map((e) => ({ file: new URL(e.name).pathname.split("/").pop(), sent: e.encodedBodySize })),
    };
  });
};
const firstLoads = [];
let cold = 0, warm = 0;
for (const [path, name] of pages) {
  const context = await browser.newContext({ storageState: state });
  const page = await context.newPage();
  const first = await load(page, path);
  firstLoads.push({
    name,
    files: first.wasm.length,
    sent: first.wasm.reduce((n, w) => n + w.sent, 0),
    gz: first.wasm.reduce((n, w) => n + gz(w.file), 0),
  });
  if (path === "/") {
    cold = first.bytes;
    warm = (await load(page, path)).bytes;
  }
  await context.close();
}
await browser.close();

// The WASM files of the build: gzip -9 size of each.
const wasm = readdirSync(pkg).filter((f) => f.endsWith(".wasm")).map((f) => ({
  f, raw: statSync(join(pkg, f)).size, gz: gz(f),
}));
const kb = (n) => `${(n / 1000).toFixed(0)} KB`;
const totalGz = wasm.reduce((n, w) => n + w.gz, 0);
const largestGz = Math.max(...wasm.map((w) => w.gz));

const table = [
  "| page | performance | accessibility | best practices | LCP | time to interactive | bytes (Lighthouse) | audits not passed |",
  "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ...rows.map((r) => `| ${r.name} (\`${r.path.replace(id, ":id")}\`) | ${r.performance} | ${r.accessibility} | ${r.bestPractices} | ${r.lcp.toFixed(1)} s | ${r.tti.toFixed(1)} s | ${kb(r.bytes)} | ${r.failed.join(", ") || "—"} |`),
  "",
  "| page | WASM of its first load, gzip -9 | as sent (brotli) | files |",
  "| --- | --- | --- | --- |",
  ...firstLoads.map((f) => `| ${f.name} | ${kb(f.gz)} | ${kb(f.sent)} | ${f.files} |`),
  "",
  `- \`/\` transferred: ${kb(cold)} on a cold cache, ${kb(warm)} on a warm one.`,
  `- WASM of the build, gzip -9: ${kb(totalGz)} in all (${wasm.length} file${wasm.length === 1 ? "" : "s"}, ${kb(wasm.reduce((n, w) => n + w.raw, 0))} uncompressed); the largest file ${kb(largestGz)}.`,
].join("\n");
writeFileSync(join(out, "summary.md"), table + "\n");
console.log(table);
await api.dispose();
