// `npm run test:vm`: builds dist/bpm, boots the VM once (test/vm/vm.mjs:
// Debian's kernel, cgroup v2 only) and runs there the integration tests
// that depend on the kernel: cgroups and limits, lifecycle and recovery,
// isolation and seccomp from inside a job, volumes, and the attacks on bpm.
// The rest (command line, logs, monit, release) do not change with the
// kernel and run on this machine only (npm test).
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { passedEnv, runInVm } from "./vm.mjs";

export const VM_TESTS = [
  "test/integration/cgroups.test.ts",
  "test/integration/lifecycle.test.ts",
  "test/integration/isolation.test.ts",
  "test/integration/hardening.test.ts",
  "test/integration/volumes.test.ts",
  "test/integration/security.test.ts",
  "test/integration/cpu.test.ts",
  "test/integration/shutdown-timeout.test.ts",
];

const top = resolve(import.meta.dirname, "../..");
const only = process.argv.slice(2);
execFileSync(process.execPath, ["build/build.mjs"], { cwd: top, stdio: "inherit" });
// The executable under test, copied: a rebuild on this machine during the run cannot change it.
const under = join(top, ".vm", "bpm-under-test");
mkdirSync(dirname(under), { recursive: true });
copyFileSync(process.env.BPM_UNDER_TEST || join(top, "dist", "bpm"), under);
const env = passedEnv();
env.BPM_UNDER_TEST = under;
if (!process.stdout.isTTY) env.NO_COLOR = "1";
// Emulation is five to ten times slower: the longest stress tests do a fraction of their work.
env.BPM_RESTART_CYCLES ??= "200";
env.BPM_RACE_ROUNDS ??= "20";
env.BPM_HUGE_LOG_MB ??= "64";
const started = Date.now();
const status = await runInVm({
  cwd: top,
  env,
  // Two files at a time on the VM's two CPUs; a hanging test fails after 10 minutes.
  argv: [process.execPath, "--test", "--test-concurrency=2", "--test-timeout=600000", "--test-reporter=spec", ...(only.length ? only : VM_TESTS)],
  timeoutMs: 40 * 60_000,
});
process.stderr.write(`test:vm: exit status ${status} after ${Math.round((Date.now() - started) / 1000)} s on Linux in the VM (cgroup v2)\n`);
process.exit(status);
