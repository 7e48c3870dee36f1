import { defineConfig } from "@playwright/test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// The server under test: the binary `cargo leptos build --split` produced (debug by
// default; BATCHBOARD_BIN overrides), with the site it built, on its own port
// and data directory. No API key: the tests never reach a real provider.
const root = resolve(__dirname, "..");
const bin = process.env.BATCHBOARD_BIN ?? join(root, "target/debug/batchboard");
const port = Number(process.env.E2E_PORT ?? 3300);
// Made once: workers load this file again and inherit the variables.
process.env.E2E_DATA_DIR ??= mkdtempSync(join(tmpdir(), "batchboard-e2e-"));
process.env.BATCHBOARD_BIN = bin;
const dataDir = process.env.E2E_DATA_DIR;

// The server's environment: ours, minus any upstream settings, so that the
// built-in sandbox is the upstream; fast sandbox speeds keep tests short.
const serverEnv: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) {
  if (v !== undefined && !["OPENAI_API_KEY", "BATCHBOARD_UPSTREAM_URL"].includes(k)) serverEnv[k] = v;
}
Object.assign(serverEnv, {
  RUST_LOG: process.env.RUST_LOG ?? "warn",
  BATCHBOARD_SANDBOX_RPS: process.env.BATCHBOARD_SANDBOX_RPS ?? "20",
  BATCHBOARD_SANDBOX_VALIDATION_MS: process.env.BATCHBOARD_SANDBOX_VALIDATION_MS ?? "300",
  BATCHBOARD_SANDBOX_FINALIZING_MS: process.env.BATCHBOARD_SANDBOX_FINALIZING_MS ?? "300",
  // The tabs test counts open event streams.
  BATCHBOARD_METRICS_ALLOW: "127.0.0.1/32",
});

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [["list"]],
  // auth.setup.ts makes the accounts and signs each in once; the tests
  // start signed in as the operator unless they say otherwise.
  projects: [
    { name: "setup", testMatch: /auth\.setup\.ts/ },
    {
      name: "chromium",
      dependencies: ["setup"],
      use: { storageState: join(dataDir, "operator.storage.json") },
    },
  ],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
  webServer: {
    command: `${bin} serve --addr 127.0.0.1:${port} --data-dir ${dataDir} --site-root ${join(root, "target/site")}`,
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    stderr: "pipe",
    env: serverEnv,
  },
});
