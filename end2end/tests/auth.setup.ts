import { expect, test as setup } from "@playwright/test";
import { ACCOUNTS, type RoleName, addUser, signIn, storageFor } from "./accounts";

// One account per role, each signed in once through the real form; the
// cookies are saved for the tests.
for (const role of Object.keys(ACCOUNTS) as RoleName[]) {
  setup(`sign in as ${role}`, async ({ page }) => {
    addUser(ACCOUNTS[role], role);
    await signIn(page, ACCOUNTS[role]);
    await expect(page).toHaveURL(/\/$/);
    await expect(page.getByTestId("role")).toHaveText(role);
    await page.context().storageState({ path: storageFor(role) });
  });
}
