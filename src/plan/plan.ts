// The launch plan: everything the helper will do for one process, decided
// here as plain data that can be printed, compared and tested without root.
import { readFileSync } from "node:fs";
import { CAPABILITIES } from "../config/capabilities.ts";
import type { ProcessConfig } from "../config/schema.ts";
import { parseMemorySize } from "../config/units.ts";
import type { ExternalPath, JobPaths } from "../bosh/paths.ts";
import type { Identity } from "../runtime/users.ts";
import { encode } from "./bpf.ts";
import { buildMounts, type MountOp } from "./mounts.ts";
import { hostArch, seccompProgram } from "./seccomp.ts";

export type Namespace = "mount" | "ipc" | "uts" | "pid";
export interface Rlimit {
  name: "nofile" | "core";
  soft: number | "unlimited";
  hard: number | "unlimited";
}

export interface LaunchPlan {
  mode: "detach" | "foreground";
  cgroupProcs: string[];
  namespaces: Namespace[];
  rootfs: string;
  mounts: MountOp[];
  user: { uid: number; gid: number; groups: number[] };
  capabilities: string[];
  rlimits: Rlimit[];
  noNewPrivs: boolean;
  /** Without a pid namespace the init is no pid 1: it reaps as a subreaper. */
  subreaper: boolean;
  cwd: string;
  executable: string;
  args: string[];
  env: Record<string, string>;
  /** Where the init records how the job ended; empty for none. */
  statusFile: string;
  seccomp: Uint8Array | null;
  /** Startup tracing: the job waits, fully set up, until the tracer is attached. */
  pause: boolean;
}

/** Facts about the host the plan depends on, gathered by the caller (tests pass their own). */
export interface HostFacts {
  /** RLIMIT_NOFILE hard limit bpm itself was given. */
  nofileHard: number | "unlimited";
  /** Capabilities in this host's bounding set (privileged jobs get these). */
  boundingCaps: string[];
}

export interface PlanInput {
  root: ExternalPath;
  paths: JobPaths;
  proc: ProcessConfig;
  user: Identity;
  cgroupProcs: string[];
  mode: LaunchPlan["mode"];
  host: HostFacts;
}

export function defaultEnv(paths: JobPaths): Record<string, string> {
  const i = paths.internal;
  return {
    TMPDIR: i.tmpDir,
    LANG: "en_US.UTF-8",
    HOME: i.dataDir,
    PATH: `${i.jobDir}/bin:/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin:.`,
  };
}

export function buildPlan(input: PlanInput): LaunchPlan {
  const { paths, proc, host } = input;
  const privileged = proc.unsafe.privileged;
  const hostPid = proc.unsafe.host_pid_namespace;

  const rlimits: Rlimit[] = [];
  const nofile = proc.limits.open_files ?? host.nofileHard;
  rlimits.push({ name: "nofile", soft: nofile, hard: nofile });
  if (proc.limits.core_file_size !== undefined) {
    rlimits.push({ name: "core", soft: proc.limits.core_file_size, hard: proc.limits.core_file_size });
  }

  const capabilities = privileged
    ? host.boundingCaps
    : [...new Set(proc.capabilities.map((c) => c.toUpperCase().replace(/^CAP_/, "")))];

  return {
    mode: input.mode,
    cgroupProcs: input.cgroupProcs,
    namespaces: hostPid ? ["mount", "ipc", "uts"] : ["mount", "ipc", "uts", "pid"],
    rootfs: paths.rootfsDir,
    mounts: buildMounts({ root: input.root, paths, proc, privileged }),
    user: privileged ? { uid: 0, gid: 0, groups: [0] } : { uid: input.user.uid, gid: input.user.gid, groups: input.user.groups },
    capabilities,
    rlimits,
    noNewPrivs: !privileged,
    subreaper: hostPid,
    cwd: proc.workdir ?? paths.internal.jobDir,
    executable: proc.executable,
    args: proc.args,
    env: { ...defaultEnv(paths), ...proc.env },
    statusFile: paths.exitFile,
    // Privileged jobs run without a filter, as the original's did.
    seccomp: privileged ? null : encode(seccompProgram(hostArch())),
    pause: false,
  };
}

export function memoryLimit(proc: ProcessConfig): number | undefined {
  return proc.limits.memory === undefined ? undefined : parseMemorySize(proc.limits.memory)!;
}

/** Reads the host facts from /proc/self. */
export function readHostFacts(): HostFacts {
  const limits = readFileSync("/proc/self/limits", "utf8");
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(limits);
  const hard = m?.[1] === "unlimited" || !m ? "unlimited" : Number(m[1]);
  const status = readFileSync("/proc/self/status", "utf8");
  const bnd = BigInt("0x" + (/^CapBnd:\s+([0-9a-f]+)/m.exec(status)?.[1] ?? "0"));
  const caps: string[] = [];
  for (let n = 0; n < 64; n++) {
    if (!(bnd & (1n << BigInt(n)))) continue;
    const name = capabilityName(n);
    if (name) caps.push(name);
  }
  return { nofileHard: hard, boundingCaps: caps };
}

const capabilityName = (n: number) => Object.keys(CAPABILITIES).find((k) => CAPABILITIES[k] === n);
