// The job's cgroup as the helper will make it (helper-c/cgroup.c), and where
// it goes: a decision taken at start from host facts (read by
// src/runtime/cgroups.ts). On a VM (bpm in the kernel's root cgroup tree,
// not in a container) ours live under a `bpm` directory at the top of each
// hierarchy (v1: one per controller; v2: the unified one), as ever. Inside a
// container (a pid namespace below the host's, or a cgroup tree mounted from
// below the kernel's root: a cgroup namespace, a bind of a subtree) they live
// below the container's own cgroup, so two containers never share one and a
// container's limits bound its jobs. A non-default BOSH root gets its own
// level, so test roots on one machine never share a cgroup either.
// Where systemd is pid 1 (a stemcell, or a container that boots systemd) it
// owns the cgroup tree: each job gets a transient scope of its own under
// system.slice, which systemd makes in every hierarchy, never moves and
// never kills with the unit that ran `bpm start` (the helper asks for it
// over D-Bus, helper-c/systemd.c); the limits are the scope's properties.
// The manager is chosen here, at start, and recorded with the directories.
// Pure: every host fact is passed in.
import { dirname, join } from "node:path";
import { DEFAULT_ROOT } from "../bosh/paths.ts";

export type CgroupVersion = 1 | 2;

/** The hierarchies a job's cgroup spans on v1 (on v2 all four are the one unified tree). */
export const HIERARCHIES = ["memory", "pids", "cpu", "cpuacct"] as const;
export type Hierarchy = (typeof HIERARCHIES)[number];

/** A cgroup as the kernel shows it to bpm (v2 only: where its processes are decides what it can delegate). */
export interface CgroupNode {
  dir: string;
  /** Its cgroup.procs is not empty. */
  holdsProcesses: boolean;
  /** It or a cgroup below holds a process outside bpm's pid namespace (shown as pid 0): another container's, or the host's. */
  othersBelow: boolean;
  /** Its cgroup.controllers: what its parent lets it hand to its children. */
  controllers: string[];
}

/** What placement is decided from (src/runtime/cgroups.ts reads them). */
export interface CgroupFacts {
  version: CgroupVersion;
  /** Per hierarchy: the directory its tree is mounted at, and bpm's own cgroup's directory in it
   * (null: bpm's cgroup lies outside what is mounted there). v2: the four are the same. */
  mounts: Record<Hierarchy, { top: string; own: string | null }>;
  /** The mounted tree begins at the kernel's root cgroup (not at a cgroup namespace's root, nor a bind of a subtree). */
  topIsRoot: boolean;
  /** bpm runs in a pid namespace below another: a container's. */
  nestedPidNs: boolean;
  /** v2 inside a container: bpm's own cgroup, and its parent where that is inside the mounted tree and not the kernel's root
   * (read only where the tree starts below the kernel's root). */
  own: CgroupNode | null;
  parent: CgroupNode | null;
  /** systemd is pid 1 of bpm's pid namespace and listens on its private socket: per hierarchy, the
   * directory of systemd's own root cgroup as bpm sees it, and its root's directories in the
   * hierarchies systemd only tracks processes in (hybrid: name=systemd and the unified one; none on
   * v2). null: no systemd, or its root lies outside what is mounted here. */
  systemd: { root: Record<Hierarchy, string>; tracking: string[] } | null;
}

/** Where this host's jobs' cgroups go. */
export interface Placement {
  version: CgroupVersion;
  /** Who makes them: the helper, in cgroupfs, or systemd, as a transient scope (under SLICE of each base). */
  manager: "cgroupfs" | "systemd";
  /** systemd: the bases in the hierarchies systemd only tracks processes in (hybrid), which a job's scope spans too. */
  tracking?: string[];
  /** The cgroup each hierarchy's jobs go below (as `bpm/[root-HASH/]ID`). */
  base: Record<Hierarchy, string>;
  /** v2: the controllers the base can hand down to job cgroups; null: every one a job asks for (a VM, and v1). */
  delegable: string[] | null;
  /** Why some of them cannot be had here, or null. */
  why: string | null;
  /** Why no job can be placed inside the container here (start refuses; base is then the tops, for what an older bpm made). */
  problem?: string;
}

