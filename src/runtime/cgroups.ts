// The host's cgroups as bpm finds them: which version it runs, where cgroupfs
// is, and what a job uses now (list --json). The layout is decided in
// src/plan/cgroup.ts; the helper makes and removes it.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { jobCgroupAt, type CgroupVersion, type JobCgroup } from "../plan/cgroup.ts";

export { cgroupDirs, cgroupLayout, pathHash, type CgroupLayout, type CgroupVersion, type JobCgroup, type Limits } from "../plan/cgroup.ts";

export function cgroupFsRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.BPM_CGROUP_ROOT || "/sys/fs/cgroup";
}

export function cgroupVersion(fsRoot: string): CgroupVersion {
  return existsSync(join(fsRoot, "cgroup.controllers")) ? 2 : 1;
}

/** Where the job's cgroup is on this host. */
export function jobCgroup(fsRoot: string, boshRoot: string, id: string): JobCgroup {
  return jobCgroupAt(cgroupVersion(fsRoot), fsRoot, boshRoot, id);
}

function readNumber(file: string): number | null {
  try {
    return Number(readFileSync(file, "utf8").trim());
  } catch {
    return null;
  }
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
