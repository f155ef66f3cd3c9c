// Where systemd is pid 1 (stemcells: Jammy on the cgroup v1 hybrid layout,
// Noble on v2 only), each job runs in a transient scope unit of its own
// (issue 26), as the original's runc does with its systemd cgroup driver:
// `system.slice/runc-bpm-JOB.scope` on the default BOSH root, what
// bosh-agent's monit-access looks for, and `runc-HASH-bpm-JOB.scope` on any
// other root (HASH: the first 12 hex digits of pathHash(root)), so that test
// roots never share one. In every hierarchy systemd manages: the v1
// controllers it realizes for a delegated scope, the name=systemd one and
// the unified one (in the others every unit stays at the root). Outside a scope of its own a job is
// systemd's to move: on the hybrid layout systemd keeps a job in the unit
// that ran `bpm start` (name=systemd), moves it between v1 cgroups when it
// re-realizes that unit (a sibling with CPUWeight=, a restart after
// daemon-reload), so the job loses its CPU ceiling, and kills it with that
// unit (KillMode=control-group).
//
// Runs in the VM suite's systemd boots (npm run test:vm: v2 and jammy);
// skipped elsewhere. What it checks is read from the kernel (/proc/PID/cgroup
// and the cgroup files of the directories it names) and from systemd
// (systemctl), never from bpm's own record.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { containerId, DEFAULT_ROOT } from "../../src/bosh/paths.ts";
import { cgroupDirs, cgroupFsRoot, cgroupVersion, jobCgroup, pathHash } from "../../src/runtime/cgroups.ts";
import { alive, BPM, bashJob, eventually, makeRoot, skipUnlessSystemd, type Root } from "./harness.ts";

const skip = skipUnlessSystemd() || (spawnSync("systemd-run", ["--version"]).error ? "needs systemd-run" : false);

const fsRoot = cgroupFsRoot();
const v2 = cgroupVersion(fsRoot) === 2;
const LIMITS = "  limits: {cpu: 0.5, memory: 64M, processes: 20}\n";
const WANTED = { memoryBytes: 64 * 1024 * 1024, pids: 20, cpus: 0.5 };

const systemctl = (...args: string[]) =>
  spawnSync("systemctl", ["--no-pager", ...args], { encoding: "utf8", timeout: 180_000, env: { ...process.env, SYSTEMD_COLORS: "0", SYSTEMD_URLIFY: "0" } });

/** The job's scope unit (issue 26). */
const scopeUnit = (rootPath: string, job: string) =>
  rootPath === DEFAULT_ROOT ? `runc-${containerId(job)}.scope` : `runc-${pathHash(rootPath).slice(0, 12)}-${containerId(job)}.scope`;
const scopeCgroup = (rootPath: string, job: string) => `/system.slice/${scopeUnit(rootPath, job)}`;

interface CgroupLine {
  id: string;
  controllers: string[];
  path: string;
}
/** /proc/PID/cgroup: every hierarchy the process is in (v2: one `0::` line; hybrid: numbered v1 lines, name=systemd, and `0::`). */
const cgroupText = (pid: number) => readFileSync(`/proc/${pid}/cgroup`, "utf8");
const cgroupLines = (pid: number): CgroupLine[] =>
  cgroupText(pid).trim().split("\n").map((l) => {
    const [id, controllers, ...path] = l.split(":");
    return { id: id!, controllers: controllers!.split(",").filter(Boolean), path: path.join(":") };
  });
/** The line of the hierarchy that holds a controller (v2: the unified one). */
const lineFor = (pid: number, controller: string) =>
  cgroupLines(pid).find((l) => (v2 ? l.id === "0" : l.controllers.includes(controller)));
/** The directory of a v1 hierarchy that holds a controller, or the unified tree on v2. */
const top = (controller: string) => (v2 ? fsRoot : join(fsRoot, controller));