const LIMIT_CONTROLLERS = ["memory", "pids", "cpu"];
const each = <T>(f: (h: Hierarchy) => T) => Object.fromEntries(HIERARCHIES.map((h) => [h, f(h)])) as Record<Hierarchy, T>;

/**
 * The decision (see docs/operations.md, "Where a job's cgroup is"):
 * - not in a container: the top of each hierarchy, as ever;
 * - in a container on v1: bpm's own cgroup in each hierarchy (v1 lets a cgroup with processes have limited children);
 * - in a container on v2: the container's cgroup, which is bpm's own, or, where the tree bpm sees starts
 *   below the kernel's root (a cgroup namespace: all of it is the container's), its parent when that holds
 *   no process and nothing of another pid namespace (the dind layout: the container's processes in a leaf).
 *   Without a cgroup namespace nothing says how far up the container reaches (garden's parent of one
 *   container looks just like a container's parent of one leaf), so bpm's own cgroup it is. Job cgroups get
 *   controllers only where that cgroup holds no process itself (the kernel's no-internal-process rule), and
 *   only those its parent delegates to it.
 */
export function placeJobs(f: CgroupFacts): Placement {
  if (!f.systemd) return placeInCgroupfs(f);
  return { version: f.version, manager: "systemd", base: f.systemd.root, tracking: f.systemd.tracking, delegable: null, why: null };
}

function placeInCgroupfs(f: CgroupFacts): Placement {
  const tops = each((h) => f.mounts[h].top);
  if (!f.nestedPidNs && f.topIsRoot) return { version: f.version, manager: "cgroupfs", base: tops, delegable: null, why: null };
  const lost = HIERARCHIES.find((h) => f.mounts[h].own === null);
  if (lost) {
    const problem = `bpm runs in a container, but its own cgroup is not inside the cgroup tree mounted at ${f.mounts[lost].top} (see /proc/self/cgroup and /proc/self/mountinfo): a job's cgroup would lie outside the container; mount the container's own cgroup tree there`;
    return { version: f.version, manager: "cgroupfs", base: tops, delegable: [], why: problem, problem };
  }
  if (f.version === 1) return { version: 1, manager: "cgroupfs", base: each((h) => f.mounts[h].own!), delegable: null, why: null };
  const own = f.own;
  if (!own) return { version: 2, manager: "cgroupfs", base: tops, delegable: null, why: null };
  const container = !f.topIsRoot && f.parent && !f.parent.holdsProcesses && !f.parent.othersBelow ? f.parent : own;
  const base = each(() => container.dir);
  if (f.topIsRoot && container.dir === tops.memory) return { version: 2, manager: "cgroupfs", base, delegable: null, why: null };
  if (container.holdsProcesses) {
    const why = `bpm's cgroup ${container.dir} holds the container's own processes, and on cgroup v2 a cgroup that holds processes cannot give controllers to its children (move them into a leaf, as dind-style entrypoints do)`;
    return { version: 2, manager: "cgroupfs", base, delegable: [], why };
  }
  const missing = LIMIT_CONTROLLERS.filter((c) => !container.controllers.includes(c));
  const why = missing.length ? `${join(container.dir, "cgroup.controllers")} lacks ${missing.join(", ")}: the container's parent does not delegate ${missing.length > 1 ? "them" : "it"}` : null;
  return { version: 2, manager: "cgroupfs", base, delegable: container.controllers.filter((c) => LIMIT_CONTROLLERS.includes(c)), why };
}

export interface JobCgroup {
  version: CgroupVersion;
  /** v1: the job's directory in the memory and the pids hierarchy; v2: its one directory. */
  memory: string;
  pids: string;
  /** v1: its directory in the cpu and the cpuacct hierarchy (one where they are mounted together),
   * only for a job that asks for a CPU limit; v2: its one directory. */
  cpu: string;
  cpuacct: string;
  /** v2: the cgroup controllers are enabled from, down to the job's parent (the placement's base; unset: fsRoot). */
  base?: string;
  /** v2: the controllers it can hand down (null or unset: all); why not the others. */
  delegable?: string[] | null;
  why?: string | null;
  /** systemd: the job's scope unit, and its directories in the hierarchies systemd only tracks processes in (hybrid). */
  scope?: string;
  tracking?: string[];
}

