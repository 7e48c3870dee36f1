import { storageFor } from "./accounts";
import { expect, test, type APIRequestContext, type Page } from "./fixtures";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const fixture = (name: string) => join(__dirname, "..", "fixtures", name);

function chatLines(n: number, prefix: string): string {
  return Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      custom_id: `${prefix}-${i}`,
      method: "POST",
      url: "/v1/chat/completions",
      body: { model: "gpt-4o-mini", messages: [{ role: "user", content: `item ${i}` }] },
    }),
  ).join("\n") + "\n";
}

/** Creates a batch through the server's upload route (real HTTP). */
async function createViaApi(request: APIRequestContext, content: string, name = "api.jsonl") {
  const resp = await request.post("/api/batches", {
    // What a browser sends from our own pages; the server refuses others.
    headers: { origin: new URL(request_base()).origin },
    multipart: {
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: JSON.stringify({ origin: "e2e" }),
      file: { name, mimeType: "application/jsonl", buffer: Buffer.from(content) },
    },
  });
  expect(resp.status(), await resp.text()).toBe(200);
  return (await resp.json()) as { id: string; status: string };
}

function request_base() {
  return `http://127.0.0.1:${process.env.E2E_PORT ?? 3300}`;
}

async function hydrated(page: Page) {
  await page.locator('body[data-hydrated="true"]').waitFor();
}

test.describe.configure({ mode: "serial" });

