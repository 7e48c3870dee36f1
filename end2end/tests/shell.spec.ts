import { storageFor } from "./accounts";
import { expect, test } from "./fixtures";

test.describe("page shell", () => {
  test("server renders the layout without JavaScript", async ({ browser }) => {
    const context = await browser.newContext({ javaScriptEnabled: false, storageState: storageFor("operator") });
    const page = await context.newPage();
    await page.goto("/");
    await expect(page).toHaveTitle("Batches · Batchboard");
    await expect(page.getByRole("navigation", { name: "Main" })).toContainText("Batches");
    const nav = page.getByRole("navigation", { name: "Main" });
    await expect(nav.getByRole("link", { name: "New batch" })).toBeVisible();
    // No key and no upstream URL: the built-in sandbox is the upstream, and
    // the footer says so (never a key).
    await expect(page.getByTestId("upstream")).toContainText("Sandbox");
    // A designed state, not a blank: the table or the empty state.
    await expect(page.getByTestId("batch-table").or(page.getByTestId("no-batches"))).toBeVisible();
    await context.close();
  });

  test("hydrates: the connection check runs a server function from the browser", async ({ page }) => {
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto("/");
    // The button only does something once the WASM bundle has hydrated the page.
    await page.locator('body[data-hydrated="true"]').waitFor();
    await expect(page.getByTestId("check-result")).toBeEmpty();
    await page.getByTestId("check-upstream").click();
    await expect(page.getByTestId("check-result")).toContainText(/Reachable \(\d+ ms\)/);
    expect(errors).toEqual([]);
  });

  test("client-side navigation keeps the page and marks the current link", async ({ page }) => {
    await page.goto("/");
    await page.locator('body[data-hydrated="true"]').waitFor();
    await page.evaluate(() => ((window as any).__marker = "same-document"));
    const nav = page.getByRole("navigation", { name: "Main" });
    await nav.getByRole("link", { name: "New batch" }).click();
    await expect(page).toHaveURL(/\/batches\/new$/);
    await expect(page.getByRole("heading", { level: 1 })).toHaveText("New batch");
    // Still the same document: the router navigated without a reload.
    expect(await page.evaluate(() => (window as any).__marker)).toBe("same-document");
    await expect(nav.getByRole("link", { name: "New batch" })).toHaveAttribute("aria-current", "page");
  });

  test("unknown paths get a 404 page", async ({ page, allowConsole }) => {
    // The page itself answers 404, which the browser logs.
    allowConsole(/status of 404/);
    const resp = await page.goto("/no/such/page");
    expect(resp?.status()).toBe(404);
    await expect(page.getByRole("heading", { level: 1 })).toHaveText("Page not found");
  });

  test("health endpoints answer", async ({ request }) => {
    const health = await request.get("/healthz");
    expect(health.status()).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    const ready = await request.get("/readyz");
    expect(ready.status()).toBe(200);
    expect((await ready.json()).ready).toBe(true);
  });
});
