import { expect, request as apiRequest, test } from "./fixtures";
import { ACCOUNTS, PASSWORD, baseURL, storageFor } from "./accounts";

async function hydrated(page: import("@playwright/test").Page) {
  await page.locator('body[data-hydrated="true"]').waitFor();
}

/** Creates a batch as the operator, over HTTP like the form does. */
async function createAsOperator(lines: number) {
  const op = await apiRequest.newContext({ baseURL: baseURL(), storageState: storageFor("operator") });
  const body = Array.from({ length: lines }, (_, i) =>
    JSON.stringify({
      custom_id: `acc-${i}`,
      method: "POST",
      url: "/v1/chat/completions",
      body: { model: "gpt-4o-mini", messages: [{ role: "user", content: `x ${i}` }] },
    }),
  ).join("\n");
  const resp = await op.post("/api/batches", {
    headers: { origin: baseURL() },
    multipart: {
      endpoint: "/v1/chat/completions",
      file: { name: "acc.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(body) },
    },
  });
  expect(resp.status(), await resp.text()).toBe(200);
  const batch = (await resp.json()) as { id: string };
  await op.dispose();
  return batch;
}

test.describe("signed out", () => {
  test.use({ storageState: { cookies: [], origins: [] } });

  test("sign in through the form, land where you were going, sign out", async ({ page }) => {
    await page.goto("/batches/new");
    await expect(page).toHaveURL(/\/login\?next=%2Fbatches%2Fnew$/);
    await expect(page.getByRole("navigation", { name: "Main" })).toHaveCount(0);
    await page.getByTestId("username").fill(ACCOUNTS.operator);
    await page.getByTestId("password").fill("not the password");
    await page.getByTestId("sign-in").click();
    await expect(page.getByTestId("login-error")).toHaveText("Wrong name or password.");
    await page.getByTestId("username").fill(ACCOUNTS.operator);
    await page.getByTestId("password").fill(PASSWORD);
    await page.getByTestId("sign-in").click();
    await expect(page).toHaveURL(/\/batches\/new$/);
    await expect(page.getByTestId("who")).toContainText(ACCOUNTS.operator);
    await hydrated(page);
    await page.getByTestId("sign-out").click();
    await expect(page).toHaveURL(/\/login$/);
    await page.goto("/");
    await expect(page).toHaveURL(/\/login\?next=%2F$/);
  });
});

test.describe("viewer", () => {
  test.use({ storageState: storageFor("viewer") });

  test("sees batches and who made them, but no create or cancel", async ({ page }) => {
    const batch = await createAsOperator(300);
    await page.goto("/");
    await hydrated(page);
    const nav = page.getByRole("navigation", { name: "Main" });
    await expect(nav.getByRole("link", { name: "Batches" })).toBeVisible();
    await expect(nav.getByRole("link", { name: "New batch" })).toHaveCount(0);
    await expect(page.getByTestId("role")).toHaveText("viewer");
    const row = page.locator(`[data-testid="batch-row"][data-id="${batch.id}"]`);
    await expect(row.getByTestId("created-by")).toHaveText(ACCOUNTS.operator);
    await page.goto(`/batches/${batch.id}`);
    await hydrated(page);
    await expect(page.getByTestId("status")).toHaveAttribute("data-status", /validating|in_progress/);
    await expect(page.getByTestId("cancel")).toHaveCount(0);
    await page.goto("/batches/new");
    await expect(page.getByTestId("needs-role")).toContainText("operator");
  });
});

test.describe("admin", () => {
  test.use({ storageState: storageFor("admin") });

  test("reads the audit log: sign-ins and creates, filterable", async ({ page }) => {
    const batch = await createAsOperator(1);
    await page.goto("/");
    await hydrated(page);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit log" }).click();
    await expect(page).toHaveURL(/\/audit$/);
    const table = page.getByTestId("audit-table");
    await expect(table.locator('[data-action="sign_in"]').first()).toBeVisible();
    await page.getByRole("navigation", { name: "Filter" }).getByRole("link", { name: "create", exact: true }).click();
    await expect(page).toHaveURL(/action=create/);
    const rows = table.getByTestId("audit-row");
    await expect(rows.first()).toHaveAttribute("data-action", "create");
    await expect(table).toContainText(batch.id);
    expect(await rows.evaluateAll((els) => els.every((e) => e.getAttribute("data-action") === "create"))).toBe(true);
  });
});
