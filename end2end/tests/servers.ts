import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { addUser, type RoleName } from "./accounts";

const root = resolve(__dirname, "..", "..");

/** A server of a test's own (on the suite's port + `offset`), for tests
 * that stop it, seed its index or need a data directory to themselves. */
export class OwnServer {
  readonly base: string;
  private readonly port: number;

  constructor(offset: number, private readonly extraArgs: string[] = []) {
    this.port = Number(process.env.E2E_PORT ?? 3300) + offset;
    this.base = `http://127.0.0.1:${this.port}`;
  }

  /** A fresh data directory with one account of each given role. */
  static dataDir(prefix: string, accounts: [string, RoleName][]): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    for (const [name, role] of accounts) addUser(name, role, dir);
    return dir;
  }

  start(dataDir: string): ChildProcess {
    const env: Record<string, string | undefined> = { ...process.env, RUST_LOG: "warn" };
    const log = openSync(join(dataDir, "server.log"), "a");
    delete env.OPENAI_API_KEY;
    delete env.BATCHBOARD_UPSTREAM_URL;
    // The sandbox's pace: quick, unless the test sets a flag of its own.
    const pace = [["--sandbox-rps", "20"], ["--sandbox-validation-ms", "200"], ["--sandbox-finalizing-ms", "200"]]
      .filter(([flag]) => !this.extraArgs.includes(flag)).flat();
    return spawn(
      process.env.BATCHBOARD_BIN!,
      ["serve", "--addr", `127.0.0.1:${this.port}`, "--data-dir", dataDir, "--site-root", join(root, "target/site"),
        ...pace, ...this.extraArgs],
      // Its log beside its data, to read when a test fails.
      { env, stdio: ["ignore", log, log] },
    );
  }

  /** Waits until it answers /healthz. */
  async up() {
    for (let i = 0; i < 200; i++) {
      try {
        if ((await fetch(`${this.base}/healthz`)).ok) return;
      } catch {}
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`server on ${this.base} did not start`);
  }
}
