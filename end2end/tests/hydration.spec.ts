import { expect, test, type BrowserContext } from "./fixtures";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { dataDir } from "./accounts";

/** Opens `url` in `n` fresh tabs, each until it has hydrated (and shows
 * `ready`). The suite's fixture fails the test on any console or page error
 * in any of them: a hydration mismatch shows up as both. */
async function freshLoads(context: BrowserContext, url: string, n: number, ready?: string) {
  for (let i = 0; i < n; i++) {
    const p = await context.newPage();
    await p.goto(url);
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

  await freshLoads(context, batchPage, 20, "result-row");
  await freshLoads(context, "/", 20);
  await freshLoads(context, "/batches/new", 20);
});
