import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test, type Page } from "./fixtures";
import { baseURL, dataDir, storageFor } from "./accounts";

const chat = (id: string) =>
  JSON.stringify({
    custom_id: id, method: "POST", url: "/v1/chat/completions",
    body: { model: "gpt-4o-mini", max_completion_tokens: 50,
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: `hi ${id}` }] },
  });

const unlimited = (n: number) =>
  Buffer.from(Array.from({ length: n }, (_, i) => chat(`u${i}`).replace(',"max_completion_tokens":50', "")).join("\n") + "\n");

const file = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => chat(`s${i}`)).join("\n") + "\n");

/** Creates a batch of team `team` as the page's user; answers its id. */
async function create(page: Page, team: string, n: number): Promise<string> {
  const r = await page.request.post("/api/batches", {
    headers: { origin: baseURL() },
    multipart: {
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: JSON.stringify({ team }),
      file: { name: `${team}.jsonl`, mimeType: "application/jsonl", buffer: file(n) },
    },
  });
  expect(r.status(), await r.text()).toBe(200);
  return (await r.json()).id;
}

/** The batch's final cost, once it completed with its usage. */
async function finalCost(page: Page, id: string): Promise<number> {
  let usd = -1;
  await expect(async () => {
    const r = await page.request.post("/api/get_batch_cost", { headers: { origin: baseURL() }, form: { id } });
    const c = await r.json();
    expect(c?.basis).toBe("usage");
    expect(c?.upper_usd).toBeNull();
    usd = c.usd;
  }).toPass({ timeout: 60_000 });
  return usd;
}

const budgets = () => join(dataDir(), "budgets.toml");

test.afterEach(() => writeFileSync(budgets(), ""));

test("the spend page: its chart and table agree, hover shows values, the CSV downloads, and it reads without JavaScript", async ({ page, browser }) => {
  const a = await create(page, "e2e-spend-a", 3);
  const b = await create(page, "e2e-spend-b", 2);
  const costA = await finalCost(page, a);
  const costB = await finalCost(page, b);
  expect(costA).toBeGreaterThan(0);

  await page.goto("/spend?group=team&period=day");
  await page.locator('body[data-hydrated="true"]').waitFor();
  const rowA = page.locator('[data-testid="spend-row"][data-group="e2e-spend-a"]');
  const rowB = page.locator('[data-testid="spend-row"][data-group="e2e-spend-b"]');
  expect(Number(await rowA.getAttribute("data-usd"))).toBeCloseTo(costA, 9);
  expect(Number(await rowB.getAttribute("data-usd"))).toBeCloseTo(costB, 9);

  // Every bar is the table's cell for its group and period; per period the
  // bars add up to the table's column (the small groups share "others").
  const bars = await page.getByTestId("spend-bar").evaluateAll((els) =>
    els.map((e) => ({ group: e.getAttribute("data-group")!, period: e.getAttribute("data-period")!, usd: Number(e.getAttribute("data-usd")) })));
  const cells = await page.getByTestId("spend-cell").evaluateAll((els) =>
    els.map((e) => ({ group: e.getAttribute("data-group")!, period: e.getAttribute("data-period")!, usd: Number(e.getAttribute("data-usd")) })));
  expect(bars.length).toBeGreaterThan(0);
  const sumBy = (xs: { period: string; usd: number }[]) =>
    xs.reduce<Record<string, number>>((m, x) => ({ ...m, [x.period]: (m[x.period] ?? 0) + x.usd }), {});
  const barSums = sumBy(bars);
  const cellSums = sumBy(cells);
  for (const [period, usd] of Object.entries(barSums)) expect(usd).toBeCloseTo(cellSums[period], 9);
  for (const bar of bars) {
    const cell = cells.find((c) => c.group === bar.group && c.period === bar.period);
    if (cell) expect(bar.usd).toBeCloseTo(cell.usd, 9);
  }
  const total = Number(await page.getByTestId("spend-total").getAttribute("data-usd"));
  const rows = await page.getByTestId("spend-row").evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-usd"))));
  expect(rows.reduce((x, y) => x + y, 0)).toBeCloseTo(total, 9);

  // Hydrated: the value under the pointer is written below the chart (the
  // tallest bar: other tests' batches may dwarf ours to a sliver).
  const tallest = bars.reduce((a, b) => (b.usd > a.usd ? b : a));
  await page.locator(`[data-testid="spend-bar"][data-group="${tallest.group}"][data-period="${tallest.period}"]`).hover();
  await expect(page.getByTestId("spend-hover")).toContainText(`${tallest.group} · ${tallest.period}: `);

  // The CSV, by its link.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("spend-csv").click()]);
  expect(download.suggestedFilename()).toBe("spend.csv");
  const csv = readFileSync(await download.path(), "utf8") as string;
  const lines = csv.trim().split("\n");
  expect(lines[0]).toMatch(/^team,batches,input_tokens,cached_tokens,output_tokens,reasoning_tokens,estimated_usd,usd,/);
  const line = lines.find((l) => l.startsWith("e2e-spend-a,"))!;
  expect(Number(line.split(",")[7])).toBeCloseTo(costA, 6);

  // Without JavaScript: the chart (its values in titles) and the table.
  const plain = await browser.newContext({ javaScriptEnabled: false, storageState: storageFor("operator") });
  const p = await plain.newPage();
  await p.goto("/spend?group=team&period=day");
  await expect(p.locator('[data-testid="spend-row"][data-group="e2e-spend-a"]')).toHaveCount(1);
  await expect(p.locator('[data-testid="spend-bar"][data-group="e2e-spend-a"] title').first()).toHaveText(/^e2e-spend-a · \d{4}-\d\d-\d\d: /);
  await plain.close();
});

