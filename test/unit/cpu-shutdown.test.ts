// The keys beyond the original: limits.cpu, limits.cpu_weight and
// shutdown_timeout, as bpm.yml is checked and as the cgroup layout and the
// helper's plan carry them. What the kernel does with them is in
// test/integration/cpu.test.ts and shutdown-timeout.test.ts.
import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { describe, it } from "node:test";
import { ext, jobPaths } from "../../src/bosh/paths.ts";
import { ConfigError, formatProblem, parseJobConfig } from "../../src/config/load.ts";
import { parseDuration } from "../../src/config/units.ts";
import { jobBook } from "../../src/plan/book.ts";
import { cgroupDirs, cgroupLayout, jobCgroupAt } from "../../src/plan/cgroup.ts";
import { encodeStopPlan } from "../../src/plan/encode.ts";

const ctx = { root: "/var/vcap", job: "web" };
const parse = (text: string) => parseJobConfig(text, "bpm.yml", ctx);
const job = (extra: string) => `processes:\n- name: web\n  executable: /bin/web\n${extra}`;
const problems = (text: string) => {
  try {
    parse(text);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map(formatProblem);
    throw e;
  }
  return [];
};

describe("limits.cpu and limits.cpu_weight in bpm.yml", () => {
  it("accepts a ceiling in CPUs and a weight, and leaves both out when absent", () => {
    const p = parse(job("  limits: {cpu: 1.25, cpu_weight: 400}\n")).config.processes[0]!;
    assert.equal(p.limits.cpu, 1.25);
    assert.equal(p.limits.cpu_weight, 400);
    assert.equal(parse(job("  limits: {cpu: .5}\n")).config.processes[0]!.limits.cpu, 0.5);
    const plain = parse(job("")).config.processes[0]!;
    assert.equal(plain.limits.cpu, undefined);
    assert.equal(plain.limits.cpu_weight, undefined);
  });

  it("refuses a ceiling that is not a number above 0 and at most the machine's CPUs × 64, with its position", () => {
    const most = availableParallelism() * 64;
    assert.deepEqual(problems(job("  limits:\n    cpu: 0\n")), ["bpm.yml:5:10: processes[0].limits.cpu: must be more than 0, got 0"]);
    assert.deepEqual(problems(job("  limits:\n    cpu: -1\n")), ["bpm.yml:5:10: processes[0].limits.cpu: must be more than 0, got -1"]);
    assert.deepEqual(problems(job("  limits:\n    cpu: half\n")), ['bpm.yml:5:10: processes[0].limits.cpu: expected a number of CPUs such as 0.5 or 2, got "half"']);
    assert.deepEqual(problems(job(`  limits:\n    cpu: ${most + 1}\n`)), [
      `bpm.yml:5:10: processes[0].limits.cpu: must be at most ${most} (this machine's ${availableParallelism()} CPUs × 64), got ${most + 1}`,
    ]);
    assert.equal(parse(job(`  limits: {cpu: ${most}}\n`)).config.processes[0]!.limits.cpu, most);
  });

  it("refuses a weight that is not a whole number from 1 to 10000", () => {
    for (const bad of ["0", "10001", "-5"]) {
      assert.deepEqual(problems(job(`  limits:\n    cpu_weight: ${bad}\n`)), [`bpm.yml:5:17: processes[0].limits.cpu_weight: must be from 1 to 10000, got ${bad}`]);
    }
    assert.deepEqual(problems(job("  limits:\n    cpu_weight: 1.5\n")), ["bpm.yml:5:17: processes[0].limits.cpu_weight: expected a whole number from 1 to 10000, got 1.5"]);
    assert.deepEqual(problems(job("  limits:\n    cpu_weight: lots\n")), ['bpm.yml:5:17: processes[0].limits.cpu_weight: expected a whole number from 1 to 10000, got "lots"']);
    assert.equal(parse(job("  limits: {cpu_weight: 10000}\n")).config.processes[0]!.limits.cpu_weight, 10000);
    assert.equal(parse(job("  limits: {cpu_weight: 1}\n")).config.processes[0]!.limits.cpu_weight, 1);
  });
});

describe("shutdown_timeout in bpm.yml", () => {
  it("reads seconds or a duration as milliseconds", () => {
    const ms = (v: string) => parse(job(`  shutdown_timeout: ${v}\n`)).config.processes[0]!.shutdown_timeout;
    assert.equal(ms("45"), 45_000);
    assert.equal(ms("2.5"), 2_500);
    assert.equal(ms("45s"), 45_000);
    assert.equal(ms("2m"), 120_000);
    assert.equal(ms("1m30s"), 90_000);
    assert.equal(ms("500ms"), 500);
    assert.equal(ms('"25s"'), 25_000);
    assert.equal(ms('""'), undefined, "empty is the default");
    assert.equal(parse(job("")).config.processes[0]!.shutdown_timeout, undefined);
    assert.equal(parseDuration("1h"), 3_600_000);
    assert.equal(parseDuration("s"), null);
    assert.equal(parseDuration("5 s"), null);
  });

  it("refuses anything else with its position", () => {
    assert.deepEqual(problems(job("  shutdown_timeout: soon\n")), ['bpm.yml:4:21: processes[0].shutdown_timeout: expected seconds (45) or a duration such as 45s or 2m, got "soon"']);
    assert.deepEqual(problems(job("  shutdown_timeout: 0\n")), ['bpm.yml:4:21: processes[0].shutdown_timeout: must be more than 0 and at most 1h, got "0"']);
    assert.deepEqual(problems(job("  shutdown_timeout: 2h\n")), ['bpm.yml:4:21: processes[0].shutdown_timeout: must be more than 0 and at most 1h, got "2h"']);
    assert.deepEqual(problems(job("  shutdown_timeout: -5\n")), ['bpm.yml:4:21: processes[0].shutdown_timeout: expected seconds (45) or a duration such as 45s or 2m, got "-5"']);
  });

  it("advises a monit timeout where the stop can outlast monit's 30 s, and only there", () => {
    assert.deepEqual(parse(job("  shutdown_timeout: 28s\n")).advice, []);
    const { advice, warnings } = parse(job("  shutdown_timeout: 45s\n"));
    assert.deepEqual(warnings, []);
    assert.deepEqual(advice.map(formatProblem), [
      'bpm.yml:4:21: processes[0].shutdown_timeout: 45 s plus 2 s after QUIT is longer than monit waits for a stop program (30 s): end the job\'s stop program line in its monit file with "with timeout 50 seconds"',
    ]);
  });
});

