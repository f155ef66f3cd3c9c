// Helpers for tests that start real jobs: a throwaway BOSH root per test (not
// under /tmp, which jobs see as their own), jobs written as bash scripts, and
// the built bpm executable run against that root.
import assert from "node:assert/strict";
import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { cgroupDirs, cgroupFsRoot, jobCgroup } from "../../src/runtime/cgroups.ts";
import { after, before } from "node:test";

/** The executable under test: the build in dist/, or another given by BPM_UNDER_TEST (to check that a test fails on an older build). */
export const BPM = process.env.BPM_UNDER_TEST || resolve(import.meta.dirname, "../../dist/bpm");
export const isRoot = process.getuid?.() === 0;
export const skipUnlessRoot = isRoot && existsSync(BPM) ? false : "needs root and a built dist/bpm (run `npm test` as root)";

/** Why a test that needs systemd as pid 1 (as on a stemcell) cannot run here, or false: it runs in the VM
 * suite's systemd boots (`npm run test:vm`), and is skipped on this machine, whose pid 1 is not systemd. */
export function skipUnlessSystemd(): string | false {
  if (!isRoot || !existsSync(BPM)) return "needs root and a built dist/bpm";
  let pid1 = "";
  try {
    pid1 = readFileSync("/proc/1/comm", "utf8").trim();
  } catch {
    // unreadable: not systemd as far as we can tell
  }
  if (pid1 !== "systemd" || !existsSync("/run/systemd/system"))
    return `needs systemd as pid 1 (pid 1 here is ${pid1 || "unknown"}): runs in the VM suite's systemd boots, \`npm run test:vm\``;
  return false;
}
const ROOTS = "/var/tmp/bpm-tests";
// Bounds, not clocks: every wait returns as soon as its event comes. Under
// emulation on a loaded machine (the VM suite) one bpm command can take a
// minute and a job's first line longer; a bound only ends a wait that hangs.
const COMMAND_BOUND_MS = 300_000;
const WAIT_BOUND_MS = 120_000;

/** A command the harness killed, or that died of a signal, says so where its own error would be. */
function saysWhy<T extends { status: number | null; signal: string | null; stderr: string; error?: Error }>(args: string[], r: T): T {
  if (r.status === null) r.stderr += `[harness: \`bpm ${args.join(" ")}\` ended by ${r.signal}${r.error ? ` (${r.error.message})` : ""}]\n`;
  return r;
}

export interface Root {
  path: string;
  /** Writes jobs/NAME/config/bpm.yml. */
  job(name: string, yaml: string): void;
  bpm(...args: string[]): SpawnSyncReturns<string>;
  bpmAsync(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }>;
  log(job: string, proc?: string, stream?: "stdout" | "stderr"): string;
  /** Waits until the job's stdout log contains text. */
  waitForLog(job: string, text: string | RegExp, timeoutMs?: number, proc?: string): Promise<string>;
  cleanup(): Promise<void>;
}

export function makeRoot(name: string): Root {
  const path = join(ROOTS, `${name}-${process.pid}-${randomBytes(3).toString("hex")}`);
  mkdirSync(join(path, "jobs"), { recursive: true });
  mkdirSync(join(path, "packages"), { recursive: true });
  mkdirSync(join(path, "store"), { recursive: true });
  const env = { ...process.env, BPM_BOSH_ROOT: path };
  const root: Root = {
    path,
    job(job, yaml) {
      mkdirSync(join(path, "jobs", job, "config"), { recursive: true });
      writeFileSync(join(path, "jobs", job, "config", "bpm.yml"), yaml);
    },
    bpm: (...args) => saysWhy(args, spawnSync(BPM, args, { env, encoding: "utf8", timeout: COMMAND_BOUND_MS })),
    bpmAsync: (...args) =>
      new Promise((res) => {
        const c = spawn(BPM, args, { env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        c.stdout.on("data", (d) => (stdout += d));
        c.stderr.on("data", (d) => (stderr += d));
        c.on("close", (status, signal) => res(saysWhy(args, { status, signal, stdout, stderr })));
      }),
    log(job, proc = job, stream = "stdout") {
      try {
        return readFileSync(join(path, "sys", "log", job, `${proc}.${stream}.log`), "utf8");
      } catch {
        return "";
      }
    },
    async waitForLog(job, text, timeoutMs = WAIT_BOUND_MS, proc = job) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const log = root.log(job, proc);
        if (typeof text === "string" ? log.includes(text) : text.test(log)) return log;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${text} in ${job}'s log; have:\n${log}\nstderr:\n${root.log(job, proc, "stderr")}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async cleanup() {
      const jobs = existsSync(join(path, "jobs")) ? readdirSync(join(path, "jobs")) : [];
      await Promise.all(jobs.map((j) => root.bpmAsync("stop", j)));
      // Processes of other names in these jobs were stopped by the tests themselves.
      rmSync(path, { recursive: true, force: true });
      // bpm leaves a root's cgroup scope in place (it is shared by its jobs): it goes with the root.
      for (const dir of cgroupDirs(jobCgroup(cgroupFsRoot(), path, "any"))) spawnSync("rmdir", [dirname(dir)]);
    },
  };
  return root;
}

/** A fresh root for the enclosing describe(), cleaned up after it: call the result to get it. */
export function useRoot(name: string): () => Root {
  let root: Root | undefined;
  before(() => {
    root = makeRoot(name);
  });
  after(() => root?.cleanup());
  return () => root!;
}

/** A bpm.yml with one process that runs a bash script. */
export function bashJob(name: string, script: string, extra = ""): string {
  return `processes:\n- name: ${name}\n  executable: /bin/bash\n  args:\n  - -c\n  - ${JSON.stringify(script)}\n${extra}`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A process that is there and not a zombie. One that ends while we look is
 * gone (reading its status then fails): never an error. No pid: not alive. */
export function alive(pid: number | string | null): boolean {
  if (pid === null) return false;
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

/** Polls until check() holds; after ms, fails with what() (what was seen instead).
 * For what the kernel finishes asynchronously: a fixed sleep is flaky under load. */
export async function eventually(check: () => boolean, what: () => string, ms = WAIT_BOUND_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out; saw:\n${what()}`);
    await sleep(20);
  }
}