test("the table's Cost cell fills in live when a batch completes, as the server prices it", async ({ page }) => {
  await page.goto("/?meta_key=team&meta_value=e2e-rowcost");
  await page.locator('body[data-hydrated="true"]').waitFor();
  const id = await create(page, "e2e-rowcost", 60);
  const row = page.locator(`[data-testid="batch-row"][data-id="${id}"]`);
  // Seen before it ended (priced by the usage so far, if any), then
  // completed in place, at its whole cost.
  await expect(row).toHaveCount(1);
  expect(await row.getByTestId("status").getAttribute("data-status")).not.toBe("completed");
  const running = Number((await row.getByTestId("row-cost").getAttribute("data-usd")) ?? 0);
  await expect(row.getByTestId("status")).toHaveAttribute("data-status", "completed", { timeout: 30_000 });
  const cost = await finalCost(page, id);
  expect(running).toBeLessThan(cost);
  await expect.poll(async () => Number(await row.getByTestId("row-cost").getAttribute("data-usd"))).toBeCloseTo(cost, 12);
  const shown = await row.getByTestId("row-cost").textContent();
  // The page as the server renders it says the same.
  await page.reload();
  await expect(row.getByTestId("row-cost")).toHaveText(shown!);
  expect(Number(await row.getByTestId("row-cost").getAttribute("data-usd"))).toBeCloseTo(cost, 12);
});

test("a batch that would pass its team's budget is refused with the numbers, and nothing is created", async ({ page, allowConsole }) => {
  allowConsole(/status of 403/);
  // Three requests without an output limit: each may answer up to the
  // model's limit, so the batch could cost more than a cent.
  writeFileSync(budgets(), '[budgets.teams]\n"e2e-poor" = 0.01\n');
  await page.goto("/batches/new");
  await page.locator('body[data-hydrated="true"]').waitFor();
  await page.getByTestId("file").setInputFiles({ name: "poor.jsonl", mimeType: "application/jsonl", buffer: unlimited(3) });
  await expect(page.getByTestId("file-check")).toHaveAttribute("data-ok", "true");
  await page.getByTestId("meta-key").first().fill("team");
  await page.getByTestId("meta-value").first().fill("e2e-poor");
  await page.getByTestId("create").click();
  await expect(page.getByTestId("upload-error")).toContainText(
    /^This batch could cost up to \$0\.01\d\d; team e2e-poor has \$0\.0100 left of \$0\.0100 in \d{4}-\d\d\. Nothing was created\./);
  await expect(page).toHaveURL(/\/batches\/new$/);
  // Nothing was created under that team.
  await page.goto("/?meta_key=team&meta_value=e2e-poor");
  await expect(page.getByTestId("match-count")).toHaveText("No batches match");
  // The spend page shows the budget, spent or not.
  await page.goto("/spend");
  await expect(page.locator('[data-testid="budget"][data-name="e2e-poor"]')).toHaveAttribute("data-level", "0");
});

test.describe("as an admin", () => {
  test.use({ storageState: storageFor("admin") });

  test("budgets are set and removed on the Budgets page, and kept in the budgets file", async ({ page }) => {
    await page.goto("/budgets");
    await page.locator('body[data-hydrated="true"]').waitFor();
    await page.getByTestId("budget-scope").selectOption("team");
    await page.getByTestId("budget-name").fill("e2e-team");
    await page.getByTestId("budget-limit").fill("250");
    await page.getByTestId("budget-set").click();
    const row = page.locator('[data-testid="budget-row"][data-name="e2e-team"]');
    await expect(row).toContainText("$250.00");
    expect(readFileSync(budgets(), "utf8")).toContain('e2e-team = 250');
    await row.getByTestId("budget-remove").click();
    await expect(row).toHaveCount(0);
  });
});