/** The unit this test runs in (the VM's bpm-vm.service, or runit.service under the jammy boot). */
const ownUnit = () => {
  const l = cgroupLines(process.pid).find((x) => (v2 ? x.id === "0" : x.controllers.includes("name=systemd")));
  return l ? l.path.split("/").pop()! : "?";
};

/** The init and every process below it: the job's processes as the host sees them. */
function jobPids(init: number): number[] {
  const out = [init];
  for (let i = 0; i < out.length; i++) {
    try {
      const children = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, "utf8").trim();
      if (children) out.push(...children.split(" ").map(Number));
    } catch {
      // ended while we looked
    }
  }
  return out;
}

/** The directories of a line's cgroup: v2's one; on hybrid, one per v1 controller (name=systemd's at systemd/) and `0::`'s under unified/. */
const dirsOf = (l: CgroupLine) =>
  v2 ? [join(fsRoot, l.path)] : l.id === "0" ? [join(fsRoot, "unified", l.path)] : l.controllers.map((c) => join(fsRoot, c.replace(/^name=/, ""), l.path));

/** Every cgroup directory a check saw the job in: they must all be gone after `bpm stop`. */
const seenDirs = new Set<string>();

/** The hierarchies systemd places a unit's processes in and bpm's limits live in: `0::`, name=systemd,
 * memory, pids, cpu (on v2 the one line). */
const managed = (l: CgroupLine) => l.id === "0" || l.controllers.some((c) => ["name=systemd", "memory", "pids", "cpu", "cpuacct"].includes(c));
/** Every hierarchy systemd manages for a delegated scope: those, and devices. In the v1 hierarchies systemd
 * leaves alone (freezer, blkio, cpuset, net_cls, perf_event, hugetlb, rdma, misc) every unit's processes,
 * a job's as any other, stay at the root, and nothing ever moves them; only the first test asks for these. */
const systemds = (l: CgroupLine) => managed(l) || l.controllers.includes("devices");

/** Each line of each of the job's processes (every one, or those `managed`) names its scope: in it, or below it. */
function assertInScope(r: Root, job: string, init: number, every = false) {
  const scope = scopeCgroup(r.path, job);
  for (const pid of jobPids(init)) {
    const lines = cgroupLines(pid);
    const outside = lines.filter((l) => (every ? systemds(l) : managed(l)) && l.path !== scope && !l.path.startsWith(scope + "/"));
    for (const l of lines) if (l.path.startsWith(scope)) for (const d of dirsOf(l)) seenDirs.add(d);
    const show = (l: CgroupLine) => `${l.id}:${l.controllers.join(",")}:${l.path}`;
    assert.ok(outside.length === 0,
      `process ${pid} of job ${job} is not in its scope ${scope} in every hierarchy of ${every ? "systemd's" : "name=systemd, 0::, memory, pids and cpu"} (the test runs in ${ownUnit()}); ` +
      `outside it: ${outside.map(show).join(" ")}; /proc/${pid}/cgroup:\n${cgroupText(pid)}`);
  }
  // bpm's own idea of the job's cgroup is where the kernel has the init.
  const cg = jobCgroup(fsRoot, r.path, containerId(job));
  for (const d of cgroupDirs(cg)) seenDirs.add(d);
  assert.equal(join(top("memory"), lineFor(init, "memory")!.path), cg.memory, `jobCgroup() and /proc/${init}/cgroup disagree:\n${cgroupText(init)}`);
}

