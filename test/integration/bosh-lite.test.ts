// BOSH Lite: bpm inside containers, each with its own /var/vcap (the default
// root, bind-mounted), made as garden and docker make them: a pid and a mount
// namespace, a cgroup of its own, with or without a cgroup namespace, the
// container's own processes in its cgroup or in a leaf below it. Two
// containers run a job of the same name. Checked from the host: where each
// job's cgroup is, that a stop in one container leaves the other's job
// running, and what a job with limits gets. cgroup v2 in the VM suite
// (node test/vm/suite.mjs test/integration/bosh-lite.test.ts), v1 on this
// machine.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cgroupFsRoot, cgroupVersion } from "../../src/runtime/cgroups.ts";
import { alive, bashJob, BPM, eventually, skipUnlessRoot } from "./harness.ts";

const fsRoot = cgroupFsRoot();
const v2 = cgroupVersion(fsRoot) === 2;
/** The hierarchies a container is placed in (v1: those a job's cgroup uses; v2: the one). */
const HIERARCHIES = v2 ? [fsRoot] : ["memory", "pids", "cpu", "cpuacct"].map((h) => join(fsRoot, h));
const VCAP = "/var/vcap";
const tag = `${process.pid}-${randomBytes(3).toString("hex")}`;
const read = (file: string) => readFileSync(file, "utf8").trim();
/** bpm inside a container uses the default root: nothing of the test runner's own. */
const innerEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "BPM_BOSH_ROOT" && k !== "BPM_CGROUP_ROOT"));

interface Layout {
  name: string;
  /** The container's own processes sit in a leaf `init` below its cgroup (dind-style), not in it. */
  leaf: boolean;
  /** A cgroup namespace whose root is the container's cgroup, its tree mounted at /sys/fs/cgroup inside. */
  cgroupNs: boolean;
  /** With a cgroup namespace: false to keep the host's mount of the tree (whose root the namespace shows as "/.."). */
  ownTree?: boolean;
  /** Where a job's cgroup must be, below the container's cgroup. */
  jobsBelow: string;
  /** Whether a job's own memory and pids limits can hold there. */
  limits: boolean;
}

const LAYOUTS: Layout[] = v2
  ? [
      { name: "processes in the container's cgroup, no cgroup namespace (garden)", leaf: false, cgroupNs: false, jobsBelow: "", limits: false },
      { name: "processes in a leaf, no cgroup namespace", leaf: true, cgroupNs: false, jobsBelow: "init", limits: false },
      { name: "cgroup namespace whose root holds the processes (docker)", leaf: false, cgroupNs: true, jobsBelow: "", limits: false },
      { name: "cgroup namespace, processes in a leaf (dind)", leaf: true, cgroupNs: true, jobsBelow: "", limits: true },
    ]
  : [{ name: "processes in the container's cgroup (v1 garden and docker)", leaf: false, cgroupNs: false, jobsBelow: "", limits: true }];

/** The test runner's own cgroup in each hierarchy (mounted from the kernel's root here and in the VM). */
const runnerCgroups = HIERARCHIES.map((h) => {
  const lines = readFileSync("/proc/self/cgroup", "utf8").split("\n").map((l) => l.split(":"));
  const name = h.slice(fsRoot.length + 1);
  return lines.find((f) => (v2 ? f[0] === "0" : f[1]!.split(",").includes(name)))![2]!;
});

/** A container: its cgroup on the host (one per hierarchy on v1), its init's host pid, its /var/vcap. */
interface Container {
  cgroups: string[];
  procsDirs: string[];
  pid: number;
  child: ChildProcess;
  vcap: string;
  job(name: string, yaml: string): void;
  bpm(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }>;
  log(job: string, file?: string): string;
}

/** The container's pid 1 after its set-up: reaps what is orphaned inside it, as an init does. */
const REAPER = "import os, time\nwhile True:\n    try: os.wait()\n    except ChildProcessError: time.sleep(0.2)\n";

