// The host's cgroups as bpm finds them: which version it runs, where cgroupfs
// is, where bpm itself sits in it (container or VM), and what a job uses now
// (list --json). Where jobs go is decided in src/plan/cgroup.ts from these
// facts; the helper makes and removes the cgroups.
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { RecordedEntry } from "../plan/record.ts";
import { HIERARCHIES, jobCgroupIn, placeJobs, type CgroupFacts, type CgroupNode, type CgroupVersion, type Hierarchy, type JobCgroup, type Placement } from "../plan/cgroup.ts";

export { cgroupDirs, cgroupLayout, limitsNotHeld, pathHash, wantsCpu, type CgroupLayout, type CgroupVersion, type JobCgroup, type Limits } from "../plan/cgroup.ts";

export function cgroupFsRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.BPM_CGROUP_ROOT || "/sys/fs/cgroup";
}

export function cgroupVersion(fsRoot: string): CgroupVersion {
  return existsSync(join(fsRoot, "cgroup.controllers")) ? 2 : 1;
}

/** Why this host cannot give a job the CPU limits it asks for, or null if it can. bpm mounts
 * nothing: on v1 the bpm release's pre-start mounts the cpu,cpuacct hierarchy where a
 * stemcell lacks it. */
export function cpuControllerMissing(fsRoot: string, limits: { cpus?: number; cpuWeight?: number }): string | null {
  const lacks = (what: string, where: string) =>
    `the job asks for ${what}, but this machine has no cgroup cpu controller for it (${where})`;
  const asked = limits.cpus !== undefined ? "limits.cpu" : "limits.cpu_weight";
  if (cgroupVersion(fsRoot) === 2) {
    let controllers = "";
    try {
      controllers = readFileSync(join(fsRoot, "cgroup.controllers"), "utf8");
    } catch {
      // unreadable: as good as absent
    }
    return controllers.split(/\s+/).includes("cpu") ? null : lacks(asked, `no "cpu" in ${join(fsRoot, "cgroup.controllers")}`);
  }
  const need = [
    ...(limits.cpus !== undefined ? [join(fsRoot, "cpu", "cpu.cfs_quota_us")] : []),
    ...(limits.cpuWeight !== undefined ? [join(fsRoot, "cpu", "cpu.shares")] : []),
    join(fsRoot, "cpuacct", "cpuacct.usage"),
  ];
  const missing = need.find((f) => !existsSync(f));
  return missing ? lacks(asked, `${missing} does not exist; the bpm release's pre-start mounts the cpu,cpuacct hierarchy`) : null;
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** mountinfo's octal escapes (\040 for a space). */
const unescape = (field: string) => field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

interface CgroupMount {
  point: string;
  /** The cgroup the mount shows at its top, as this process's cgroup namespace names it. */
  root: string;
  fstype: string;
  options: string[];
}

function cgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-");
    if (dash < 0 || !f[dash + 1]?.startsWith("cgroup")) continue;
    mounts.push({ point: unescape(f[4]!), root: unescape(f[3]!), fstype: f[dash + 1]!, options: (f[dash + 3] ?? "").split(",") });
  }
  return mounts;
}

/** Where hierarchy h's tree is (v2: the one unified tree), and its mount, if bpm finds one there.
 * v1: where cpu and cpuacct are mounted together, one of the two names is a symlink to the mount. */
function hierarchyMount(mounts: CgroupMount[], fsRoot: string, version: CgroupVersion, h: Hierarchy): { top: string; mount: CgroupMount | undefined } {
  const top = version === 2 ? fsRoot : join(fsRoot, h);
  const point = realPath(top);
  return { top, mount: mounts.find((m) => m.point === point && (version === 2 ? m.fstype === "cgroup2" : m.fstype === "cgroup" && m.options.includes(h))) };
}

/** The directory of cgroup `path` in a tree mounted at `top` whose root is `root`, or null where it lies outside
 * (a cgroup namespace's view of a mount made outside it names that mount's root "/.." or the like). */
function inside(root: string, path: string, top: string): string | null {
  if (root.split("/").includes("..") || path.split("/").includes("..")) return null;
  // join() keeps a trailing slash ("/" → "TOP/"): a directory is named one way only.
  const under = (rel: string) => join(top, rel).replace(/(.)\/+$/, "$1");
  if (root === "/") return under(path);
  return path === root || path.startsWith(root + "/") ? under(path.slice(root.length)) : null;
}

/** /proc/self/cgroup: hierarchy id, its controllers, and bpm's cgroup in it (relative to bpm's cgroup namespace). */
function ownCgroups(text: string): { id: string; controllers: string[]; path: string }[] {
  return text.split("\n").filter(Boolean).map((line) => {
    const [id, controllers, ...path] = line.split(":");
    return { id: id!, controllers: controllers!.split(","), path: path.join(":") };
  });
}

