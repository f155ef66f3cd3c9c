// Where jobs' cgroups go: pure path logic. What the kernel does with them is
// tested for real: cgroup v1 on this machine (test/integration), v2 in a VM on
// a second kernel (npm run test:vm, test/integration/cgroups.test.ts).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { cgroupLayout, jobCgroupIn, placeJobs, scopeUnit, type CgroupFacts, type CgroupNode } from "../../src/plan/cgroup.ts";
import { SCOPE_NAME_PATTERN } from "../../src/plan/wire.ts";
import { cgroupFacts, jobCgroup, limitsNotHeld, pathHash, type JobCgroup } from "../../src/runtime/cgroups.ts";

/** The directories a JobCgroup names (not what the placement says of its controllers). */
const dirs = ({ version, memory, pids, cpu, cpuacct }: JobCgroup) => ({ version, memory, pids, cpu, cpuacct });

describe("cgroups", () => {
  it("places v1 jobs under bpm/ in the memory and pids hierarchies (cpu and cpuacct too, for CPU limits), scoped per BOSH root", () => {
    const v1 = mkdtempSync(join(tmpdir(), "bpm-cgroupv1-"));
    const cg = jobCgroup(v1, "/var/vcap", "bpm-web");
    assert.deepEqual(dirs(cg), {
      version: 1, memory: `${v1}/memory/bpm/bpm-web`, pids: `${v1}/pids/bpm/bpm-web`,
      cpu: `${v1}/cpu/bpm/bpm-web`, cpuacct: `${v1}/cpuacct/bpm/bpm-web`,
    });
    assert.match(jobCgroup(v1, "/srv/test", "bpm-web").memory, /memory\/bpm\/root-[0-9a-f]{12}\/bpm-web$/);
    assert.notEqual(jobCgroup(v1, "/srv/test", "bpm-web").memory, jobCgroup(v1, "/srv/test2", "bpm-web").memory);
    rmSync(v1, { recursive: true });
  });

  it("names a BOSH root's scope by the FNV-1a hash of its path", () => {
    // The published FNV-1a 64-bit test vectors.
    assert.equal(pathHash(""), "cbf29ce484222325");
    assert.equal(pathHash("a"), "af63dc4c8601ec8c");
    assert.equal(pathHash("foobar"), "85944171f73967e8");
    const v1 = mkdtempSync(join(tmpdir(), "bpm-cgroupv1-"));
    assert.equal(jobCgroup(v1, "/srv/test", "x").pids, `${v1}/pids/bpm/root-${pathHash("/srv/test").slice(0, 12)}/x`);
    rmSync(v1, { recursive: true });
  });

  it("places v2 jobs in one directory under bpm/, scoped the same way", () => {
    const v2 = mkdtempSync(join(tmpdir(), "bpm-cgroupv2-"));
    writeFileSync(join(v2, "cgroup.controllers"), "memory pids\n");
    mkdirSync(join(v2, "bpm"));
    const dir = `${v2}/bpm/bpm-web`;
    assert.deepEqual(dirs(jobCgroup(v2, "/var/vcap", "bpm-web")), { version: 2, memory: dir, pids: dir, cpu: dir, cpuacct: dir });
    assert.match(jobCgroup(v2, "/srv/test", "bpm-web").memory, /\/bpm\/root-[0-9a-f]{12}\/bpm-web$/);
    rmSync(v2, { recursive: true });
  });
});

