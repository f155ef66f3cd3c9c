// Memory and pids limits through cgroups, v1 (one hierarchy per controller)
// or v2 (unified). Ours live under a `bpm` directory of our own at the top of
// each hierarchy: the same place with or without systemd, and never inside a
// cgroup that the machine's own services use. A non-default BOSH root gets its
// own sub-directory, so test roots on one machine never share a cgroup.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
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

export function cgroupFsRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.BPM_CGROUP_ROOT || "/sys/fs/cgroup";
}

export function cgroupVersion(fsRoot: string): CgroupVersion {
  return existsSync(join(fsRoot, "cgroup.controllers")) ? 2 : 1;
}

/** FNV-1a (64 bits) of a path as hex: a stable short name for a BOSH root
 * that does not cost every command the loading of node:crypto. */
export function pathHash(path: string): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(path)) h = BigInt.asUintN(64, (h ^ BigInt(byte)) * 0x100000001b3n);
  return h.toString(16).padStart(16, "0");
}

export function jobCgroup(fsRoot: string, boshRoot: string, id: string): JobCgroup {
  const scope = boshRoot === DEFAULT_ROOT ? [] : [`root-${pathHash(boshRoot).slice(0, 12)}`];
  const version = cgroupVersion(fsRoot);
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

const write = (dir: string, file: string, value: string | number) => writeFileSync(join(dir, file), String(value));

/** v2 only lets a cgroup limit what its parent enables in cgroup.subtree_control. */
function enableControllers(fsRoot: string, dir: string): void {
  let cur = fsRoot;
  for (const part of dir.slice(fsRoot.length + 1).split("/")) {
    const have = readFileSync(join(cur, "cgroup.subtree_control"), "utf8").split(/\s+/);
    if (!have.includes("memory") || !have.includes("pids")) write(cur, "cgroup.subtree_control", "+memory +pids");
    cur = join(cur, part);
    mkdirSync(cur, { recursive: true });
  }
}

/** How often creating a job's cgroup is tried again when a parent vanished under it. */
const CREATE_ATTEMPTS = 50;

export function createCgroup(fsRoot: string, cg: JobCgroup, limits: Limits): void {
  // Another bpm of the same root may remove the empty scope directory (its
  // last job stopped) at any point of this: a directory it recreated then
  // lacks the controllers, and a file we want is missing. Start again from
  // the top; once the job's own directory holds its limits it is not empty
  // and stays.
  for (let attempt = 1; ; attempt++) {
    try {
      if (cg.version === 2) enableControllers(fsRoot, cg.memory);
      for (const dir of cgroupDirs(cg)) mkdirSync(dir, { recursive: true });
      writeLimits(cg, limits);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" || attempt >= CREATE_ATTEMPTS) throw e;
    }
  }
}

function writeLimits(cg: JobCgroup, limits: Limits): void {
  if (limits.memoryBytes !== undefined) {
    if (cg.version === 2) {
      write(cg.memory, "memory.max", limits.memoryBytes);
      // No swap on top: memory plus swap stays at the limit.
      if (existsSync(join(cg.memory, "memory.swap.max"))) write(cg.memory, "memory.swap.max", 0);
    } else {
      write(cg.memory, "memory.limit_in_bytes", limits.memoryBytes);
      if (existsSync(join(cg.memory, "memory.memsw.limit_in_bytes"))) write(cg.memory, "memory.memsw.limit_in_bytes", limits.memoryBytes);
    }
  }
  // v2 creates pids.max only where the parent enables pids: its absence means a parent was recreated under us.
  if (limits.pids !== undefined || cg.version === 2) write(cg.pids, "pids.max", limits.pids ?? "max");
}

function readNumber(file: string): number | null {
  try {
    return Number(readFileSync(file, "utf8").trim());
  } catch {
    return null;
  }
}

/** Every pid in the job's cgroups (host pids). */
export function cgroupPids(cg: JobCgroup): number[] {
  const pids = new Set<number>();
  for (const f of procsFiles(cg)) {
    try {
      for (const l of readFileSync(f, "utf8").split("\n")) if (l) pids.add(Number(l));
    } catch {
      // A cgroup that is gone holds nothing.
    }
  }
  return [...pids];
}

export interface CgroupUsage {
  memoryBytes: number | null;
  pids: number | null;
  oomKills: number | null;
}

export function cgroupUsage(cg: JobCgroup): CgroupUsage {
  const v2 = cg.version === 2;
  let oomKills: number | null = null;
  try {
    const events = readFileSync(join(cg.memory, v2 ? "memory.events" : "memory.oom_control"), "utf8");
    const m = /^oom_kill (\d+)$/m.exec(events);
    if (m) oomKills = Number(m[1]);
  } catch {
    // no counter on this kernel
  }
  return {
    memoryBytes: readNumber(join(cg.memory, v2 ? "memory.current" : "memory.usage_in_bytes")),
    pids: readNumber(join(cg.pids, "pids.current")),
    oomKills,
  };
}

/** Kills whatever is left in the cgroup and removes its directories. */
export async function removeCgroup(cg: JobCgroup): Promise<void> {
  const deadline = Date.now() + 5000;
  // v2 (Linux 5.14+): one write kills every process, even one forking as we go.
  if (cg.version === 2) {
    try {
      write(cg.memory, "cgroup.kill", 1);
    } catch {
      // no cgroup, or a kernel without cgroup.kill: the loop below does it
    }
  }
  for (;;) {
    const left = cgroupPids(cg);
    if (left.length === 0) break;
    if (Date.now() > deadline) throw new Error(`processes ${left.join(", ")} in ${cg.memory} survived SIGKILL`);
    for (const pid of left) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  for (const dir of cgroupDirs(cg)) {
    for (let i = 0; ; i++) {
      try {
        rmdirSync(dir);
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOENT") break;
        // EBUSY while the kernel finishes tearing down exited tasks.
        if (code !== "EBUSY" || i > 200) throw e;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }
  // The parent (bpm/, or a test root's scope) stays: removing it when empty
  // raced with another start making its job's cgroup there.
}
