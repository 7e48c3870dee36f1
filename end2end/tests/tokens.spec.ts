import { expect, request as apiRequest, test } from "./fixtures";
import { baseURL } from "./accounts";

// Signed in as the operator (the project's default): a personal access
// token made on the Tokens page works with /v1 until it is revoked.
test("a token made on the Tokens page works on /v1, and stops the moment it is revoked", async ({ page }) => {
  await page.goto("/tokens");
  await page.locator('body[data-hydrated="true"]').waitFor();
  // Roles offered: the operator's own and lower.
  await expect(page.getByTestId("token-role").locator("option")).toHaveText(["viewer", "operator"]);
  await page.getByTestId("token-name").fill("e2e script");
  await page.getByTestId("token-role").selectOption("operator");
  await page.getByTestId("token-days").fill("7");
  await page.getByTestId("token-create").click();
  const secret = (await page.getByTestId("token-secret").textContent())!.trim();
  expect(secret).toMatch(/^bb_[0-9a-f]{12}_[0-9a-f]{64}$/);
  const id = secret.split("_")[1];
  const row = page.locator(`[data-testid="token-row"][data-id="${id}"]`);
  await expect(row).toContainText("e2e script");
  await expect(row).toHaveAttribute("data-live", "true");

  // A script, with no cookie: the token alone.
  const script = await apiRequest.newContext({ baseURL: baseURL(), storageState: { cookies: [], origins: [] } });
  const auth = { authorization: `Bearer ${secret}` };
  const listed = await script.get("/v1/batches?limit=1", { headers: auth });
  expect(listed.status(), await listed.text()).toBe(200);
  expect((await listed.json()).object).toBe("list");

  // Its last use is noted (written just after the answer).
  await expect(async () => {
    await page.reload();
    await page.locator('body[data-hydrated="true"]').waitFor();
    await expect(row).toContainText("127.0.0.1", { timeout: 500 });
  }).toPass({ timeout: 10_000 });
  await row.getByTestId("token-revoke").click();
  await expect(row).toHaveAttribute("data-live", "false");
  await expect(row).toContainText("revoked");
  const after = await script.get("/v1/batches?limit=1", { headers: auth });
  expect(after.status()).toBe(401);
  expect((await after.json()).error.type).toBe("authentication_error");
  await script.dispose();
  // The secret is never shown again.
  await page.reload();
  await expect(page.getByTestId("token-secret")).toHaveCount(0);
  expect(await page.content()).not.toContain(secret.split("_")[2]);
});
