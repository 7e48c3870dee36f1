import { expect, test, type BrowserContext } from "./fixtures";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { dataDir, signIn } from "./accounts";
import { OwnServer } from "./servers";

/** Opens `url` in `n` fresh tabs, each until it has hydrated (and shows
 * `ready`). The suite's fixture fails the test on any console or page error
 * in any of them: a hydration mismatch shows up as both. */
async function freshLoads(context: BrowserContext, url: string, n: number, ready?: string, log?: string) {
  for (let i = 0; i < n; i++) {
    const p = await context.newPage();
    const resp = await p.goto(url);
    // A page the server could not render fails here, with the server's
    // log, not after waiting for a hydration that cannot come. (Pages may
    // answer 404 while rendering: a missing page, results not found.)
    if (!resp || resp.status() >= 500) {
      const tail = log && existsSync(log) ? readFileSync(log, "utf8").slice(-4000) : "(no server log)";
      throw new Error(`${url} (tab ${i + 1}) answered ${resp?.status()}:\n${await resp?.text()}\nserver log:\n${tail}`);
    }
    await p.locator('body[data-hydrated="true"]').waitFor();
    if (ready) await expect(p.getByTestId(ready).first()).toBeVisible();
    await p.close();
  }
}

test("pages hydrate without an error in 20 fresh tabs each: a finished batch with results, the table, New batch", async ({ page, context }) => {
  test.setTimeout(180_000);
  // A finished batch with some failures: its page shows the results panel,
  // whose data the server renders and the browser takes over.
  const out = join(dataDir(), "hydration.jsonl");
  execFileSync(process.env.BATCHBOARD_BIN!, ["example-file", "--requests", "20", "--megabytes", "0.01", "--out", out, "--fail-every", "5"]);
  await page.goto("/batches/new");
  await page.locator('body[data-hydrated="true"]').waitFor();
  await page.getByTestId("file").setInputFiles(out);
  await expect(page.getByTestId("file-check")).toHaveAttribute("data-ok", "true");
  await page.getByTestId("create").click();
  await expect(page).toHaveURL(/\/batches\/batch_[0-9a-f]+$/);
  const batchPage = new URL(page.url()).pathname;
  await expect(page.getByTestId("status")).toHaveText("completed", { timeout: 60_000 });
  // Its progress over time, as the watcher saw it, drawn by the page.
  await expect(page.getByTestId("progress-chart")).toBeVisible();
  await expect(page.getByTestId("progress-rate")).toContainText("20 requests in");

  await freshLoads(context, batchPage, 20, "result-row");
  await freshLoads(context, "/", 20);
  await freshLoads(context, "/batches/new", 20);
});

test.describe("every page kind", () => {
  // A server of its own whose index holds made-up batches in every status.
  const own = new OwnServer(9);
  test.use({ storageState: { cookies: [], origins: [] }, baseURL: own.base });

  test("20 fresh tabs each: a batch in every status, the table with filters, New batch, the audit log, the jobs, a missing page", async ({ page, context, allowConsole }) => {
    test.setTimeout(600_000);
    // The missing page answers 404 on purpose; the browser logs that.
    allowConsole(/status of 404/);
    const dir = OwnServer.dataDir("batchboard-kinds-", [["boss", "admin"]]);
    const seeded = execFileSync(process.env.BATCHBOARD_BIN!, ["index-seed", "--count", "40", "--data-dir", dir], { encoding: "utf8" });
    const byStatus = new Map<string, string>();
    for (const l of seeded.trim().split("\n")) {
      const { batch } = JSON.parse(l);
      if (!byStatus.has(batch.status)) byStatus.set(batch.status, batch.id);
    }
    expect([...byStatus.keys()].sort()).toEqual(
      ["cancelled", "cancelling", "completed", "expired", "failed", "finalizing", "in_progress", "validating"]);
    const server = own.start(dir);
    try {
      await own.up();
      await signIn(page, "boss");
      await expect(page).toHaveURL(/\/$/);
      const log = join(dir, "server.log");
      for (const [status, id] of byStatus) {
        await test.step(`a ${status} batch`, () => freshLoads(context, `/batches/${id}`, 20, "status", log));
      }
      await test.step("the table with filters", () => freshLoads(context, "/?status=completed&q=a&sort=created&dir=asc", 20, undefined, log));
      await test.step("New batch", () => freshLoads(context, "/batches/new", 20, "file", log));
      await test.step("the audit log", () => freshLoads(context, "/audit", 20, undefined, log));
      await test.step("the jobs", () => freshLoads(context, "/jobs", 20, undefined, log));
      await test.step("spend", () => freshLoads(context, "/spend?period=day&group=model", 20, undefined, log));
      await test.step("budgets", () => freshLoads(context, "/budgets", 20, undefined, log));
      await test.step("a missing page", () => freshLoads(context, "/no/such/page", 20, undefined, log));
    } finally {
      server.kill("SIGKILL");
    }
  });
});
