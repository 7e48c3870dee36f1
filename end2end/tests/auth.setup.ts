import { expect, test as setup } from "@playwright/test";
import { ACCOUNTS, PASSWORD, type RoleName, addUser, storageFor } from "./accounts";

// One account per role, each signed in once through the real form; the
// cookies are saved for the tests.
for (const role of Object.keys(ACCOUNTS) as RoleName[]) {
  setup(`sign in as ${role}`, async ({ page }) => {
    addUser(ACCOUNTS[role], role);
    await page.goto("/login");
    await page.getByTestId("username").fill(ACCOUNTS[role]);
    await page.getByTestId("password").fill(PASSWORD);
    await page.getByTestId("sign-in").click();
    await expect(page).toHaveURL(/\/$/);
    await expect(page.getByTestId("role")).toHaveText(role);
    await page.context().storageState({ path: storageFor(role) });
  });
}