/** Whether a cgroup or one below it holds a process this pid namespace cannot see (cgroup.procs shows it as 0).
 * Bounded: a tree too big to look through counts as someone else's. */
function othersBelow(dir: string, budget = { dirs: 1000 }): boolean {
  if (--budget.dirs < 0) return true;
  if ((readText(join(dir, "cgroup.procs")) ?? "").split("\n").includes("0")) return true;
  let children: string[];
  try {
    children = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return false;
  }
  return children.some((c) => othersBelow(join(dir, c), budget));
}

function cgroupNode(dir: string, below: boolean): CgroupNode {
  return {
    dir,
    holdsProcesses: (readText(join(dir, "cgroup.procs")) ?? "").trim() !== "",
    othersBelow: below && othersBelow(dir),
    controllers: (readText(join(dir, "cgroup.controllers")) ?? "").split(/\s+/).filter(Boolean),
  };
}

/** The kernel's first pid namespace has a fixed inode number (PROC_PID_INIT_INO); a container's has another.
 * (NSpid in /proc/self/status cannot tell: a container's own /proc starts at its namespace.) */
const INITIAL_PID_NS = `pid:[${0xeffffffc}]`;

function nestedPidNs(proc: string): boolean {
  try {
    return readlinkSync(join(proc, "ns", "pid")) !== INITIAL_PID_NS;
  } catch {
    return false;
  }
}

/** Where systemd listens for root without a bus daemon. */
const SYSTEMD_RUN = "/run/systemd";

/** systemd, when it is pid 1 of bpm's pid namespace (a VM's, or a container's that boots systemd) and
 * listens on its private socket: the directory of its root cgroup in each hierarchy, as bpm sees it,
 * and in those it keeps for itself (hybrid: name=systemd, unified). Its root is where its own
 * init.scope hangs (a container's systemd without a cgroup namespace sits below the host's root).
 * null where it is not there, or its root lies outside the trees mounted here (a BPM_CGROUP_ROOT). */
function systemdFacts(fsRoot: string, version: CgroupVersion, mounts: CgroupMount[], init: string, run: string): CgroupFacts["systemd"] {
  if ((readText(join(init, "comm")) ?? "").trim() !== "systemd" || !existsSync(join(run, "system")) || !existsSync(join(run, "private"))) return null;
  const lines = ownCgroups(readText(join(init, "cgroup")) ?? "");
  const line = lines.find((c) => c.controllers.includes("name=systemd")) ?? lines.find((c) => c.id === "0");
  if (!line) return null;
  const rootPath = line.path.replace(/\/init\.scope$/, "") || "/";
  const at = (point: string, fits: (m: CgroupMount) => boolean) => {
    const mount = mounts.find((m) => m.point === realPath(point) && fits(m));
    return mount ? inside(mount.root, rootPath, point) : null;
  };
  const root = {} as Record<Hierarchy, string>;
  for (const h of HIERARCHIES) {
    const { top, mount } = hierarchyMount(mounts, fsRoot, version, h);
    const dir = mount ? inside(mount.root, rootPath, top) : null;
    if (dir === null) return null;
    root[h] = dir;
  }
  const tracking = version === 2 ? [] : [
    at(join(fsRoot, "systemd"), (m) => m.fstype === "cgroup" && m.options.includes("name=systemd")),
    at(join(fsRoot, "unified"), (m) => m.fstype === "cgroup2"),
  ].filter((d) => d !== null);
  return { root, tracking };
}

/** What placement needs to know of this host, read from /proc/self (and pid 1's, and systemd's
 * runtime directory) and the cgroup tree. */
export function cgroupFacts(fsRoot: string, proc = "/proc/self", init = "/proc/1", run = SYSTEMD_RUN): CgroupFacts {
  const version = cgroupVersion(fsRoot);
  const mounts = cgroupMounts(readText(join(proc, "mountinfo")) ?? "");
  const own = ownCgroups(readText(join(proc, "cgroup")) ?? "");
  const where = (h: Hierarchy) => {
    const { top, mount } = hierarchyMount(mounts, fsRoot, version, h);
    const line = version === 2 ? own.find((c) => c.id === "0") : own.find((c) => c.controllers.includes(h));
    // A tree bpm finds no mount or line for (a directory given by BPM_CGROUP_ROOT): bpm sits at its top.
    if (!mount || !line) return { top, own: top };
    return { top, own: inside(mount.root, line.path, top) };
  };
  const facts: CgroupFacts = {
    version,
    mounts: Object.fromEntries(HIERARCHIES.map((h) => [h, where(h)])) as CgroupFacts["mounts"],
    // Only the kernel's root cgroup lacks cgroup.type (v2) and has release_agent (v1).
    topIsRoot: version === 2 ? !existsSync(join(fsRoot, "cgroup.type")) : existsSync(join(fsRoot, "memory", "release_agent")),
    nestedPidNs: nestedPidNs(proc),
    own: null,
    parent: null,
    systemd: systemdFacts(fsRoot, version, mounts, init, run),
  };
  const ownDir = facts.mounts.memory.own;
  if (version === 2 && ownDir && (facts.nestedPidNs || !facts.topIsRoot)) {
    facts.own = cgroupNode(ownDir, false);
    // Never above the mounted tree.
    if (ownDir.startsWith(fsRoot + "/") && !facts.topIsRoot) facts.parent = cgroupNode(dirname(ownDir), true);
  }
  return facts;
}