async function makeContainer(parent: string, name: string, layout: Layout): Promise<Container> {
  const vcap = join("/var/tmp/bpm-tests", `lite-${tag}-${name}`);
  for (const d of ["jobs", "packages", "sys", "data"]) mkdirSync(join(vcap, d), { recursive: true });
  const cgroups = HIERARCHIES.map((h) => join(h, parent, name));
  for (const cg of cgroups) mkdirSync(cg, { recursive: true });
  if (layout.leaf) for (const cg of cgroups) mkdirSync(join(cg, "init"));
  // Without a namespace the host makes the leaf and delegates; with one the container does it, inside.
  if (layout.leaf && !layout.cgroupNs) writeFileSync(join(cgroups[0]!, "cgroup.subtree_control"), "+memory +pids");
  const procsDirs = cgroups.map((cg) => (layout.leaf ? join(cg, "init") : cg));
  const [staged, go, ready] = ["staged", "go", "ready"].map((f) => join(vcap, f)) as [string, string, string];
  const inside = [
    `mount --bind ${vcap} ${VCAP}`,
    // Its own view of the tree, as docker mounts it: the host's mount shows the namespace's root as "/..".
    ...(layout.cgroupNs && layout.ownTree !== false ? ["umount -l /sys/fs/cgroup", "mount -t cgroup2 cgroup2 /sys/fs/cgroup"] : []),
    ...(layout.cgroupNs && layout.leaf ? ["echo $$ > /sys/fs/cgroup/init/cgroup.procs"] : []),
    // The host takes unshare (the runtime's shim) out of the container's cgroup, as runtimes keep theirs outside.
    `touch ${staged}`,
    `while [ ! -e ${go} ]; do sleep 0.05; done`,
    ...(layout.cgroupNs && layout.leaf ? ["echo '+memory +pids' > /sys/fs/cgroup/cgroup.subtree_control"] : []),
    `touch ${ready}`,
    `exec python3 -c '${REAPER}'`,
  ].join(" && ");
  // The namespace's root is the cgroup the container is made in: the container's, not its leaf.
  const join0 = (layout.cgroupNs ? cgroups : procsDirs).map((d) => `echo $$ > ${join(d, "cgroup.procs")}`).join(" && ");
  const ns = layout.cgroupNs ? ["--cgroup"] : [];
  const child = spawn("sh", ["-c", `${join0} && exec unshare --pid --fork --mount --mount-proc ${ns.join(" ")} sh -c "$0"`, inside], { stdio: ["ignore", "ignore", "pipe"] });
  let said = "";
  child.stderr!.on("data", (d) => (said += d));
  const unsharePid = child.pid!;
  await eventually(() => existsSync(staged) || child.exitCode !== null, () => `container ${name} not set up`);
  assert.ok(existsSync(staged), `container ${name} failed to start: ${said}`);
  for (const [n, h] of HIERARCHIES.entries()) writeFileSync(join(h, runnerCgroups[n]!, "cgroup.procs"), String(unsharePid));
  writeFileSync(go, "");
  await eventually(() => existsSync(ready) || child.exitCode !== null, () => `container ${name} not ready`);
  assert.ok(existsSync(ready), `container ${name} failed to start: ${said}`);
  const pid = Number(read(`/proc/${unsharePid}/task/${unsharePid}/children`).split(" ")[0]);
  return {
    cgroups, procsDirs, pid, child, vcap,
    job(job, yaml) {
      mkdirSync(join(vcap, "jobs", job, "config"), { recursive: true });
      writeFileSync(join(vcap, "jobs", job, "config", "bpm.yml"), yaml);
    },
    // Enters the container as `docker exec` does: the command in its cgroup (its leaf) and namespaces, and
    // nothing else there. nsenter forks into the pid namespace and waits outside it; joined with the command,
    // it is taken back out (as runc keeps itself out) before the command goes on.
    bpm(...args) {
      const enter = procsDirs.map((d) => `echo $$ > ${join(d, "cgroup.procs")}`).join(" && ");
      const c = spawn("sh", ["-c", `${enter} && exec nsenter -t ${pid} -p -m ${layout.cgroupNs ? "-C" : ""} -- sh -c 'read go; exec "$0" "$@"' "$@"`, "sh", BPM, ...args], { env: innerEnv, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      c.stdout!.on("data", (d) => (stdout += d));
      c.stderr!.on("data", (d) => (stderr += d));
      const done = new Promise<{ status: number | null; stdout: string; stderr: string }>((res) => c.on("close", (status) => res({ status, stdout, stderr })));
      const forked = () => c.exitCode === null && existsSync(`/proc/${c.pid}/task/${c.pid}/children`) && read(`/proc/${c.pid}/task/${c.pid}/children`) !== "";
      return eventually(() => forked() || c.exitCode !== null, () => "nsenter did not fork").then(() => {
        if (c.exitCode === null) for (const [n, h] of HIERARCHIES.entries()) writeFileSync(join(h, runnerCgroups[n]!, "cgroup.procs"), String(c.pid));
        c.stdin!.end("go\n");
        return done;
      });
    },
    log(job, file = `${job}.stdout.log`) {
      try {
        return readFileSync(join(vcap, "sys", "log", job, file), "utf8");
      } catch {
        return "";
      }
    },
  };
}

/** Every cgroup directory of this name below dir, and whether any holds a process. */
function findCgroups(dir: string, name: string): string[] {
  const found: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const sub = join(dir, e.name);
    if (e.name === name) found.push(sub);
    found.push(...findCgroups(sub, name));
  }
  return found;
}

async function removeContainer(c: Container) {
  c.child.kill("SIGKILL");
  // Killing its pid 1 ends every process in its pid namespace, the jobs' included.
  try {
    process.kill(c.pid, "SIGKILL");
  } catch {
    // gone already
  }
  await eventually(() => !alive(c.pid), () => `container init ${c.pid} still alive`);
  for (const cg of c.cgroups) {
    // Deepest first: what bpm left (its `bpm` directory), the leaf, the container's cgroup.
    const all: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
      all.push(d);
    };
    walk(cg);
    for (const d of all) await eventually(() => { try { rmdirSync(d); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === "ENOENT"; } }, () => `cgroup ${d} not removable`);
  }
  rmSync(c.vcap, { recursive: true, force: true });
}

