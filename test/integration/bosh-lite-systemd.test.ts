// BOSH Lite with Noble stemcells: containers that boot systemd as their init
// (the docker CPI's `start_containers_with_systemd`), each with its own
// /var/vcap, two of them running a job of the same name. Each container is
// made of unshare here (pid, mount, cgroup, uts and ipc namespaces, a cgroup
// of its own below a parent of the test's, its own cgroup2 mount, fresh /run
// and /tmp) and runs /lib/systemd/systemd as its pid 1, booted to a small
// target of the test's; bpm is run in it as `docker exec` runs a command
// (nsenter, from the container's init.scope, as runc joins a systemd
// container). There bpm must ask the container's own systemd for each job's
// transient scope, so the job's cgroup is
// `<container's cgroup>/system.slice/runc-bpm-JOB.scope`: inside the
// container, never the VM's system.slice, holding the job's limits, and a
// stop in one container leaves the other's job of the same name running.
// Checked from the VM's side (the host's view). Runs where systemd is pid 1
// on cgroup v2: the VM suite's systemd mode
// (node test/vm/suite.mjs --init systemd test/integration/bosh-lite-systemd.test.ts);
// skipped elsewhere.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cgroupFsRoot, cgroupVersion } from "../../src/runtime/cgroups.ts";
import { alive, bashJob, BPM, eventually, isRoot } from "./harness.ts";

const fsRoot = cgroupFsRoot();
const SYSTEMD = "/lib/systemd/systemd";
const VCAP = "/var/vcap";
const tag = `${process.pid}-${randomBytes(3).toString("hex")}`;
/** How long a container's systemd may take to boot (TCG emulation on a busy machine is slow). */
const BOOT_BOUND_MS = 180_000;
/** How long one command in a container may take. */
const COMMAND_BOUND_MS = 300_000;

const readOr = (file: string, or = "") => {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return or;
  }
};
const read = (file: string) => readFileSync(file, "utf8").trim();
const pid1 = readOr("/proc/1/comm");
const missingTool = ["unshare", "nsenter", "systemctl", "mount", "umount"].find((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);

const skip = !isRoot || !existsSync(BPM)
  ? "needs root and a built dist/bpm"
  : cgroupVersion(fsRoot) !== 2
    ? "needs cgroup v2 (a Noble stemcell's layout): runs in the VM suite's systemd mode"
    : pid1 !== "systemd" || !existsSync("/run/systemd/system")
      ? `needs systemd as pid 1 (pid 1 here is ${pid1 || "unknown"}): runs in the VM suite's systemd mode, \`node test/vm/suite.mjs --init systemd ${"test/integration/bosh-lite-systemd.test.ts"}\``
      : !existsSync(SYSTEMD)
        ? `needs ${SYSTEMD} to boot in the containers (apt-get install systemd)`
        : missingTool
          ? `needs ${missingTool} (util-linux, systemd)`
          : false;

/** bpm inside a container uses the default root: nothing of the test runner's own. */
const innerEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "BPM_BOSH_ROOT" && k !== "BPM_CGROUP_ROOT"));

/** The test runner's own cgroup (a service's, under the VM's systemd). */
const runnerCgroup = () => join(fsRoot, readFileSync("/proc/self/cgroup", "utf8").split("\n").find((l) => l.startsWith("0::"))!.slice(3));

/** What the containers' systemd boots to: this alone (no sysinit.target, no gettys, no journald: it logs to
 * its stderr, a file of the test's). Everything else it runs is the manager itself and the scopes asked of it. */
const TARGET = "bpm-lite.target";
const TARGET_UNIT = `[Unit]
Description=bpm test: a BOSH Lite container's boot
DefaultDependencies=no
AllowIsolate=yes
`;

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** A container: its cgroup on the VM, its pid 1 (systemd) by the VM's pid, its /var/vcap. */
interface Container {
  name: string;
  cgroup: string;
  /** unshare's pid (outside the container) and the container's pid 1 (0 until known). */
  unsharePid: number;
  pid: number;
  dir: string;
  vcap: string;
  /** What the container's systemd said (its stderr). */
  systemdLog(): string;
  job(name: string, yaml: string): void;
  /** Runs a command in the container as `docker exec` does. */
  exec(argv: string[]): Promise<Result>;
  bpm(...args: string[]): Promise<Result>;
  log(job: string, file?: string): string;
}

const containers: Container[] = [];

