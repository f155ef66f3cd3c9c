// `npm run test:vm`: builds dist/bpm, then boots the VM (test/vm/vm.mjs:
// Debian's kernel under qemu) once for each init and runs there the
// integration tests that depend on the kernel: cgroups and limits, lifecycle
// and recovery, isolation and seccomp from inside a job, volumes, the
// attacks on bpm, stop under a CPU ceiling, and BOSH Lite containers (jobs
// of the same name in two containers, with and without a cgroup namespace).
//
// Under systemd as pid 1 on cgroup v2 only, as Noble stemcells boot, all of
// them, from a system service's cgroup as monit runs, plus monit in a
// service that systemd restarts and stops while it runs `bpm start`
// (systemd-monit.test.ts) and each job in a transient scope of its own
// (systemd-scope.test.ts). systemd owns the cgroup tree there (nsdelegate)
// and makes every mount shared, the stricter case for the mount tests.
// Then under systemd on the cgroup v1 hybrid layout, as Jammy stemcells boot
// (the jammy boot: v1 controllers, name=systemd, cgroup2 at unified/, the
// tests in runit.service with KillMode=process, as monit runs under runit
// there), the files in JAMMY_TESTS. Those two boots are what CI runs
// (`--init ci`, the default): 14.5 min for both on a quiet machine; the v2
// boot alone once took 23 min on a busy one. `--init bare` boots a bare
// init instead (the test runner's parent is pid 1, mounts private) for the
// tests of what bpm does to a cgroup tree nobody else manages; `--init both`
// runs systemd and bare, which did not fit CI's 35 minutes on a busy
// machine; `--init systemd` and `--init jammy` one boot each.
// The rest (command line, logs, monit alone, release) do not change with the
// kernel and run on this machine only (npm test).
//
//   node test/vm/suite.mjs [--init ci|systemd|jammy|bare|both] [FILE...]
//
// FILEs given run under each boot of the init(s) chosen.
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
  "test/integration/bosh-lite-systemd.test.ts",
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
export const SYSTEMD_TESTS = ["test/integration/systemd-monit.test.ts", "test/integration/systemd-scope.test.ts"];
/**
 * What runs under the jammy boot (cgroup v1 hybrid, systemd): the tests whose
 * outcome depends on systemd managing the v1 hierarchies (this machine runs
 * every test on v1 already, without systemd). Where a job's cgroups are and
 * what limits they hold (cgroups), its lifecycle and recovery against them
 * (lifecycle), CPU ceilings and weights, in the v1 cpu hierarchy that
 * systemd re-realizes for its units (cpu), monit in a service systemd
 * restarts and stops (systemd-monit), and each job in a scope of its own in
 * every hierarchy, name=systemd and unified/ included (systemd-scope). Not:
 * isolation, hardening, security and volumes (namespaces, mounts, seccomp:
 * the same kernel and the same shared mounts as the v2 systemd boot, which
 * runs them), shutdown-timeout (signals, not cgroups), stop-ceiling (its
 * v1-only freezer test is this machine's: in the jammy guest it once read
 * the helper's report before its last write, once waited 120 s on a
 * freezer stuck FREEZING), bosh-lite (Jammy warden stemcells run on cgroup
 * v2 hosts).
 * CI's budget is 35 minutes for the whole run: set-up, this machine's tests
 * (~2 min), the v2 systemd boot (580 s measured on a quiet machine) and this
 * one (287 s with stop-ceiling and with the systemd tests failing early
 * before issue 26's scopes; 428 s in another run under some load).
 */
export const JAMMY_TESTS = [
  "test/integration/cgroups.test.ts",
  "test/integration/lifecycle.test.ts",
  "test/integration/cpu.test.ts",
  "test/integration/systemd-monit.test.ts",
  "test/integration/systemd-scope.test.ts",
];
/** The boots of each --init, in order, and the files each runs. */
const INITS = { ci: ["systemd", "jammy"], systemd: ["systemd"], jammy: ["jammy"], bare: ["bare"], both: ["systemd", "bare"] };
const FILES = { systemd: [...VM_TESTS, ...SYSTEMD_TESTS], jammy: JAMMY_TESTS, bare: BARE_TESTS };
const LAYOUT = { systemd: "cgroup v2", jammy: "cgroup v1 hybrid", bare: "cgroup v2" };

const top = resolve(import.meta.dirname, "../..");
const args = process.argv.slice(2);
let inits = INITS.ci;
if (args[0] === "--init") {
  args.shift();
  const init = args.shift();
  if (!Object.hasOwn(INITS, init)) {
    process.stderr.write("usage: node test/vm/suite.mjs [--init ci|systemd|jammy|bare|both] [FILE...]\n");
    process.exit(2);
  }
  inits = INITS[init];
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
  const files = only.length ? only : FILES[init];
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
  results.push(`test:vm: ${init} init: exit status ${status} after ${took} s${boot} on Linux in the VM (${LAYOUT[init]})`);
  process.stderr.write(results.at(-1) + "\n");
}
if (results.length > 1) process.stderr.write(results.join("\n") + "\n");
process.exit(failed ? 1 : 0);