const placements = new Map<string, Placement>();

/** Where jobs' cgroups go on this host (the decision: placeJobs in src/plan/cgroup.ts); read once per
 * command (list asks for every job). */
export function placement(fsRoot: string): Placement {
  let p = placements.get(fsRoot);
  if (!p) placements.set(fsRoot, (p = placeJobs(cgroupFacts(fsRoot))));
  return p;
}

/** Where the job's cgroup is on this host. */
export function jobCgroup(fsRoot: string, boshRoot: string, id: string): JobCgroup {
  return jobCgroupIn(placement(fsRoot), boshRoot, id);
}

export interface CgroupUsage {
  memoryBytes: number | null;
  pids: number | null;
  oomKills: number | null;
  /** CPU time used, and time held back by a CPU ceiling (v1: only for jobs that ask for CPU limits). */
  cpuSeconds: number | null;
  cpuThrottledSeconds: number | null;
}

/** A "key value" line of a stat file (cpu.stat), or null. */
function statValue(text: string | null, key: string): number | null {
  const m = text === null ? null : new RegExp(`^${key} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : null;
}

/** A cgroup as its counters are read: the version, and its directories (v2: one; v1: one per
 * hierarchy). Each counter is read from the first directory that has its file. */
export interface CounterDirs {
  version: CgroupVersion;
  dirs: string[];
}

/** Where a recorded process's counters are: the directories its start recorded (the memory one
 * is the OOM file's), whatever this host would place the job in today. */
export function recordedCounters(entry: Pick<RecordedEntry, "cgroupDirs" | "cgroupOom">): CounterDirs | null {
  if (!entry.cgroupOom) return null;
  const memory = dirname(entry.cgroupOom);
  return { version: basename(entry.cgroupOom) === "memory.events" ? 2 : 1, dirs: [memory, ...entry.cgroupDirs.filter((d) => d !== memory)] };
}

/** Where today's placement puts the job (a process the previous bpm started recorded no directories). */
export const placedCounters = (cg: JobCgroup): CounterDirs => ({ version: cg.version, dirs: [...new Set([cg.memory, cg.pids, cg.cpu, cg.cpuacct])] });

function readCounter(cg: CounterDirs, file: string): string | null {
  for (const dir of cg.dirs) {
    const text = readText(join(dir, file));
    if (text !== null) return text;
  }
  return null;
}

const number = (text: string | null) => (text === null || text.trim() === "" ? null : Number(text.trim()));

/** v2: cpu.stat in microseconds (throttling only where the cpu controller is on); v1: cpuacct.usage and cpu.stat in nanoseconds. */
function cpuUsage(cg: CounterDirs): Pick<CgroupUsage, "cpuSeconds" | "cpuThrottledSeconds"> {
  const seconds = (n: number | null, perSecond: number) => (n === null ? null : n / perSecond);
  const stat = readCounter(cg, "cpu.stat");
  if (cg.version === 2) return { cpuSeconds: seconds(statValue(stat, "usage_usec"), 1e6), cpuThrottledSeconds: seconds(statValue(stat, "throttled_usec"), 1e6) };
  return { cpuSeconds: seconds(number(readCounter(cg, "cpuacct.usage")), 1e9), cpuThrottledSeconds: seconds(statValue(stat, "throttled_time"), 1e9) };
}

export function cgroupUsage(cg: CounterDirs): CgroupUsage {
  const v2 = cg.version === 2;
  const oom = /^oom_kill (\d+)$/m.exec(readCounter(cg, v2 ? "memory.events" : "memory.oom_control") ?? "");
  return {
    memoryBytes: number(readCounter(cg, v2 ? "memory.current" : "memory.usage_in_bytes")),
    pids: number(readCounter(cg, "pids.current")),
    oomKills: oom ? Number(oom[1]) : null,
    ...cpuUsage(cg),
  };
}
