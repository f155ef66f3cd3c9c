// The plan for entering a running container as its job (bpm shell): the
// cgroups to join, the namespaces, and who the program runs as, with what.
// Built from the record start left (never from today's bpm.yml): the shell
// gets exactly what the job runs with. Pure.
import type { Namespace, Rlimit } from "./plan.ts";
import type { RecordedEntry } from "./record.ts";

export interface EnterPlan {
  /** The host pid of the container's init, whose namespaces are joined. */
  target: number;
  /** cgroup.procs of each of the job's cgroup directories. */
  cgroupProcs: string[];
  namespaces: Namespace[];
  user: { uid: number; gid: number; groups: number[] };
  capabilities: string[];
  rlimits: Rlimit[];
  noNewPrivs: boolean;
  /** The job's seccomp program as hex; null: none. */
  seccomp: string | null;
  cwd: string;
  executable: string;
  args: string[];
  env: Record<string, string>;
}

/** What a program started in the container gets: the job's own identity and environment, and argv. */
export function enterPlan(target: number, entry: RecordedEntry, program: { executable: string; args: string[]; env: Record<string, string> }): EnterPlan {
  return {
    target,
    cgroupProcs: [...entry.cgroupDirs, ...entry.cgroupJoin].map((d) => `${d}/cgroup.procs`),
    namespaces: entry.namespaces,
    user: { uid: entry.uid, gid: entry.gid, groups: entry.groups },
    capabilities: entry.capabilities,
    rlimits: entry.rlimits,
    noNewPrivs: entry.noNewPrivs,
    seccomp: entry.seccomp,
    cwd: entry.cwd,
    executable: program.executable,
    args: program.args,
    env: { ...entry.env, ...program.env },
  };
}
