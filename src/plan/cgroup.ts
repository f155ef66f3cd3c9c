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
}

export interface Limits {
  memoryBytes?: number;
  pids?: number;
}

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
    return { version, memory: dir, pids: dir };
  }
  return {
    version,
    memory: join(fsRoot, "memory", "bpm", ...scope, id),
    pids: join(fsRoot, "pids", "bpm", ...scope, id),
  };
}

export const cgroupDirs = (cg: JobCgroup) => [...new Set([cg.memory, cg.pids])];
export const procsFiles = (cg: JobCgroup) => cgroupDirs(cg).map((d) => join(d, "cgroup.procs"));

/** What the helper does with the job's cgroup (helper-c/cgroup.c), decided here. */
export interface CgroupLayout {
  /** The job's own directories (v1: one per hierarchy). */
  dirs: string[];
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

/** The job's cgroup with its limits: memory (and memory+swap at the same value, no swap on top) and pids. */
export function cgroupLayout(fsRoot: string, cg: JobCgroup, limits: Limits): CgroupLayout {
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
  const enable: string[] = [];
  if (v2) for (let dir = dirname(cg.memory); dir.startsWith(fsRoot); dir = dirname(dir)) {
    enable.unshift(dir);
    if (dir === fsRoot) break;
  }
  return {
    dirs: cgroupDirs(cg),
    enable,
    controllers: "memory pids",
    limits: out,
    killFile: v2 ? file(cg.memory, "cgroup.kill") : null,
    oomFile: file(cg.memory, v2 ? "memory.events" : "memory.oom_control"),
    procs: procsFiles(cg),
  };
}