describe("placement: where a job's cgroup goes, from host facts", () => {
  const node = (dir: string, holdsProcesses: boolean, controllers = ["cpu", "memory", "pids", "io"], othersBelow = false): CgroupNode => ({ dir, holdsProcesses, othersBelow, controllers });
  const v2Facts = (over: Partial<CgroupFacts>): CgroupFacts => {
    const at = { top: "/sys/fs/cgroup", own: "/sys/fs/cgroup" };
    return { version: 2, mounts: { memory: at, pids: at, cpu: at, cpuacct: at }, topIsRoot: true, nestedPidNs: false, own: null, parent: null, systemd: null, ...over };
  };
  const mem64 = { memoryBytes: 64 << 20, pids: 20 };

  it("on a VM (the kernel's root tree, no container): the top of the hierarchy, every controller, as ever", () => {
    const p = placeJobs(v2Facts({ mounts: Object.fromEntries(["memory", "pids", "cpu", "cpuacct"].map((h) => [h, { top: "/sys/fs/cgroup", own: "/sys/fs/cgroup/system.slice/monit.service" }])) as CgroupFacts["mounts"] }));
    assert.deepEqual(p, { version: 2, manager: "cgroupfs", base: { memory: "/sys/fs/cgroup", pids: "/sys/fs/cgroup", cpu: "/sys/fs/cgroup", cpuacct: "/sys/fs/cgroup" }, delegable: null, why: null });
    const layout = cgroupLayout("/sys/fs/cgroup", jobCgroupIn(p, "/var/vcap", "bpm-web"), mem64);
    assert.deepEqual(layout.enable, ["/sys/fs/cgroup", "/sys/fs/cgroup/bpm"]);
    assert.equal(layout.controllers, "memory pids");
  });

  it("v1 in a container: bpm's own cgroup in each hierarchy; on a v1 VM with one hierarchy elsewhere (this CI host), the tops", () => {
    const mounts = {
      memory: { top: "/c/memory", own: "/c/memory/garden/x" }, pids: { top: "/c/pids", own: "/c/pids/garden/x" },
      cpu: { top: "/c/cpu", own: "/c/cpu/garden/x" }, cpuacct: { top: "/c/cpuacct", own: "/c/cpuacct/garden/x" },
    };
    const inside = placeJobs({ version: 1, mounts, topIsRoot: true, nestedPidNs: true, own: null, parent: null, systemd: null });
    assert.equal(jobCgroupIn(inside, "/var/vcap", "bpm-web").memory, "/c/memory/garden/x/bpm/bpm-web");
    assert.equal(jobCgroupIn(inside, "/var/vcap", "bpm-web").cpuacct, "/c/cpuacct/garden/x/bpm/bpm-web");
    const host = placeJobs({ version: 1, mounts: { ...mounts, memory: { top: "/c/memory", own: "/c/memory/process_api/1234" } }, topIsRoot: true, nestedPidNs: false, own: null, parent: null, systemd: null });
    assert.equal(jobCgroupIn(host, "/var/vcap", "bpm-web").memory, "/c/memory/bpm/bpm-web");
  });

  it("v2 container, its processes in its own cgroup (garden, no cgroup namespace): below it, without controllers, and says why", () => {
    const own = "/sys/fs/cgroup/garden/c1";
    const p = placeJobs(v2Facts({ nestedPidNs: true, mounts: v2Facts({}).mounts, own: node(own, true) }));
    assert.equal(p.base.memory, own);
    assert.deepEqual(p.delegable, []);
    const cg = jobCgroupIn(p, "/var/vcap", "bpm-web");
    const layout = cgroupLayout("/sys/fs/cgroup", cg, mem64);
    assert.deepEqual([layout.dirs, layout.enable, layout.controllers, layout.limits], [[`${own}/bpm/bpm-web`], [], "", []]);
    assert.equal(layout.killFile, `${own}/bpm/bpm-web/cgroup.kill`);
    assert.equal(layout.parentOomFile, null, "no scope, no parent's count");
    assert.match(limitsNotHeld(cg, mem64)!, /^limits not applied: memory, processes \(bpm's cgroup \/sys\/fs\/cgroup\/garden\/c1 holds the container's own processes/);
    assert.equal(limitsNotHeld(cg, {}), null, "a job without limits loses nothing");
  });

  it("v2 without a cgroup namespace never goes above bpm's own cgroup (a parent of one leaf looks like garden's parent of one container)", () => {
    const own = "/sys/fs/cgroup/c1/init";
    const p = placeJobs(v2Facts({ nestedPidNs: true, own: node(own, true), parent: node("/sys/fs/cgroup/c1", false) }));
    assert.equal(p.base.memory, own);
  });

  it("v2 in a cgroup namespace whose processes sit in a leaf (dind): beside them, with what the container's top is given", () => {
    const top = "/sys/fs/cgroup";
    const p = placeJobs(v2Facts({ topIsRoot: false, nestedPidNs: true, own: node(`${top}/init`, true), parent: node(top, false, ["memory", "pids"]) }));
    assert.equal(p.base.memory, top);
    const cg = jobCgroupIn(p, "/var/vcap", "bpm-web");
    const layout = cgroupLayout(top, cg, { ...mem64, cpus: 1 });
    assert.deepEqual([layout.enable, layout.controllers], [[top, `${top}/bpm`], "memory pids"]);
    assert.deepEqual(layout.limits.map((l) => l.file.slice(top.length + 1)), ["bpm/bpm-web/memory.max", "bpm/bpm-web/memory.swap.max", "bpm/bpm-web/pids.max"]);
    assert.match(limitsNotHeld(cg, { ...mem64, cpus: 1 })!, /^limits not applied: cpu \(\/sys\/fs\/cgroup\/cgroup.controllers lacks cpu: the container's parent does not delegate it\)/);
  });

  it("v2 in a cgroup namespace whose root holds the processes, or whose parent holds another pid namespace's: bpm's own cgroup, no controllers", () => {
    const atRoot = placeJobs(v2Facts({ topIsRoot: false, nestedPidNs: true, own: node("/sys/fs/cgroup", true) }));
    assert.deepEqual([atRoot.base.memory, atRoot.delegable], ["/sys/fs/cgroup", []]);
    const shared = placeJobs(v2Facts({ topIsRoot: false, nestedPidNs: true, own: node("/sys/fs/cgroup/a", true), parent: node("/sys/fs/cgroup", false, undefined, true) }));
    assert.deepEqual([shared.base.memory, shared.delegable], ["/sys/fs/cgroup/a", []]);
  });

  it("reads the facts from /proc and the tree: mounts' roots, bpm's cgroup, nested pid namespace, processes, delegation", () => {
    const dir = mkdtempSync(join(tmpdir(), "bpm-placement-"));
    const fs = join(dir, "cgroup");
    const proc = join(dir, "proc");
    mkdirSync(join(fs, "init"), { recursive: true });
    mkdirSync(proc);
    // A cgroup namespace whose tree is mounted in the container: root "/", bpm in /init, the top holds no process.
    writeFileSync(join(fs, "cgroup.controllers"), "cpu memory pids\n");
    writeFileSync(join(fs, "cgroup.type"), "domain\n");
    writeFileSync(join(fs, "cgroup.procs"), "");
    writeFileSync(join(fs, "init", "cgroup.procs"), "1\n7\n");
    writeFileSync(join(fs, "init", "cgroup.controllers"), "");
    writeFileSync(join(proc, "mountinfo"), `40 31 0:38 / ${fs.replaceAll(" ", "\\040")} rw,relatime - cgroup2 cgroup2 rw\n`);
    writeFileSync(join(proc, "cgroup"), "0::/init\n");
    mkdirSync(join(proc, "ns"));
    symlinkSync("pid:[4026532199]", join(proc, "ns", "pid"));
    const facts = cgroupFacts(fs, proc);
    assert.deepEqual([facts.topIsRoot, facts.nestedPidNs, facts.mounts.memory.own], [false, true, join(fs, "init")]);
    assert.deepEqual(facts.parent, { dir: fs, holdsProcesses: false, othersBelow: false, controllers: ["cpu", "memory", "pids"] });
    assert.equal(placeJobs(facts).base.memory, fs);
    // A process of another pid namespace below the top (shown as 0): not the container's alone.
    writeFileSync(join(fs, "init", "cgroup.procs"), "1\n0\n");
    assert.equal(placeJobs(cgroupFacts(fs, proc)).base.memory, join(fs, "init"));
    // Its processes at the namespace's root: that is bpm's cgroup, and nothing above it is looked at.
    writeFileSync(join(proc, "cgroup"), "0::/\n");
    const atTop = cgroupFacts(fs, proc);
    assert.deepEqual([atTop.mounts.memory.own, atTop.own?.dir, atTop.parent], [fs, fs, null]);
    // The host's mount seen from a cgroup namespace: its root is "/..", bpm's cgroup is nowhere in it.
    writeFileSync(join(proc, "mountinfo"), `60 58 0:37 /.. ${fs} rw - cgroup2 cgroup2 rw,nsdelegate\n`);
    writeFileSync(join(proc, "cgroup"), "0::/\n");
    const lost = placeJobs(cgroupFacts(fs, proc));
    assert.match(lost.problem ?? "", /^bpm runs in a container, but its own cgroup is not inside the cgroup tree mounted at /);
    rmSync(dir, { recursive: true });
  });

  it("with systemd as pid 1: a transient scope per job under system.slice, in every hierarchy, its limits as properties", () => {
    const v1 = (h: string) => ({ top: `/sys/fs/cgroup/${h}`, own: `/sys/fs/cgroup/${h}/system.slice/runit.service` });
    const root = { memory: "/sys/fs/cgroup/memory", pids: "/sys/fs/cgroup/pids", cpu: "/sys/fs/cgroup/cpu", cpuacct: "/sys/fs/cgroup/cpuacct" };
    const p = placeJobs({
      version: 1, mounts: { memory: v1("memory"), pids: v1("pids"), cpu: v1("cpu"), cpuacct: v1("cpuacct") }, topIsRoot: true, nestedPidNs: false,
      own: null, parent: null, systemd: { root, tracking: ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"] },
    });
    assert.equal(p.manager, "systemd");
    const cg = jobCgroupIn(p, "/var/vcap", "bpm-web");
    assert.equal(cg.scope, "runc-bpm-web.scope", "the name bosh-agent's monit access looks for");
    assert.equal(cg.memory, "/sys/fs/cgroup/memory/system.slice/runc-bpm-web.scope");
    const layout = cgroupLayout("/sys/fs/cgroup", cg, { memoryBytes: 64 << 20, pids: 20, cpus: 0.5 });
    assert.deepEqual(layout.enable, [], "systemd enables the controllers");
    assert.equal(layout.parentOomFile, "/sys/fs/cgroup/memory/system.slice/memory.oom_control", "the slice's count outlives the scope's cgroup");
    assert.ok(layout.procs.includes("/sys/fs/cgroup/systemd/system.slice/runc-bpm-web.scope/cgroup.procs"), "name=systemd is joined too");
    assert.ok(layout.procs.includes("/sys/fs/cgroup/unified/system.slice/runc-bpm-web.scope/cgroup.procs"), "and the unified hierarchy");
    const props = Object.fromEntries(layout.scope!.properties.map(([n, , v]) => [n, v]));
    assert.deepEqual([props.Slice, props.Delegate, props.MemoryMax, props.TasksMax, props.CPUQuotaPerSecUSec, props.CPUQuotaPeriodUSec],
      ["system.slice", "true", String(64 << 20), "20", "500000", "100000"]);
    assert.equal(props.MemorySwapMax, undefined, "v1: memory+swap is the helper's file, systemd does not know it");
    assert.ok(layout.limits.some((l) => l.file.endsWith("/memory.memsw.limit_in_bytes")));
    // No limits: no cap from systemd's DefaultTasksMax either.
    const free = cgroupLayout("/sys/fs/cgroup", cg, {});
    assert.deepEqual(free.scope!.properties.find(([n]) => n === "TasksMax"), ["TasksMax", "t", "18446744073709551615"]);
    assert.match(scopeUnit("/srv/test", "bpm-web"), /^runc-[0-9a-f]{12}-bpm-web\.scope$/);
    assert.ok(scopeUnit("/var/vcap", `bpm-${"x".repeat(300)}`).length <= 255, "a unit name systemd takes");
    for (const unit of [cg.scope!, scopeUnit("/srv/test", "bpm-a.2ename.worker"), scopeUnit("/var/vcap", `bpm-${"x".repeat(300)}`)]) assert.match(unit, new RegExp(SCOPE_NAME_PATTERN));
  });

  it("finds systemd from pid 1 and its runtime directory, and its root where its init.scope hangs (hybrid)", () => {
    const dir = mkdtempSync(join(tmpdir(), "bpm-systemd-"));
    const fs = join(dir, "cgroup");
    const [proc, init, run] = [join(dir, "proc"), join(dir, "init"), join(dir, "run")];
    for (const d of [proc, init, join(run, "system"), join(fs, "memory"), join(fs, "pids"), join(fs, "cpu,cpuacct"), join(fs, "systemd"), join(fs, "unified")]) mkdirSync(d, { recursive: true });
    symlinkSync("cpu,cpuacct", join(fs, "cpu"));
    symlinkSync("cpu,cpuacct", join(fs, "cpuacct"));
    writeFileSync(join(run, "private"), "");
    writeFileSync(join(init, "comm"), "systemd\n");
    writeFileSync(join(init, "cgroup"), "12:memory:/init.scope\n1:name=systemd:/init.scope\n0::/init.scope\n");
    const mount = (id: number, point: string, type: string, opts: string) => `${id} 1 0:${id} / ${point} rw - ${type} cgroup rw,${opts}`;
    writeFileSync(join(proc, "mountinfo"), [
      mount(30, join(fs, "memory"), "cgroup", "memory"), mount(31, join(fs, "pids"), "cgroup", "pids"), mount(32, join(fs, "cpu,cpuacct"), "cgroup", "cpu,cpuacct"),
      mount(33, join(fs, "systemd"), "cgroup", "xattr,name=systemd"), mount(34, join(fs, "unified"), "cgroup2", "nsdelegate"), "",
    ].join("\n"));
    writeFileSync(join(proc, "cgroup"), "12:memory:/system.slice/runit.service\n1:name=systemd:/system.slice/runit.service\n0::/system.slice/runit.service\n");
    const facts = cgroupFacts(fs, proc, init, run);
    assert.deepEqual(facts.systemd, { root: { memory: join(fs, "memory"), pids: join(fs, "pids"), cpu: join(fs, "cpu"), cpuacct: join(fs, "cpuacct") }, tracking: [join(fs, "systemd"), join(fs, "unified")] });
    // A container's systemd without a cgroup namespace: its root is its own cgroup.
    writeFileSync(join(init, "cgroup"), "1:name=systemd:/garden/c1/init.scope\n");
    assert.equal(cgroupFacts(fs, proc, init, run).systemd?.root.memory, join(fs, "memory", "garden", "c1"));
    // Not pid 1, or no private socket: bpm makes the cgroups itself.
    writeFileSync(join(init, "comm"), "sh\n");
    assert.equal(cgroupFacts(fs, proc, init, run).systemd, null);
    rmSync(dir, { recursive: true });
  });
});