test("create a batch through the form, watch it complete live, download matching results", async ({ page }) => {
  await page.goto("/batches/new");
  await hydrated(page);
  await page.getByTestId("file").setInputFiles(fixture("chat-6.jsonl"));
  await expect(page.getByTestId("endpoint")).toHaveValue("/v1/chat/completions");
  await page.getByTestId("meta-key").first().fill("team");
  await page.getByTestId("meta-value").first().fill("search");
  await page.getByTestId("create").click();

  // The app navigates to the new batch's page by itself.
  await expect(page).toHaveURL(/\/batches\/batch_[0-9a-f]+$/);
  await page.evaluate(() => ((window as any).__noReload = true));
  const status = page.getByTestId("status");
  await expect(status).toHaveAttribute("data-status", /validating|in_progress|finalizing|completed/);
  await expect(status).toHaveText("completed", { timeout: 30_000 });
  // Same document all along: the page updated itself, no reload.
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
  await expect(page.getByTestId("counts")).toHaveText("6 total, 6 completed, 0 failed");
  await expect(page.getByText("team")).toBeVisible();

  const link = page.getByTestId("download-output");
  const href = await link.getAttribute("href");
  const batchId = page.url().split("/").pop()!;
  const resp = await page.request.get(href!);
  expect(resp.status()).toBe(200);
  expect(resp.headers()["content-disposition"]).toBe(`attachment; filename="${batchId}_output.jsonl"`);
  const out = (await resp.text()).trim().split("\n").map((l) => JSON.parse(l));
  const inputs = readFileSync(fixture("chat-6.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  expect(out.map((l) => l.custom_id).sort()).toEqual(inputs.map((l) => l.custom_id).sort());
  for (const line of out) {
    const input = inputs.find((i) => i.custom_id === line.custom_id);
    expect(line.response.body.choices[0].message.content).toBe(`echo: ${input.body.messages[0].content}`);
  }

  // A real browser download too.
  const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
  expect(download.suggestedFilename()).toBe(`${batchId}_output.jsonl`);
});

test("cancel a running batch: cancelling, then cancelled", async ({ page, request }) => {
  const batch = await createViaApi(request, chatLines(400, "slow"));
  await page.goto(`/batches/${batch.id}`);
  await hydrated(page);
  await expect(page.getByTestId("status")).toHaveAttribute("data-status", "in_progress", { timeout: 15_000 });
  await page.getByTestId("cancel").click();
  // The question stays while progress arrives: the same button, still in the
  // page (and still asking) after the counts have moved on.
  const confirm = await page.getByTestId("confirm-cancel").elementHandle();
  const counts = await page.getByTestId("counts").textContent();
  await expect(page.getByTestId("counts")).not.toHaveText(counts!);
  expect(await confirm!.evaluate((b) => b.isConnected)).toBe(true);
  await page.getByTestId("confirm-cancel").click();
  await expect(page.getByTestId("status")).toHaveText(/cancelling|cancelled/);
  await expect(page.getByTestId("status")).toHaveText("cancelled", { timeout: 20_000 });
  await expect(page.getByTestId("cancel")).toHaveCount(0);
  await expect(page.getByTestId("download-error")).toBeVisible();
});

test("a malformed file is refused with its line number and nothing is created", async ({ page, request, allowConsole }) => {
  // The forced submit below is refused on purpose: the browser logs the 422.
  allowConsole(/status of 422/);
  const before = await request.get("/");
  const countBefore = ((await before.text()).match(/data-testid="batch-row"/g) ?? []).length;

  await page.goto("/batches/new");
  await hydrated(page);
  await page.getByTestId("file").setInputFiles(fixture("malformed.jsonl"));
  // Checked in the browser before any byte is uploaded.
  const check = page.getByTestId("check-errors");
  await expect(check).toContainText("Line 2");
  await expect(check).toContainText("invalid_json_line");
  await expect(check).toContainText("Line 3, custom_id");
  await expect(check).toContainText("duplicate_custom_id");
  await expect(page.getByTestId("file-check")).toHaveAttribute("data-ok", "false");
  await expect(page.getByTestId("create")).toBeDisabled();
  await expect(page.getByTestId("create-blocked")).toContainText("Fix the problems");

  // Forcing the button past the browser's check: the server checks again.
  await page.getByTestId("create").evaluate((b) => b.removeAttribute("disabled"));
  await page.getByTestId("create").click();
  const error = page.getByTestId("upload-error");
  await expect(error).toContainText("Line 2");
  await expect(error).toContainText("duplicate_custom_id");
  await expect(page).toHaveURL(/\/batches\/new$/);

  const after = await request.get("/");
  const countAfter = ((await after.text()).match(/data-testid="batch-row"/g) ?? []).length;
  expect(countAfter).toBe(countBefore);
});

test("the table pages through more batches than one page holds", async ({ page, request }) => {
  for (let i = 0; i < 12; i++) await createViaApi(request, chatLines(1, `page${i}`), `page-${i}.jsonl`);
  await page.goto("/?limit=10");
  await hydrated(page);
  const rows = page.getByTestId("batch-row");
  await expect(rows).toHaveCount(10);
  const firstPage = await rows.evaluateAll((els) => els.map((e) => e.getAttribute("data-id")));
  await page.getByTestId("next-page").click();
  await expect(page).toHaveURL(/offset=10/);
  await expect(rows.first()).not.toHaveAttribute("data-id", firstPage[0]!);
  const secondPage = await rows.evaluateAll((els) => els.map((e) => e.getAttribute("data-id")));
  expect(secondPage.length).toBeGreaterThan(0);
  expect(secondPage.filter((id) => firstPage.includes(id))).toEqual([]);
  await expect(page.getByTestId("last-heard")).toContainText("Upstream answered");
});

test("the table updates by itself while a batch runs", async ({ page, request }) => {
  await page.goto("/");
  await hydrated(page);
  const batch = await createViaApi(request, chatLines(30, "live"));
  const row = page.locator(`[data-testid="batch-row"][data-id="${batch.id}"]`);
  await expect(row).toBeVisible({ timeout: 15_000 });
  await expect(row.getByTestId("status")).toHaveText("completed", { timeout: 30_000 });
});

test("read pages render on the server without JavaScript", async ({ browser, request }) => {
  const batch = await createViaApi(request, chatLines(2, "nojs"));
  const context = await browser.newContext({ javaScriptEnabled: false, storageState: storageFor("operator") });
  const page = await context.newPage();
  await page.goto("/");
  await expect(page.getByTestId("batch-table")).toBeVisible();
  await page.goto(`/batches/${batch.id}`);
  await expect(page.getByTestId("batch-id")).toHaveText(batch.id);
  await expect(page.getByTestId("timeline")).toContainText("Created");
  await page.goto("/batches/batch_doesnotexist");
  await expect(page.getByTestId("batch-error")).toContainText("No batch found");
  await context.close();
});

test("filters, search and sort narrow the table, and the URL keeps them", async ({ page, request }) => {
  const tag = `filt${Date.now()}`;
  const a = await createViaApi(request, chatLines(1, `${tag}a`), `${tag}-alpha.jsonl`);
  await createViaApi(request, chatLines(1, `${tag}b`), `${tag}-beta.jsonl`);
  await page.goto("/");
  await hydrated(page);
  await page.getByTestId("filter-q").fill(`${tag}-alpha`);
  await page.getByTestId("filter-creator").selectOption("op");
  await page.getByTestId("apply-filters").click();
  await expect(page).toHaveURL(new RegExp(`q=${tag}-alpha.*creator=op|creator=op.*q=${tag}-alpha`));
  const rows = page.getByTestId("batch-row");
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toHaveAttribute("data-id", a.id);
  await expect(page.getByTestId("match-count")).toHaveText("1–1 of 1");
  // A search that matches nothing says so.
  await page.goto("/?q=no-such-batch-anywhere");
  await expect(page.getByTestId("match-count")).toHaveText("No batches match");
  // Sorting by model is a link that flips direction.
  await page.goto("/");
  await page.getByTestId("sort-model").click();
  await expect(page).toHaveURL(/sort=model&dir=desc/);
  await page.getByTestId("sort-model").click();
  await expect(page).toHaveURL(/sort=model&dir=asc/);
});
