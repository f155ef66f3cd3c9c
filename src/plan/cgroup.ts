// The job's cgroup as the helper will make it (helper-c/cgroup.c): ours live
// under a `bpm` directory of our own at the top of each hierarchy (v1: one per
// controller; v2: the unified one), the same place with or without systemd,
// never inside a cgroup the machine's own services use. A non-default BOSH
// root gets its own level, so test roots on one machine never share a cgroup.
// Pure: which version the host runs is a host fact, passed in.
import { dirname, join } from "node:path";
import { DEFAULT_ROOT } from "../bosh/paths.ts";

export type CgroupVersion = 1 | 2;

export interface JobCgroup {
  version: CgroupVersion;
  /** v1: the job's directory in the memory and the pids hierarchy; v2: its one directory. */
  memory: string;
  pids: string;
  /** v1: its directory in the cpu and the cpuacct hierarchy (one where they are mounted together),
   * only for a job that asks for a CPU limit; v2: its one directory. */
  cpu: string;
  cpuacct: string;
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

export function jobCgroupAt(version: CgroupVersion, fsRoot: string, boshRoot: string, id: string): JobCgroup {
  const scope = boshRoot === DEFAULT_ROOT ? [] : [`root-${pathHash(boshRoot).slice(0, 12)}`];
  if (version === 2) {
    const dir = join(fsRoot, "bpm", ...scope, id);
    return { version, memory: dir, pids: dir, cpu: dir, cpuacct: dir };
  }
  const at = (hierarchy: string) => join(fsRoot, hierarchy, "bpm", ...scope, id);
  return { version, memory: at("memory"), pids: at("pids"), cpu: at("cpu"), cpuacct: at("cpuacct") };
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
  /** cgroup.procs of each directory: the helper joins them before unsharing. */
  procs: string[];
}

/** The job's cgroup with its limits: memory (and memory+swap at the same value, no swap on top), pids,
 * and, for a job that asks, CPU. `cpu` says whether to use the CPU controller (to enter a job's
 * cgroup as its start made it); by default, whether the limits ask for it. */
export function cgroupLayout(fsRoot: string, cg: JobCgroup, limits: Limits, cpu = wantsCpu(limits)): CgroupLayout {
  const v2 = cg.version === 2;
  const file = (dir: string, name: string) => join(dir, name);
  const out: CgroupLayout["limits"] = [];
  if (limits.memoryBytes !== undefined) {
    const bytes = String(limits.memoryBytes);
    if (v2) out.push({ file: file(cg.memory, "memory.max"), value: bytes }, { file: file(cg.memory, "memory.swap.max"), value: "0", optional: true });
    else out.push({ file: file(cg.memory, "memory.limit_in_bytes"), value: bytes }, { file: file(cg.memory, "memory.memsw.limit_in_bytes"), value: bytes, optional: true });
  }
  // v2 makes pids.max only where the parent enables pids: written always, its absence shows a parent made again under us.
  if (limits.pids !== undefined || v2) out.push({ file: file(cg.pids, "pids.max"), value: String(limits.pids ?? "max") });
  if (limits.cpus !== undefined) {
    const quota = String(Math.max(MIN_CPU_QUOTA_US, Math.round(limits.cpus * CPU_PERIOD_US)));
    if (v2) out.push({ file: file(cg.cpu, "cpu.max"), value: `${quota} ${CPU_PERIOD_US}` });
    else out.push({ file: file(cg.cpu, "cpu.cfs_period_us"), value: String(CPU_PERIOD_US) }, { file: file(cg.cpu, "cpu.cfs_quota_us"), value: quota });
  }
  // systemd's CPUWeight scale; v1's shares are 1024 for the default weight of 100.
  if (limits.cpuWeight !== undefined) {
    if (v2) out.push({ file: file(cg.cpu, "cpu.weight"), value: String(limits.cpuWeight) });
    else out.push({ file: file(cg.cpu, "cpu.shares"), value: String(Math.max(2, Math.round((limits.cpuWeight * 1024) / 100))) });
  }
  const enable: string[] = [];
  if (v2) for (let dir = dirname(cg.memory); dir.startsWith(fsRoot); dir = dirname(dir)) {
    enable.unshift(dir);
    if (dir === fsRoot) break;
  }
  const dirs = usedDirs(cg, cpu);
  return {
    dirs,
    leftovers: cgroupDirs(cg).filter((d) => !dirs.includes(d)),
    enable,
    controllers: cpu ? "memory pids cpu" : "memory pids",
    limits: out,
    killFile: v2 ? file(cg.memory, "cgroup.kill") : null,
    oomFile: file(cg.memory, v2 ? "memory.events" : "memory.oom_control"),
    procs: dirs.map((d) => join(d, "cgroup.procs")),
  };
}