export interface Limits {
  memoryBytes?: number;
  pids?: number;
  /** A ceiling in CPUs (limits.cpu). */
  cpus?: number;
  /** A relative share under contention, 1–10000, 100 by default (limits.cpu_weight). */
  cpuWeight?: number;
}

/** The CFS period bpm gives a CPU ceiling: quota = CPUs × period. */
export const CPU_PERIOD_US = 100_000;
/** The smallest quota the kernel takes (1 ms): a smaller ceiling gets this. */
const MIN_CPU_QUOTA_US = 1_000;

export const wantsCpu = (limits: Limits) => limits.cpus !== undefined || limits.cpuWeight !== undefined;

/** FNV-1a (64 bits) of a path as hex: a stable short name for a BOSH root
 * that does not cost every command the loading of node:crypto. */
export function pathHash(path: string): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(path)) h = BigInt.asUintN(64, (h ^ BigInt(byte)) * 0x100000001b3n);
  return h.toString(16).padStart(16, "0");
}

/** The slice systemd puts jobs' scopes in, as runc's systemd driver does by default. */
export const SLICE = "system.slice";
/** systemd's longest unit name. */
const UNIT_NAME_MAX = 255;

/** The job's scope: `runc-bpm-JOB.scope` (`runc-ROOTHASH-bpm-JOB.scope` for another BOSH root), the
 * name bosh-agent's monit access looks for (`…-bpm-JOB.scope`); an id too long for a unit name is hashed. */
export function scopeUnit(boshRoot: string, id: string): string {
  const root = boshRoot === DEFAULT_ROOT ? "" : `${pathHash(boshRoot).slice(0, 12)}-`;
  const unit = `runc-${root}${id}.scope`;
  return unit.length <= UNIT_NAME_MAX ? unit : `runc-${root}bpm-${pathHash(id)}.scope`;
}

/** Where the job's cgroup is under a placement. */
export function jobCgroupIn(placement: Placement, boshRoot: string, id: string): JobCgroup {
  const { version, delegable, why } = placement;
  if (placement.manager === "systemd") {
    const scope = scopeUnit(boshRoot, id);
    const at = (h: Hierarchy) => join(placement.base[h], SLICE, scope);
    const tracking = (placement.tracking ?? []).map((b) => join(b, SLICE, scope));
    return { version, memory: at("memory"), pids: at("pids"), cpu: at("cpu"), cpuacct: at("cpuacct"), delegable, why, scope, tracking };
  }
  const scope = boshRoot === DEFAULT_ROOT ? [] : [`root-${pathHash(boshRoot).slice(0, 12)}`];
  const at = (h: Hierarchy) => join(placement.base[h], "bpm", ...scope, id);
  return { version, memory: at("memory"), pids: at("pids"), cpu: at("cpu"), cpuacct: at("cpuacct"), base: placement.base.memory, delegable, why };
}

/** A VM's placement: the top of each hierarchy under fsRoot, every controller. */
export const vmPlacement = (version: CgroupVersion, fsRoot: string): Placement => ({
  version,
  manager: "cgroupfs",
  base: each((h) => (version === 2 ? fsRoot : join(fsRoot, h))),
  delegable: null,
  why: null,
});

/** Where the job's cgroup is on a VM. */
export const jobCgroupAt = (version: CgroupVersion, fsRoot: string, boshRoot: string, id: string) => jobCgroupIn(vmPlacement(version, fsRoot), boshRoot, id);

/** The controllers a job with these limits uses (v2, v1 alike: names of hierarchies). */
const wantedControllers = (cpu: boolean) => ["memory", "pids", ...(cpu ? ["cpu"] : [])];
/** Those it gets here. */
const heldControllers = (cg: JobCgroup, cpu: boolean) => wantedControllers(cpu).filter((c) => !cg.delegable || cg.delegable.includes(c));