describe("the CPU controller in the job's cgroup", () => {
  const root = ext("/var/vcap");
  it("v1: joins the cpu and cpuacct hierarchies only when asked, with a 100 ms period and shares for the weight", () => {
    const cg = jobCgroupAt(1, "/sys/fs/cgroup", root, "bpm-web");
    const plain = cgroupLayout("/sys/fs/cgroup", cg, { memoryBytes: 1 << 30 });
    assert.deepEqual(plain.dirs, ["/sys/fs/cgroup/memory/bpm/bpm-web", "/sys/fs/cgroup/pids/bpm/bpm-web"]);
    assert.deepEqual(plain.leftovers, ["/sys/fs/cgroup/cpu/bpm/bpm-web", "/sys/fs/cgroup/cpuacct/bpm/bpm-web"], "an earlier start's cpu cgroup is removed");
    assert.ok(!plain.limits.some((l) => l.file.includes("/cpu")));
    const limited = cgroupLayout("/sys/fs/cgroup", cg, { cpus: 0.25, cpuWeight: 400 });
    assert.deepEqual(limited.dirs, cgroupDirs(cg));
    assert.deepEqual(limited.leftovers, []);
    assert.deepEqual(limited.procs, cgroupDirs(cg).map((d) => `${d}/cgroup.procs`));
    assert.deepEqual(limited.limits.filter((l) => l.file.includes("/cpu/")), [
      { file: "/sys/fs/cgroup/cpu/bpm/bpm-web/cpu.cfs_period_us", value: "100000" },
      { file: "/sys/fs/cgroup/cpu/bpm/bpm-web/cpu.cfs_quota_us", value: "25000" },
      { file: "/sys/fs/cgroup/cpu/bpm/bpm-web/cpu.shares", value: "4096" },
    ]);
    assert.equal(cgroupLayout("/sys/fs/cgroup", cg, { cpuWeight: 1 }).limits.find((l) => l.file.endsWith("cpu.shares"))!.value, "10");
    // Below the kernel's smallest quota (1 ms), the smallest.
    assert.equal(cgroupLayout("/sys/fs/cgroup", cg, { cpus: 0.001 }).limits.find((l) => l.file.endsWith("cfs_quota_us"))!.value, "1000");
  });

  it("v2: enables cpu on the way down only for a job that asks, and writes cpu.max and cpu.weight", () => {
    const cg = jobCgroupAt(2, "/sys/fs/cgroup", root, "bpm-web");
    assert.equal(cgroupLayout("/sys/fs/cgroup", cg, {}).controllers, "memory pids");
    const limited = cgroupLayout("/sys/fs/cgroup", cg, { cpus: 1.5, cpuWeight: 50 });
    assert.equal(limited.controllers, "memory pids cpu");
    assert.deepEqual(limited.enable, ["/sys/fs/cgroup", "/sys/fs/cgroup/bpm"]);
    assert.deepEqual(limited.dirs, ["/sys/fs/cgroup/bpm/bpm-web"]);
    assert.deepEqual(limited.leftovers, []);
    assert.deepEqual(limited.limits.filter((l) => l.file.includes("/cpu.")), [
      { file: "/sys/fs/cgroup/bpm/bpm-web/cpu.max", value: "150000 100000" },
      { file: "/sys/fs/cgroup/bpm/bpm-web/cpu.weight", value: "50" },
    ]);
  });

  it("records the shutdown timeout for stop, 15 s unless the config says otherwise", () => {
    const paths = jobPaths(root, "web");
    const user = { name: "vcap", uid: 1000, gid: 1000, groups: [1000] };
    assert.equal(jobBook(paths, user, "start").shutdownTimeoutMs, 15_000);
    assert.equal(jobBook(paths, user, "start", { shutdownTimeoutMs: 25_000 }).shutdownTimeoutMs, 25_000);
    const stop = encodeStopPlan({ job: jobBook(paths, user, "stop"), cgroup: cgroupLayout("/sys/fs/cgroup", jobCgroupAt(1, "/sys/fs/cgroup", root, "bpm-web"), {}) }, []);
    const fields = stop.toString("latin1").split("\0");
    assert.deepEqual(fields.slice(fields.indexOf("stoptiming"), fields.indexOf("stoptiming") + 4), ["stoptiming", "15000", "2000", "5000"]);
    // stop removes what a start with CPU limits made, without reading bpm.yml.
    assert.ok(fields.includes("cgleftover") && fields.includes("/sys/fs/cgroup/cpu/bpm/bpm-web"));
  });
});
