// `npm run test:vm`: builds dist/bpm, then boots the VM (test/vm/vm.mjs:
// Debian's kernel, cgroup v2 only) once for each init and runs there the
// integration tests that depend on the kernel: cgroups and limits, lifecycle
// and recovery, isolation and seccomp from inside a job, volumes, the
// attacks on bpm, stop under a CPU ceiling, and BOSH Lite containers (jobs
// of the same name in two containers, with and without a cgroup namespace).
//
// Under systemd as pid 1, as stemcells boot, all of them, from a system
// service's cgroup as monit runs, plus monit in a service that systemd
// restarts and stops while it runs `bpm start` (systemd-monit.test.ts).
// systemd owns the cgroup tree there (nsdelegate) and makes every mount
// shared, the stricter case for the mount tests. That is what CI runs (23 min
// measured on a busy machine). `--init bare` boots a bare init instead (the
// test runner's parent is pid 1, mounts private) for the tests of what bpm
// does to a cgroup tree nobody else manages; `--init both` runs both, which
// did not fit CI's 35 minutes on a busy machine.
// The rest (command line, logs, monit alone, release) do not change with the
// kernel and run on this machine only (npm test).
//
//   node test/vm/suite.mjs [--init systemd|bare|both] [FILE...]
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
  "test/integration/stop-ceiling.test.ts",
  "test/integration/bosh-lite.test.ts",
];
/** What runs under the bare init too: bpm's cgroups where no systemd manages the tree. */
export const BARE_TESTS = [
  "test/integration/cgroups.test.ts",
  "test/integration/lifecycle.test.ts",
  "test/integration/cpu.test.ts",
  "test/integration/shutdown-timeout.test.ts",
  "test/integration/stop-ceiling.test.ts",
];
/** What only a systemd-booted guest can run. */
export const SYSTEMD_TESTS = ["test/integration/systemd-monit.test.ts"];

const top = resolve(import.meta.dirname, "../..");
const args = process.argv.slice(2);
let inits = ["systemd"];
if (args[0] === "--init") {
  args.shift();
  const init = args.shift();
  inits = init === "both" ? ["systemd", "bare"] : [init];
  if (!["bare", "systemd"].includes(inits[0])) {
    process.stderr.write("usage: node test/vm/suite.mjs [--init systemd|bare|both] [FILE...]\n");
    process.exit(2);
  }
}
const only = args;
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

const results = [];
let failed = false;
for (const init of inits) {
  const files = only.length ? only : init === "systemd" ? [...VM_TESTS, ...SYSTEMD_TESTS] : BARE_TESTS;
  process.stderr.write(`test:vm: booting the VM (${init} init) for ${files.length} test files\n`);
  const started = Date.now();
  let booted;
  const status = await runInVm({
    cwd: top,
    env,
    init,
    onBooted: (s) => (booted = s),
    // Two files at a time on the VM's two CPUs; a hanging test fails after 10 minutes.
    argv: [process.execPath, "--test", "--test-concurrency=2", "--test-timeout=600000", "--test-reporter=spec", ...files],
    timeoutMs: 40 * 60_000,
  });
  failed ||= status !== 0;
  const took = Math.round((Date.now() - started) / 1000);
  const boot = booted === undefined ? "" : `, ${booted.toFixed(1)} s of it booting`;
  results.push(`test:vm: ${init} init: exit status ${status} after ${took} s${boot} on Linux in the VM (cgroup v2)`);
  process.stderr.write(results.at(-1) + "\n");
}
if (results.length > 1) process.stderr.write(results.join("\n") + "\n");
process.exit(failed ? 1 : 0);
