import { expect, test } from "./fixtures";
import { ACCOUNTS, PASSWORD, addUser, signIn, storageFor } from "./accounts";

// The admin's Sessions page: everyone signed in, and "End session", which
// signs that one session out at its next request.

test.use({ storageState: storageFor("admin") });

test("an admin sees who is signed in and ends one session", async ({ page, browser }) => {
  // A viewer of its own, signed in through the form in a browser of its own.
  addUser("sessions-vi", "viewer");
  const other = await browser.newContext({ storageState: { cookies: [], origins: [] } });
  const viewer = await other.newPage();
  await signIn(viewer, "sessions-vi", PASSWORD);
  await expect(viewer).toHaveURL(/\/$/);

  await page.goto("/");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sessions" }).click();
  await expect(page).toHaveURL(/\/sessions$/);
  await page.locator('body[data-hydrated="true"]').waitFor();
  const mine = page.locator(`[data-testid=session-row][data-current=true]`);
  await expect(mine).toHaveCount(1);
  await expect(mine).toHaveAttribute("data-user", ACCOUNTS.admin);
  const row = page.locator(`[data-testid=session-row][data-user=sessions-vi]`);
  await expect(row).toHaveCount(1);
  await expect(row).toContainText("127.0.0.1");

  await row.getByTestId("end-session").click();
  await expect(page.getByTestId("session-result")).toContainText("Ended.");
  await expect(row).toHaveCount(0);
  // The viewer's next request finds no session: back to signing in.
  await viewer.goto("/");
  await expect(viewer).toHaveURL(/\/login\?next=/);
  // The admin's own session goes on.
  await page.reload();
  await expect(mine).toHaveCount(1);
  await other.close();
});

test.describe("as a viewer", () => {
  test.use({ storageState: storageFor("viewer") });
  test("the Sessions page is an admin's only", async ({ page, allowConsole }) => {
    // The server function refuses on purpose: the browser logs the 403.
    allowConsole(/status of 403/);
    await page.goto("/sessions");
    await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sessions" })).toHaveCount(0);
    await expect(page.getByTestId("sessions-error")).toBeVisible();
    await expect(page.getByTestId("sessions-table")).toHaveCount(0);
  });
});
