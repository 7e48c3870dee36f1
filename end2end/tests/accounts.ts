import type { Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { join } from "node:path";

/** The accounts the suite uses: one per role, made by auth.setup.ts. */
export const PASSWORD = "e2e-password-not-secret";
export const ACCOUNTS = { viewer: "vi", operator: "op", admin: "boss" } as const;
export type RoleName = keyof typeof ACCOUNTS;

export const dataDir = () => process.env.E2E_DATA_DIR!;
export const storageFor = (role: RoleName) => join(dataDir(), `${role}.storage.json`);

/** `batchboard user add` into the server's data directory (the server
 * notices the changed users file by itself). */
export function addUser(name: string, role: RoleName, dir = dataDir()) {
  execFileSync(
    process.env.BATCHBOARD_BIN!,
    ["user", "add", name, "--role", role, "--password-stdin", "--data-dir", dir],
    { input: PASSWORD + "\n" },
  );
}

export const baseURL = () => `http://127.0.0.1:${process.env.E2E_PORT ?? 3300}`;

/** Signs in through the real form on the page's current site. */
export async function signIn(page: Page, name: string, password = PASSWORD) {
  await page.goto("/login");
  await page.getByTestId("username").fill(name);
  await page.getByTestId("password").fill(password);
  await page.getByTestId("sign-in").click();
}
