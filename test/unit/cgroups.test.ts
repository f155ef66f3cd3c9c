// Where jobs' cgroups go: pure path logic. What the kernel does with them is
// tested for real: cgroup v1 on this machine (test/integration), v2 in a VM on
// a second kernel (npm run test:vm, test/integration/cgroups.test.ts).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { cgroupLayout, jobCgroupIn, placeJobs, type CgroupFacts, type CgroupNode } from "../../src/plan/cgroup.ts";
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
    return { version: 2, mounts: { memory: at, pids: at, cpu: at, cpuacct: at }, topIsRoot: true, nestedPidNs: false, own: null, parent: null, ...over };
  };
  const mem64 = { memoryBytes: 64 << 20, pids: 20 };

  it("on a VM (the kernel's root tree, no container): the top of the hierarchy, every controller, as ever", () => {
    const p = placeJobs(v2Facts({ mounts: Object.fromEntries(["memory", "pids", "cpu", "cpuacct"].map((h) => [h, { top: "/sys/fs/cgroup", own: "/sys/fs/cgroup/system.slice/monit.service" }])) as CgroupFacts["mounts"] }));
    assert.deepEqual(p, { version: 2, base: { memory: "/sys/fs/cgroup", pids: "/sys/fs/cgroup", cpu: "/sys/fs/cgroup", cpuacct: "/sys/fs/cgroup" }, delegable: null, why: null });
    const layout = cgroupLayout("/sys/fs/cgroup", jobCgroupIn(p, "/var/vcap", "bpm-web"), mem64);
    assert.deepEqual(layout.enable, ["/sys/fs/cgroup", "/sys/fs/cgroup/bpm"]);
    assert.equal(layout.controllers, "memory pids");
  });

  it("v1 in a container: bpm's own cgroup in each hierarchy; on a v1 VM with one hierarchy elsewhere (this CI host), the tops", () => {
    const mounts = {
      memory: { top: "/c/memory", own: "/c/memory/garden/x" }, pids: { top: "/c/pids", own: "/c/pids/garden/x" },
      cpu: { top: "/c/cpu", own: "/c/cpu/garden/x" }, cpuacct: { top: "/c/cpuacct", own: "/c/cpuacct/garden/x" },
    };
    const inside = placeJobs({ version: 1, mounts, topIsRoot: true, nestedPidNs: true, own: null, parent: null });
    assert.equal(jobCgroupIn(inside, "/var/vcap", "bpm-web").memory, "/c/memory/garden/x/bpm/bpm-web");
    assert.equal(jobCgroupIn(inside, "/var/vcap", "bpm-web").cpuacct, "/c/cpuacct/garden/x/bpm/bpm-web");
    const host = placeJobs({ version: 1, mounts: { ...mounts, memory: { top: "/c/memory", own: "/c/memory/process_api/1234" } }, topIsRoot: true, nestedPidNs: false, own: null, parent: null });
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
});