/** systemd's answer for a pid: the unit `systemctl status PID` names, and that unit's state and cgroup. */
function assertSystemdSays(r: Root, job: string, init: number) {
  const unit = scopeUnit(r.path, job);
  const status = systemctl("status", "--lines=0", "--full", String(init));
  const named = /(\S+\.(?:scope|service|slice|socket|mount))\b/.exec(status.stdout.split("\n")[0] ?? "")?.[1];
  assert.equal(named, unit, `systemctl status ${init} names ${named}, not the job's scope (the test runs in ${ownUnit()}):\n${status.stdout}${status.stderr}`);
  const show = systemctl("show", "-p", "Id", "-p", "ActiveState", "-p", "ControlGroup", unit);
  const props = Object.fromEntries(show.stdout.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  assert.deepEqual(props, { Id: unit, ActiveState: "active", ControlGroup: `/system.slice/${unit}` }, `systemctl show ${unit}:\n${show.stdout}${show.stderr}`);
}

/** The tightest value of a limit file from a cgroup up to the top of its hierarchy: what holds the processes in it. */
function ceiling(hierarchyTop: string, path: string, read: (dir: string) => number | undefined): number {
  let tightest = Infinity;
  for (let dir = join(hierarchyTop, path).replace(/(.)\/+$/, "$1"); ; dir = dirname(dir)) {
    const v = read(dir);
    if (v !== undefined) tightest = Math.min(tightest, v);
    if (dir === hierarchyTop || !dir.startsWith(hierarchyTop)) break;
  }
  return tightest;
}
const readIf = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").trim() : undefined);
const num = (s: string | undefined) => (s === undefined ? undefined : s === "max" || s === "-1" ? Infinity : Number(s));

/** The memory, pids and CPU ceilings that hold one process, read from the cgroups the kernel says it is in. */
function limitsOf(pid: number) {
  const at = (c: string) => lineFor(pid, c)?.path ?? "/";
  const memoryBytes = ceiling(top("memory"), at("memory"), (d) => num(readIf(join(d, v2 ? "memory.max" : "memory.limit_in_bytes"))));
  const pids = ceiling(top("pids"), at("pids"), (d) => num(readIf(join(d, "pids.max"))));
  const cpus = ceiling(top("cpu"), at("cpu"), (d) => {
    if (v2) {
      const [quota, period] = (readIf(join(d, "cpu.max")) ?? "max 100000").split(" ");
      return num(quota)! / Number(period);
    }
    const quota = num(readIf(join(d, "cpu.cfs_quota_us")));
    return quota === undefined ? undefined : quota / Number(readIf(join(d, "cpu.cfs_period_us")));
  });
  return { memoryBytes, pids, cpus };
}

/** Each process of the job is held by the limits bpm.yml gives it, and still in its scope. */
function assertLimits(r: Root, job: string, init: number, when: string) {
  for (const pid of jobPids(init))
    assert.deepEqual(limitsOf(pid), WANTED, `${when}: process ${pid} of job ${job} is not held by its limits; /proc/${pid}/cgroup:\n${cgroupText(pid)}`);
  assertInScope(r, job, init);
}

/** The units systemd has for a root's jobs, whatever their state. */
const unitsOf = (rootPath: string) =>
  systemctl("list-units", "--all", "--plain", "--no-legend", `runc-${rootPath === DEFAULT_ROOT ? "" : pathHash(rootPath).slice(0, 12) + "-"}bpm-*`)
    .stdout.split("\n").map((l) => l.replace(/^\W+/, "").split(/\s+/)[0]!).filter(Boolean);

/** No unit, no cgroup left of a job once it is stopped (systemd drops a scope once it is empty: waited for). */
async function assertGone(r: Root, job: string) {
  const unit = scopeUnit(r.path, job);
  await eventually(() => !unitsOf(r.path).includes(unit), () => systemctl("list-units", "--all", "--plain", "--no-legend", unit).stdout, 60_000);
  const left = [...seenDirs].filter((d) => d.includes(`/${unit}`) || d.endsWith(`/${containerId(job)}`)).filter(existsSync);
  assert.deepEqual(left, [], `cgroup directories left behind by job ${job}`);
}

/** Stops whatever this test left running in its roots' scopes (a failed test may have), and their cgroups. */
function sweep(rootPath: string) {
  for (const unit of unitsOf(rootPath)) {
    systemctl("stop", unit);
    systemctl("reset-failed", unit);
  }
  for (const d of [...seenDirs].sort((a, b) => b.length - a.length)) if (d.includes(pathHash(rootPath).slice(0, 12))) spawnSync("rmdir", [d]);
}

const pidOf = (r: Root, job: string) => {
  const res = r.bpm("pid", job);
  assert.equal(res.status, 0, `bpm pid ${job}: ${res.stderr}`);
  return Number(res.stdout);
};
const succeeds = (res: { status: number | null; stdout: string; stderr: string }, what: string) =>
  assert.equal(res.status, 0, `${what}: ${res.stdout}${res.stderr}`);
const assertRunning = (r: Root, job: string, init: number) => {
  const l = r.bpm("list");
  assert.equal(l.status, 0, l.stderr);
  assert.match(l.stdout, new RegExp(`^${job} +${init} +running$`, "m"), l.stdout);
};

describe("each job in a transient systemd scope of its own (bpm started from the test's own unit)", { skip }, () => {
  let root: Root;
  before(() => {
    root = makeRoot("sdscope");
  });
  after(async () => {
    if (!root) return;
    await root.cleanup();
    sweep(root.path);
  });

  it("`bpm start`: every line of /proc/INIT/cgroup that systemd manages names system.slice/runc-HASH-bpm-JOB.scope, and systemd says the init is that unit's", () => {
    root.job("placed", bashJob("placed", "exec sleep 100000", "  limits: {memory: 64M, processes: 20}\n"));
    succeeds(root.bpm("start", "placed"), "bpm start placed");
    const init = pidOf(root, "placed");
    assertInScope(root, "placed", init, true);
    assertSystemdSays(root, "placed", init);
    succeeds(root.bpm("stop", "placed"), "bpm stop placed");
  });

  it("`bpm stop` then `bpm start` at once, five times: each start in a fresh scope, no unit left after the last stop", async () => {
    root.job("again", bashJob("again", "exec sleep 100000", "  limits: {memory: 64M, processes: 20}\n"));
    succeeds(root.bpm("start", "again"), "first start");
    let init = pidOf(root, "again");
    for (let round = 1; round <= 5; round++) {
      succeeds(root.bpm("stop", "again"), `round ${round}: stop`);
      succeeds(root.bpm("start", "again"), `round ${round}: start right after the stop`);
      const next = pidOf(root, "again");
      assert.notEqual(next, init, `round ${round}: a new init`);
      assert.ok(!alive(init), `round ${round}: the old init is gone`);
      init = next;
      assertInScope(root, "again", init);
      assert.deepEqual(unitsOf(root.path).filter((u) => u === scopeUnit(root.path, "again")), [scopeUnit(root.path, "again")], `round ${round}: one unit`);
    }
    succeeds(root.bpm("stop", "again"), "last stop");
    await assertGone(root, "again");
  });

  it("ten jobs started at once, each in its own scope, then stopped at once: no unit or cgroup left", async () => {
    const jobs = Array.from({ length: 10 }, (_, i) => `many${i}`);
    for (const j of jobs) root.job(j, bashJob(j, "exec sleep 100000", "  limits: {memory: 32M, processes: 10}\n"));
    const started = await Promise.all(jobs.map((j) => root.bpmAsync("start", j)));
    started.forEach((res, i) => succeeds(res, `start ${jobs[i]}`));
    for (const j of jobs) assertInScope(root, j, pidOf(root, j));
    const stopped = await Promise.all(jobs.map((j) => root.bpmAsync("stop", j)));
    stopped.forEach((res, i) => succeeds(res, `stop ${jobs[i]}`));
    for (const j of jobs) await assertGone(root, j);
  });
});

describe("a job started from a service that systemd re-realizes, restarts and stops (as monit's on a stemcell)", { skip }, () => {
  const unit = `bpm-test-scope-${process.pid}.service`;
  const unitFile = `/run/systemd/system/${unit}`;
  const sibling = `bpm-test-sibling-${process.pid}.service`;
  const job = "ceiled";
  let root: Root;
  let init = 0;
  const serviceLog = () => readIf(join(root.path, "service.log")) ?? "";
  /** How many `bpm start`s the service has finished. */
  const starts = () => (serviceLog().match(/^bpm start: exit \d+$/gm) ?? []).length;
  const state = () => `${unit}: ${systemctl("is-active", unit).stdout.trim()}\nthe service's log:\n${serviceLog()}`;

  before(() => {
    root = makeRoot("sdscope-svc");
    root.job(job, bashJob(job, "exec sleep 100000", LIMITS));
    // What monit does for a job (through the bpm job's wrapper), then stays, as monit does.
    const script = join(root.path, "service.sh");
    writeFileSync(script, [
      "#!/bin/sh",
      `BPM_BOSH_ROOT=${root.path} ${BPM} start ${job} >>${root.path}/service.log 2>&1`,
      `echo "bpm start: exit $?" >>${root.path}/service.log`,
      "exec sleep infinity",
    ].join("\n") + "\n", { mode: 0o755 });
    writeFileSync(unitFile, `[Unit]\nDescription=bpm start from a service (${root.path})\n[Service]\nExecStart=${script}\nKillMode=control-group\n`);
    succeeds(systemctl("daemon-reload"), "daemon-reload");
    succeeds(systemctl("start", unit), `start ${unit}`);
  });

  after(async () => {
    if (!root) return;
    systemctl("stop", unit, sibling);
    systemctl("reset-failed", unit, sibling);
    rmSync(unitFile, { force: true });
    systemctl("daemon-reload");
    await root.cleanup();
    sweep(root.path);
  });

  it("runs in its own scope with its limits, not in the service that ran `bpm start`", async () => {
    await eventually(() => starts() >= 1, state);
    assert.match(serviceLog(), /^bpm start: exit 0$/m, state());
    init = pidOf(root, job);
    assertInScope(root, job, init);
    assertSystemdSays(root, job, init);
    assertLimits(root, job, init, "started");
  });

  it("keeps its limits and scope while a sibling unit with CPUWeight= runs, and after it stops", () => {
    succeeds(spawnSync("systemd-run", [`--unit=${sibling}`, "-p", "CPUWeight=50", "sleep", "600"], { encoding: "utf8", timeout: 180_000 }), "systemd-run");
    assert.equal(systemctl("is-active", sibling).stdout.trim(), "active");
    assertLimits(root, job, init, `with ${sibling} (CPUWeight=50) running`);
    succeeds(systemctl("stop", sibling), `stop ${sibling}`);
    assertLimits(root, job, init, `after ${sibling} stopped`);
  });

  it("keeps running, with its limits and scope, through daemon-reload and `systemctl restart` of that service (KillMode=control-group)", async () => {
    succeeds(systemctl("daemon-reload"), "daemon-reload");
    succeeds(systemctl("restart", unit), `restart ${unit}`);
    // The restarted service runs `bpm start` again: the job is running, nothing happens.
    await eventually(() => starts() >= 2, state);
    assert.ok(alive(init), `the job's init ${init} did not survive the restart of ${unit} (bpm's pid now: ${root.bpm("pid", job).stdout.trim() || "none"}); ${state()}`);
    assert.equal(pidOf(root, job), init);
    assertRunning(root, job, init);
    assertLimits(root, job, init, `after daemon-reload and a restart of ${unit}`);
  });

  it("keeps running through `systemctl stop` of that service; `bpm stop` then stops it and leaves no scope or cgroup", async () => {
    // The job as it runs now (a restart that killed it made the service start another).
    init = pidOf(root, job);
    succeeds(systemctl("stop", unit), `stop ${unit}`);
    assert.ok(alive(init), `the job's init ${init} did not survive the stop of ${unit}`);
    assertRunning(root, job, init);
    assertInScope(root, job, init);
    succeeds(root.bpm("stop", job), "bpm stop");
    assert.ok(!alive(init));
    await assertGone(root, job);
  });
});
