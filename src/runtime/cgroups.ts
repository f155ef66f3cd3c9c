// The host's cgroups as bpm finds them: which version it runs, where cgroupfs
// is, and what a job uses now (list --json). The layout is decided in
// src/plan/cgroup.ts; the helper makes and removes it.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { jobCgroupAt, type CgroupVersion, type JobCgroup } from "../plan/cgroup.ts";

export { cgroupDirs, cgroupLayout, pathHash, wantsCpu, type CgroupLayout, type CgroupVersion, type JobCgroup, type Limits } from "../plan/cgroup.ts";

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
  /** CPU time used, and time held back by a CPU ceiling (v1: only for jobs that ask for CPU limits). */
  cpuSeconds: number | null;
  cpuThrottledSeconds: number | null;
}

/** A "key value" line of a stat file (cpu.stat), or null. */
function statValue(text: string | null, key: string): number | null {
  const m = text === null ? null : new RegExp(`^${key} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : null;
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

/** v2: cpu.stat in microseconds (throttling only where the cpu controller is on); v1: cpuacct.usage and cpu.stat in nanoseconds. */
function cpuUsage(cg: JobCgroup): Pick<CgroupUsage, "cpuSeconds" | "cpuThrottledSeconds"> {
  const seconds = (n: number | null, perSecond: number) => (n === null ? null : n / perSecond);
  if (cg.version === 2) {
    const stat = readText(join(cg.cpu, "cpu.stat"));
    return { cpuSeconds: seconds(statValue(stat, "usage_usec"), 1e6), cpuThrottledSeconds: seconds(statValue(stat, "throttled_usec"), 1e6) };
  }
  return {
    cpuSeconds: seconds(readNumber(join(cg.cpuacct, "cpuacct.usage")), 1e9),
    cpuThrottledSeconds: seconds(statValue(readText(join(cg.cpu, "cpu.stat")), "throttled_time"), 1e9),
  };
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
    ...cpuUsage(cg),
  };
}