/** Makes a container and boots systemd in it; it is in `containers` (for cleanup) as soon as it has a process. */
async function bootContainer(parent: string, name: string): Promise<Container> {
  const dir = join("/var/tmp/bpm-tests", `lite-sd-${tag}-${name}`);
  const vcap = join(dir, "vcap");
  for (const d of ["jobs", "packages", "sys", "data"]) mkdirSync(join(vcap, d), { recursive: true });
  mkdirSync(join(dir, "units"));
  writeFileSync(join(dir, "units", TARGET), TARGET_UNIT);
  const cgroup = join(fsRoot, parent, name);
  mkdirSync(cgroup);
  const [staged, go] = ["staged", "go"].map((f) => join(dir, f)) as [string, string];
  const logFile = join(dir, "systemd.log");
  const inside = [
    // Its own /run (systemd's runtime directory, its private socket) and /tmp, as a container's.
    "mount -t tmpfs -o mode=0755 run /run",
    "mount -t tmpfs -o mode=1777 tmp /tmp",
    // Its own view of the cgroup tree, as docker mounts it in a cgroup namespace: its root is the container's cgroup.
    "umount -l /sys/fs/cgroup",
    "mount -t cgroup2 cgroup2 /sys/fs/cgroup",
    // Its own /var, as a container's root file system has, so that its /var/vcap is a directory of its
    // own: the VM's /var is brought back entry by entry (with what is mounted below it: /var/tmp, where
    // this test keeps its files) but for a vcap of the VM's, and nothing is made in the VM's /var. (A /var/vcap made in the VM
    // would be shared with other tests running at the same time, and its removal by one of them would
    // detach this container's mount on it.)
    "mount -t tmpfs -o mode=0755 stage /mnt",
    "mkdir /mnt/var",
    "mount --rbind /var /mnt/var",
    "mount -t tmpfs -o mode=0755 var /var",
    `for e in $(ls -A /mnt/var); do f=/mnt/var/$e; [ $e = vcap ] && continue; if [ -L $f ]; then cp -P $f /var/$e; elif [ -d $f ]; then mkdir /var/$e && mount --rbind $f /var/$e; else touch /var/$e && mount --bind $f /var/$e; fi || exit 1; done`,
    "umount -l /mnt",
    `mkdir ${VCAP}`,
    `mount --bind ${vcap} ${VCAP}`,
    // systemd as pid 1 logs to /dev/console, which a container runtime binds to a terminal of its own
    // (docker: a pty): here the file systemd's stderr goes to, not the VM's console.
    `mount --bind ${logFile} /dev/console`,
    "mkdir -p /run/systemd/system",
    `cp ${join(dir, "units", TARGET)} /run/systemd/system/`,
    // The VM takes unshare (the runtime's shim) out of the container's cgroup, so that systemd is alone in it.
    `touch ${staged}`,
    `while [ ! -e ${go} ]; do sleep 0.05; done`,
    // container=: systemd knows it is in a container (and reads no kernel command line).
    `exec env -i container=bpm-lite PATH=/usr/sbin:/usr/bin:/sbin:/bin ${SYSTEMD} --unit=${TARGET} --log-target=console --log-level=info --show-status=no`,
  ].join(" && ");
  const log = openSync(logFile, "a");
  const child = spawn("sh", ["-c", `echo $$ > ${join(cgroup, "cgroup.procs")} && exec unshare --pid --fork --mount --mount-proc --cgroup --uts --ipc sh -c "$0"`, inside], {
    stdio: ["ignore", log, log],
  });
  closeSync(log);
  const c: Container = {
    name, cgroup, unsharePid: child.pid!, pid: 0, dir, vcap,
    systemdLog: () => readOr(logFile),
    job(job, yaml) {
      mkdirSync(join(vcap, "jobs", job, "config"), { recursive: true });
      writeFileSync(join(vcap, "jobs", job, "config", "bpm.yml"), yaml);
    },
    // As `docker exec` (runc) does in a container that runs systemd: the command joins the init's cgroup
    // (init.scope: the container's own cgroup enables controllers, so it holds no process) and the
    // container's namespaces. nsenter forks into the pid namespace and waits outside it; joined with the
    // command, it is taken back out (as runc keeps itself out) before the command goes on.
    exec(argv) {
      const enter = `echo $$ > ${join(cgroup, "init.scope", "cgroup.procs")}`;
      const e = spawn("sh", ["-c", `${enter} && exec nsenter -t ${c.pid} -p -m -C -u -i -- sh -c 'read go; exec "$0" "$@"' "$@"`, "sh", ...argv], { env: innerEnv, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      e.stdout!.on("data", (d) => (stdout += d));
      e.stderr!.on("data", (d) => (stderr += d));
      const killer = setTimeout(() => e.kill("SIGKILL"), COMMAND_BOUND_MS);
      const done = new Promise<Result>((res) =>
        e.on("close", (status, signal) => {
          clearTimeout(killer);
          res({ status, stdout, stderr: status === null ? `${stderr}[test: \`${argv.join(" ")}\` ended by ${signal}]\n` : stderr });
        }),
      );
      const children = () => readOr(`/proc/${e.pid}/task/${e.pid}/children`);
      return eventually(() => (e.exitCode === null && children() !== "") || e.exitCode !== null, () => "nsenter did not fork").then(() => {
        if (e.exitCode === null) writeFileSync(join(runnerCgroup(), "cgroup.procs"), String(e.pid));
        e.stdin!.end("go\n");
        return done;
      });
    },
    bpm: (...args) => c.exec([BPM, ...args]),
    log(job, file = `${job}.stdout.log`) {
      return readOr(join(vcap, "sys", "log", job, file));
    },
  };
  containers.push(c);
  const said = () => `${c.systemdLog().split("\n").slice(-30).join("\n")}`;
  await eventually(() => existsSync(staged) || child.exitCode !== null, () => `container ${name} not set up`);
  assert.ok(existsSync(staged), `container ${name} failed to set up: ${said()}`);
  c.pid = Number(read(`/proc/${c.unsharePid}/task/${c.unsharePid}/children`).split(" ")[0]);
  writeFileSync(join(runnerCgroup(), "cgroup.procs"), String(c.unsharePid));
  writeFileSync(go, "");
  // Ready on events: systemd's private socket appears in the container's /run, then the boot's jobs are done.
  await eventually(() => existsSync(`/proc/${c.pid}/root/run/systemd/private`) || !alive(c.pid), () => `container ${name}'s systemd has no private socket yet:\n${said()}`, BOOT_BOUND_MS);
  assert.ok(alive(c.pid), `container ${name}'s systemd ended:\n${said()}`);
  assert.equal(read(`/proc/${c.pid}/comm`), "systemd", "the container's pid 1 is systemd");
  const state = await c.exec(["systemctl", "is-system-running", "--wait"]);
  assert.match(state.stdout.trim(), /^(running|degraded)$/, `container ${name}'s systemd did not finish booting: ${state.stdout}${state.stderr}\n${said()}`);
  if (state.stdout.trim() === "degraded") {
    const failed = await c.exec(["systemctl", "--failed", "--no-legend", "--plain", "--no-pager"]);
    assert.fail(`container ${name}'s systemd is degraded: ${failed.stdout}\n${said()}`);
  }
  return c;
}

/** Kills the container (its pid 1 by pid: that ends every process in its pid namespace), removes its cgroups and files. */
async function removeContainer(c: Container) {
  c.pid ||= Number(readOr(`/proc/${c.unsharePid}/task/${c.unsharePid}/children`).split(" ")[0]) || 0;
  for (const pid of [c.pid, c.unsharePid]) {
    if (pid <= 0) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
  for (const pid of [c.pid, c.unsharePid]) if (pid > 0) await eventually(() => !alive(pid), () => `container ${c.name}'s process ${pid} still alive`);
  if (existsSync(c.cgroup)) {
    // Deepest first: the scopes and slices its systemd made, then the container's cgroup.
    const all: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
      all.push(d);
    };
    walk(c.cgroup);
    for (const d of all) await eventually(() => { try { rmdirSync(d); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === "ENOENT"; } }, () => `cgroup ${d} not removable: ${readOr(join(d, "cgroup.procs"))}`);
  }
  rmSync(c.dir, { recursive: true, force: true });
}

/** Every cgroup directory of this name below dir. */
function findCgroups(dir: string, name: string): string[] {
  const found: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return found; // removed while we looked
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const sub = join(dir, e.name);
    if (e.name === name) found.push(sub);
    found.push(...findCgroups(sub, name));
  }
  return found;
}

/** A process's pids in each pid namespace it is in, the VM's first (/proc/PID/status NSpid). */
const nsPids = (pid: number | string) => readOr(`/proc/${pid}/status`).split("\n").find((l) => l.startsWith("NSpid:"))?.split(/\s+/).slice(1).map(Number) ?? [];

/** The VM's pid of a process container c knows as inPid, found among the pids in a cgroup (as the VM sees
 * them). The job's init is in a pid namespace of its own below the container's, so it is the pid at the
 * container's level, not the last one, that must match. */
function hostPidOf(c: Container, inPid: number, cgroup: string): number | undefined {
  const level = nsPids(c.pid).length - 1;
  for (const p of readOr(join(cgroup, "cgroup.procs")).split("\n").filter(Boolean)) if (nsPids(p)[level] === inPid) return Number(p);
  return undefined;
}

const scopeOf = (job: string) => `runc-bpm-${job}.scope`;

/** Properties of a unit, as the container's systemd tells them (systemctl show, any order). */
async function show(c: Container, unit: string, ...props: string[]): Promise<Record<string, string>> {
  const r = await c.exec(["systemctl", "show", "--no-pager", ...props.flatMap((p) => ["-p", p]), unit]);
  assert.equal(r.status, 0, `systemctl show ${unit} in ${c.name}: ${r.stderr}`);
  return Object.fromEntries(r.stdout.split("\n").filter(Boolean).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

describe("BOSH Lite with systemd as the containers' init (Noble): each job a scope of its container's systemd", { skip }, () => {
  const parent = `bpm-lite-sd-${tag}`;
  const twin = `twin-${tag}`;
  const limited = `limited-${tag}`;
  let c1: Container;
  let c2: Container;

  before(async () => {
    // The VM's root hands memory and pids down (its systemd does), as a docker host's does, and the
    // parent hands them to the containers, whose systemd hands them on to its scopes.
    const rootHas = read(join(fsRoot, "cgroup.subtree_control")).split(" ");
    const missing = ["memory", "pids"].filter((c) => !rootHas.includes(c));
    if (missing.length) writeFileSync(join(fsRoot, "cgroup.subtree_control"), missing.map((c) => `+${c}`).join(" "));
    mkdirSync(join(fsRoot, parent));
    writeFileSync(join(fsRoot, parent, "cgroup.subtree_control"), "+memory +pids");
    // Booted side by side: each takes a while under emulation. Both settle before a failure is told, so that
    // cleanup never races a boot.
    const booted = await Promise.allSettled([bootContainer(parent, "c1"), bootContainer(parent, "c2")]);
    for (const b of booted) if (b.status === "rejected") throw b.reason;
    [c1, c2] = booted.map((b) => (b as PromiseFulfilledResult<Container>).value) as [Container, Container];
  });

  after(async () => {
    // Whatever a test left running goes with its container: its pid namespace, mounts, cgroups and /var/vcap.
    for (const c of containers) await removeContainer(c);
    spawnSync("rmdir", [join(fsRoot, parent)]);
  });

  it("puts each container's job of the same name in a scope of that container's systemd, inside the container's cgroup; a stop in one leaves the other running and no scope behind", async () => {
    const script = "cat /proc/self/cgroup; echo up; exec sleep 1000";
    for (const c of [c1, c2]) {
      c.job(twin, bashJob(twin, script));
      const started = await c.bpm("start", twin);
      assert.equal(started.status, 0, `start in ${c.name}: ${started.stdout}${started.stderr}`);
    }
    const scope = scopeOf(twin);
    const where = [c1, c2].map((c) => join(c.cgroup, "system.slice", scope));
    const pids: number[] = [];
    for (const [n, c] of [c1, c2].entries()) {
      await eventually(() => c.log(twin).includes("up"), () => `${c.name}: ${c.log(twin)}${c.log(twin, `${twin}.stderr.log`)}`);
      // From inside the job: the scope's cgroup as the container's cgroup namespace names it.
      assert.equal(c.log(twin).split("\n")[0], `0::/system.slice/${scope}`, `the job in ${c.name} sees its cgroup as its container's systemd's scope`);
      // From the VM: the job's init (bpm's pid in the container, mapped through NSpid) is in the scope inside the container's cgroup.
      const inPid = Number((await c.bpm("pid", twin)).stdout.trim());
      assert.ok(inPid > 0, `bpm pid ${twin} in ${c.name}`);
      const hostPid = hostPidOf(c, inPid, where[n]!);
      assert.ok(hostPid, `the job's init (pid ${inPid} in ${c.name}) is in ${where[n]}; that holds ${readOr(join(where[n]!, "cgroup.procs"), "(no such cgroup)")}; scopes of that name: ${findCgroups(fsRoot, scope).join(", ")}`);
      assert.equal(read(`/proc/${hostPid}/cgroup`), `0::${where[n]!.slice(fsRoot.length)}`);
      pids.push(hostPid);
      assert.equal((await c.bpm("list")).stdout.split("\n").find((l) => l.startsWith(twin))?.split(/\s+/)[2], "running");
      // The container's systemd knows the scope; the VM's does not.
      assert.deepEqual(await show(c, scope, "ActiveState", "ControlGroup"), { ActiveState: "active", ControlGroup: `/system.slice/${scope}` }, `${c.name}'s systemd`);
    }
    assert.deepEqual(findCgroups(fsRoot, scope).sort(), [...where].sort(), "the scopes exist only inside their containers (none in the VM's system.slice)");
    assert.equal(spawnSync("systemctl", ["list-units", "--all", "--no-legend", "--plain", "--no-pager", scope], { encoding: "utf8" }).stdout, "", "the VM's systemd has no such unit");

    const stopped = await c1.bpm("stop", twin);
    assert.equal(stopped.status, 0, stopped.stderr);
    assert.ok(!alive(pids[0]!), "the stopped job is gone");
    assert.ok(!existsSync(where[0]!), "the stopped job's scope is removed");
    assert.equal((await c1.exec(["systemctl", "list-units", "--all", "--no-legend", "--plain", "--no-pager", "runc-*"])).stdout, "", "c1's systemd keeps no runc-* unit");
    assert.ok(alive(pids[1]!), "the other container's job runs on");
    const otherPid = Number((await c2.bpm("pid", twin)).stdout.trim());
    assert.equal(hostPidOf(c2, otherPid, where[1]!), pids[1], "in its own scope still");
    assert.equal((await c2.bpm("list")).stdout.split("\n").find((l) => l.startsWith(twin))?.split(/\s+/)[2], "running");
    assert.match((await c2.exec(["systemctl", "list-units", "--all", "--no-legend", "--plain", "--no-pager", "runc-*"])).stdout, new RegExp(`^${scope.replace(/\./g, "\\.")} +loaded +active +running`));
    assert.deepEqual(findCgroups(fsRoot, scope), [where[1]!]);

    assert.equal((await c2.bpm("stop", twin)).status, 0);
    assert.ok(!alive(pids[1]!));
    assert.ok(!existsSync(where[1]!), "its scope is removed on its own stop");
    assert.equal((await c2.exec(["systemctl", "list-units", "--all", "--no-legend", "--plain", "--no-pager", "runc-*"])).stdout, "", "c2's systemd keeps no runc-* unit");
  });

  it("gives a job its own memory and pids limits, as the scope's, in the container's cgroup", async () => {
    c1.job(limited, bashJob(limited, "cat /proc/self/cgroup; echo up; exec sleep 1000", "  limits: {memory: 64M, processes: 20}\n"));
    const started = await c1.bpm("start", limited);
    assert.equal(started.status, 0, `${started.stdout}${started.stderr}`);
    assert.doesNotMatch(started.stderr, /limits not applied/);
    await eventually(() => c1.log(limited).includes("up"), () => c1.log(limited, `${limited}.stderr.log`));
    const scope = scopeOf(limited);
    const dir = join(c1.cgroup, "system.slice", scope);
    assert.equal(c1.log(limited).split("\n")[0], `0::/system.slice/${scope}`);
    assert.ok(hostPidOf(c1, Number((await c1.bpm("pid", limited)).stdout.trim()), dir), `${dir} holds the job's init`);
    assert.equal(read(join(dir, "memory.max")), String(64 << 20));
    if (existsSync(join(dir, "memory.swap.max"))) assert.equal(read(join(dir, "memory.swap.max")), "0", "no swap on top");
    assert.equal(read(join(dir, "pids.max")), "20");
    assert.deepEqual(await show(c1, scope, "MemoryMax", "TasksMax"), { MemoryMax: String(64 << 20), TasksMax: "20" }, "the container's systemd holds them as the scope's own");
    assert.deepEqual(findCgroups(fsRoot, scope), [dir], "only inside the container");
    assert.equal((await c1.bpm("stop", limited)).status, 0);
    assert.ok(!existsSync(dir), "its scope is removed on stop");
    assert.equal((await c1.exec(["systemctl", "list-units", "--all", "--no-legend", "--plain", "--no-pager", "runc-*"])).stdout, "");
  });
});