/** The limits a job asks for that its cgroup cannot hold here, and why; null if it holds all of them. */
export function limitsNotHeld(cg: JobCgroup, limits: Limits): string | null {
  const held = heldControllers(cg, wantsCpu(limits));
  const lost = [
    ...(limits.memoryBytes !== undefined && !held.includes("memory") ? ["memory"] : []),
    ...(limits.pids !== undefined && !held.includes("pids") ? ["processes"] : []),
    ...(limits.cpus !== undefined && !held.includes("cpu") ? ["cpu"] : []),
    ...(limits.cpuWeight !== undefined && !held.includes("cpu") ? ["cpu_weight"] : []),
  ];
  return lost.length ? `limits not applied: ${lost.join(", ")} (${cg.why ?? "no controller for them here"}); the container's own limits still hold` : null;
}

/** Every directory the job may have: those of a start that asked for a CPU limit too. */
export const cgroupDirs = (cg: JobCgroup) => [...new Set([cg.memory, cg.pids, cg.cpu, cg.cpuacct])];
/** The directories a start with these limits makes and joins (v1: cpu and cpuacct only when asked). */
const usedDirs = (cg: JobCgroup, cpu: boolean) => [...new Set([cg.memory, cg.pids, ...(cpu ? [cg.cpu, cg.cpuacct] : [])])];

/** What the helper does with the job's cgroup (helper-c/cgroup.c), decided here. */
export interface CgroupLayout {
  /** The job's own directories (v1: one per hierarchy). */
  dirs: string[];
  /** v1: its directories in hierarchies this start does not use but an earlier one may have (cpu):
   * emptied and removed with the rest, never made. */
  leftovers: string[];
  /** v2: the parents, top down, whose cgroup.subtree_control must enable `controllers`. */
  enable: string[];
  controllers: string;
  /** Files to write once the directories exist; optional ones are skipped where the kernel lacks them (swap accounting). */
  limits: { file: string; value: string; optional?: boolean }[];
  /** v2: cgroup.kill, which ends every process at once (Linux 5.14+). */
  killFile: string | null;
  /** Where the kernel counts OOM kills. */
  oomFile: string;
  /** systemd: the same file of the scope's parent (the slice). The scope's cgroup goes with its init, so a start
   * whose init the OOM killer ended tells it by the parent's count, taken before and after; null: no scope. */
  parentOomFile: string | null;
  /** cgroup.procs of each directory: the helper joins them before unsharing (a shell), or, in a
   * scope, the start finds its init there once systemd has placed it. */
  procs: string[];
  /** systemd on the hybrid layout: the scope's directories in the hierarchies systemd only tracks
   * processes in, which a process entering the job joins too (never made, filled or removed by bpm). */
  tracking: string[];
  /** systemd: the job's transient scope, asked for with these properties (name, D-Bus type, value);
   * its directories are systemd's, made when the scope starts and removed when it stops. */
  scope: { unit: string; properties: [string, "s" | "b" | "t", string][] } | null;
}

/** systemd's "infinity" for a limit property. */
const INFINITY = "18446744073709551615";

/** The scope's properties: the limits as systemd will keep them through every re-realization of the
 * tree (the files the helper writes as well hold the same values), accounting for `bpm list`, and
 * Delegate so that systemd leaves what is below the scope alone. */
function scopeProperties(cg: JobCgroup, limits: Limits, cpu: boolean, quotaUs: string | null): [string, "s" | "b" | "t", string][] {
  const props: [string, "s" | "b" | "t", string][] = [
    ["Description", "s", `bpm ${cg.scope}`],
    ["Slice", "s", SLICE],
    ["Delegate", "b", "true"],
    // A scope that ended (its job died, or was killed) goes at once: the next start reuses its name.
    ["CollectMode", "s", "inactive-or-failed"],
    ["MemoryAccounting", "b", "true"],
    ["TasksAccounting", "b", "true"],
    // systemd's default would cap every job at DefaultTasksMax.
    ["TasksMax", "t", limits.pids !== undefined ? String(limits.pids) : INFINITY],
  ];
  if (cpu) props.push(["CPUAccounting", "b", "true"]);
  if (limits.memoryBytes !== undefined) {
    props.push(["MemoryMax", "t", String(limits.memoryBytes)]);
    // v1: memory.memsw.limit_in_bytes, which systemd does not know, is the helper's file alone.
    if (cg.version === 2) props.push(["MemorySwapMax", "t", "0"]);
  }
  if (quotaUs !== null) props.push(["CPUQuotaPerSecUSec", "t", String((Number(quotaUs) * 1_000_000) / CPU_PERIOD_US)], ["CPUQuotaPeriodUSec", "t", String(CPU_PERIOD_US)]);
  if (limits.cpuWeight !== undefined) props.push(["CPUWeight", "t", String(limits.cpuWeight)]);
  return props;
}