describe(`BOSH Lite: bpm in containers on cgroup v${v2 ? 2 : 1}`, { skip: skipUnlessRoot }, () => {
  const parent = `bpm-lite-${tag}`;
  let madeVcap = false;
  before(() => {
    if (!existsSync(VCAP)) {
      mkdirSync(VCAP);
      madeVcap = true;
    }
    for (const h of HIERARCHIES) mkdirSync(join(h, parent));
    if (v2) {
      // The VM's root hands memory and pids down (systemd does; a bare init may not), as a garden host's does.
      const rootHas = read(join(fsRoot, "cgroup.subtree_control")).split(" ");
      const missing = ["memory", "pids"].filter((c) => !rootHas.includes(c));
      if (missing.length) writeFileSync(join(fsRoot, "cgroup.subtree_control"), missing.map((c) => `+${c}`).join(" "));
      writeFileSync(join(fsRoot, parent, "cgroup.subtree_control"), "+memory +pids");
    }
  });
  after(() => {
    for (const h of HIERARCHIES) spawnSync("rmdir", [join(h, parent)]);
    if (madeVcap) spawnSync("rmdir", [VCAP]);
  });

  describe("a cgroup namespace that kept the host's mount of the tree", () => {
    const layout: Layout = { name: "no tree of its own", leaf: false, cgroupNs: true, ownTree: false, jobsBelow: "", limits: false };
    const lost = `lost-${tag}`;
    let c: Container;
    before(async () => {
      c = await makeContainer(parent, "lost", layout);
    });
    after(async () => {
      if (!c) return;
      await c.bpm("stop", lost);
      await removeContainer(c);
    });

    it("refuses to start a job whose cgroup would lie outside the container, saying why, and makes nothing", async () => {
      c.job(lost, bashJob(lost, "echo up; exec sleep 1000"));
      const started = await c.bpm("start", lost);
      assert.equal(started.status, 1, `${started.stdout}${started.stderr}`);
      assert.match(started.stderr, /^Error: failed to start job-process: bpm runs in a container, but its own cgroup is not inside the cgroup tree mounted at \/sys\/fs\/cgroup/);
      assert.equal(c.log(lost), "", "the job did not run");
      for (const h of HIERARCHIES) assert.ok(!existsSync(join(h, "bpm", `bpm-${lost}`)), `nothing at the host's top level (${join(h, "bpm")})`);
      assert.equal((await c.bpm("stop", lost)).status, 0, "stop finds nothing to stop");
    });
  });

  for (const [i, layout] of LAYOUTS.entries()) {
    describe(layout.name, () => {
      const twin = `twin-${tag}`;
      const limited = `limited-${tag}`;
      let c1: Container;
      let c2: Container;
      before(async () => {
        c1 = await makeContainer(parent, `l${i}-c1`, layout);
        c2 = await makeContainer(parent, `l${i}-c2`, layout);
      });
      after(async () => {
        for (const c of [c1, c2]) {
          if (!c) continue;
          for (const job of [twin, limited]) await c.bpm("stop", job);
          await removeContainer(c);
        }
      });

      it("puts each container's job of the same name in a cgroup inside that container; a stop in one leaves the other running", async () => {
        for (const c of [c1, c2]) {
          c.job(twin, bashJob(twin, "echo up; exec sleep 1000"));
          const started = await c.bpm("start", twin);
          assert.equal(started.status, 0, `start in ${c.cgroups[0]}: ${started.stdout}${started.stderr}`);
        }
        const where = [c1, c2].map((c) => c.cgroups.map((cg) => join(cg, layout.jobsBelow, "bpm", `bpm-${twin}`)));
        for (const [n, c] of [c1, c2].entries()) {
          for (const dir of v2 ? where[n]! : where[n]!.slice(0, 2)) {
            assert.ok(existsSync(dir), `the job's cgroup is ${dir}, inside its container; found: ${findCgroups(join(HIERARCHIES[0]!), `bpm-${twin}`).join(", ")}`);
            assert.notEqual(read(join(dir, "cgroup.procs")), "", `${dir} holds the job`);
          }
          assert.equal((await c.bpm("list")).stdout.split("\n").find((l) => l.startsWith(twin))?.split(/\s+/)[2], "running");
        }
        for (const h of HIERARCHIES) assert.ok(!existsSync(join(h, "bpm", `bpm-${twin}`)), `nothing at the host's top level (${join(h, "bpm")})`);
        const otherPid = Number((await c2.bpm("pid", twin)).stdout);
        assert.ok(otherPid > 0);
        const stopped = await c1.bpm("stop", twin);
        assert.equal(stopped.status, 0, stopped.stderr);
        assert.ok(!existsSync(where[0]![0]!), "the stopped job's cgroup is removed");
        assert.equal((await c2.bpm("pid", twin)).stdout.trim(), String(otherPid), "the other container's job runs on");
        assert.notEqual(read(join(where[1]![0]!, "cgroup.procs")), "", "and its cgroup still holds it");
        assert.equal((await c2.bpm("list")).stdout.split("\n").find((l) => l.startsWith(twin))?.split(/\s+/)[2], "running");
        assert.equal((await c2.bpm("stop", twin)).status, 0);
        assert.ok(!existsSync(where[1]![0]!), "its cgroup is removed on its own stop");
      });

      it(layout.limits ? "gives a job its own memory and pids limits" : "starts a job with limits without them, and says once why, on stderr and in bpm.log", async () => {
        c1.job(limited, bashJob(limited, "echo up; exec sleep 1000", "  limits: {memory: 64M, processes: 20}\n"));
        const started = await c1.bpm("start", limited);
        assert.equal(started.status, 0, `${started.stdout}${started.stderr}`);
        await eventually(() => c1.log(limited).includes("up"), () => c1.log(limited, `${limited}.stderr.log`));
        const mem = join(c1.cgroups[0]!, layout.jobsBelow, "bpm", `bpm-${limited}`);
        const pids = join(c1.cgroups[v2 ? 0 : 1]!, layout.jobsBelow, "bpm", `bpm-${limited}`);
        assert.notEqual(read(join(mem, "cgroup.procs")), "", `${mem} holds the job`);
        const events = c1.log(limited, "bpm.log").split("\n").filter(Boolean).map((l) => JSON.parse(l));
        const said = events.filter((e) => e.message === "bpm.start.limits-not-applied");
        if (layout.limits) {
          assert.equal(read(join(mem, v2 ? "memory.max" : "memory.limit_in_bytes")), String(64 << 20));
          assert.equal(read(join(pids, "pids.max")), "20");
          assert.equal(said.length, 0);
          assert.doesNotMatch(started.stderr, /limits not applied/);
        } else {
          assert.ok(!existsSync(join(mem, "memory.max")), "no memory controller where none can be had");
          assert.match(started.stderr, /^Warning: limits not applied: memory, processes \(bpm's cgroup .* holds the container's own processes/m);
          assert.equal(said.length, 1, "said once in bpm.log");
          assert.match(said[0].data.error, /^limits not applied: memory, processes/);
          const again = await c1.bpm("start", limited);
          assert.equal(again.status, 0);
          assert.doesNotMatch(again.stderr, /limits not applied/, "not again for a start that finds it running");
        }
        assert.equal((await c1.bpm("stop", limited)).status, 0);
        assert.ok(!existsSync(mem), "its cgroup is removed on stop");
      });
    });
  }
});
