import { expect, test, type BrowserContext } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { dataDir } from "./accounts";

/** Opens `url` in `n` fresh tabs; returns every console error and page
 * error they logged (a hydration mismatch shows up as both). */
async function freshLoads(context: BrowserContext, url: string, n: number, ready?: string) {
  const problems: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = await context.newPage();
    p.on("console", (m) => { if (m.type() === "error") problems.push(`${url} #${i}: ${m.text().slice(0, 300)}`); });
    p.on("pageerror", (e) => problems.push(`${url} #${i}: page error ${e.message}`));
    await p.goto(url);
    await p.locator('body[data-hydrated="true"]').waitFor();
    if (ready) await expect(p.getByTestId(ready).first()).toBeVisible();
    await p.close();
  }
  return problems;
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

  const problems = [
    ...(await freshLoads(context, batchPage, 20, "result-row")),
    ...(await freshLoads(context, "/", 20)),
    ...(await freshLoads(context, "/batches/new", 20)),
  ];
  expect(problems).toEqual([]);
});