/** The job's cgroup with its limits: memory (and memory+swap at the same value, no swap on top), pids,
 * and, for a job that asks, CPU; each only where the placement can hand its controller down (see
 * limitsNotHeld). `cpu` says whether to use the CPU controller (to enter a job's cgroup as its start
 * made it); by default, whether the limits ask for it. */
export function cgroupLayout(fsRoot: string, cg: JobCgroup, limits: Limits, cpu = wantsCpu(limits)): CgroupLayout {
  const v2 = cg.version === 2;
  const held = heldControllers(cg, cpu);
  const file = (dir: string, name: string) => join(dir, name);
  const out: CgroupLayout["limits"] = [];
  if (limits.memoryBytes !== undefined && held.includes("memory")) {
    const bytes = String(limits.memoryBytes);
    if (v2) out.push({ file: file(cg.memory, "memory.max"), value: bytes }, { file: file(cg.memory, "memory.swap.max"), value: "0", optional: true });
    else out.push({ file: file(cg.memory, "memory.limit_in_bytes"), value: bytes }, { file: file(cg.memory, "memory.memsw.limit_in_bytes"), value: bytes, optional: true });
  }
  // v2 makes pids.max only where the parent enables pids: written always, its absence shows a parent made again under us.
  if (held.includes("pids") && (limits.pids !== undefined || v2)) out.push({ file: file(cg.pids, "pids.max"), value: String(limits.pids ?? "max") });
  const quota = limits.cpus !== undefined && held.includes("cpu") ? String(Math.max(MIN_CPU_QUOTA_US, Math.round(limits.cpus * CPU_PERIOD_US))) : null;
  if (quota !== null) {
    if (v2) out.push({ file: file(cg.cpu, "cpu.max"), value: `${quota} ${CPU_PERIOD_US}` });
    else out.push({ file: file(cg.cpu, "cpu.cfs_period_us"), value: String(CPU_PERIOD_US) }, { file: file(cg.cpu, "cpu.cfs_quota_us"), value: quota });
  }
  // systemd's CPUWeight scale; v1's shares are 1024 for the default weight of 100.
  if (limits.cpuWeight !== undefined && held.includes("cpu")) {
    if (v2) out.push({ file: file(cg.cpu, "cpu.weight"), value: String(limits.cpuWeight) });
    else out.push({ file: file(cg.cpu, "cpu.shares"), value: String(Math.max(2, Math.round((limits.cpuWeight * 1024) / 100))) });
  }
  // v2: enabled from the placement's base (fsRoot on a VM) down to the job's parent; nothing to enable,
  // nothing enabled (the directories are still made, and the job still gets a cgroup of its own).
  const base = cg.base ?? fsRoot;
  const enable: string[] = [];
  // systemd enables the controllers a scope needs on its way down.
  if (v2 && held.length && !cg.scope) for (let dir = dirname(cg.memory); dir.startsWith(base); dir = dirname(dir)) {
    enable.unshift(dir);
    if (dir === base) break;
  }
  const dirs = usedDirs(cg, cpu);
  const oomName = v2 ? "memory.events" : "memory.oom_control";
  return {
    dirs,
    leftovers: cgroupDirs(cg).filter((d) => !dirs.includes(d)),
    enable,
    controllers: held.join(" "),
    limits: out,
    killFile: v2 ? file(cg.memory, "cgroup.kill") : null,
    oomFile: file(cg.memory, oomName),
    parentOomFile: cg.scope ? file(dirname(cg.memory), oomName) : null,
    procs: [...dirs, ...(cg.tracking ?? [])].map((d) => join(d, "cgroup.procs")),
    tracking: cg.tracking ?? [],
    scope: cg.scope ? { unit: cg.scope, properties: scopeProperties(cg, limits, cpu, quota) } : null,
  };
}
