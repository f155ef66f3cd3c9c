// The launch plan: everything the helper will do for one process, decided
// here as plain data that can be printed, compared and tested without root.
import { posix } from "node:path";
import type { ProcessConfig } from "../config/schema.ts";
import { CAPABILITIES } from "../config/capabilities.ts";
import type { ExternalPath, JobPaths } from "../bosh/paths.ts";
import type { CgroupLayout } from "./cgroup.ts";
import type { Identity } from "./identity.ts";
import type { JobBook } from "./book.ts";
import { buildMounts, realPath, type HostFs, type MountOp } from "./mounts.ts";
import { hostArch, jobFilter } from "./seccomp.ts";

export type Namespace = "mount" | "ipc" | "uts" | "pid";
export interface Rlimit {
  name: "nofile" | "core";
  soft: number | "unlimited";
  hard: number | "unlimited";
}

/** A host directory the helper creates (missing parents: root's, 0755) and
 * then gives this owner and mode, through the descriptor it resolved. A
 * volume may instead be an existing file: it gets the owner, not the mode. */
export interface Prep {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  kind: "dir" | "volume";
}

/** What start and run hand the helper: a launch, or a refusal of one. */
export type StartPlan = LaunchPlan | RefusalPlan;

/** A start or run the CLI could not prepare: under the job's lock the helper
 * does nothing if the process runs already (as the contract says), or fails with why. */
export interface RefusalPlan {
  kind: "refusal";
  job: JobBook;
  /** The whole message, prefix included. */
  why: string;
}

export interface LaunchPlan {
  kind: "launch";
  mode: "detach" | "foreground";
  /** The job's lock, state, logs and events. */
  job: JobBook;
  /** The job's cgroup: made (with its limits) unless entering one that exists, joined before unsharing. */
  cgroup: CgroupLayout;
  namespaces: Namespace[];
  /** Directories to create before anything else, in order. */
  preps: Prep[];
  /** The pre_start hook, run on the host as root once the directories exist, with its own environment (hookEnv). */
  hook: { path: string; env: Record<string, string> } | null;
  /** The lock file that serialises making volumes shared, across jobs. */
  shareLock: string;
  rootfs: string;
  mounts: MountOp[];
  user: { uid: number; gid: number; groups: number[] };
  capabilities: string[];
  /** A privileged job: what of the privileged set this host's bounding set lacks, which it runs without (said once, by the launch). */
  capabilitiesUnavailable?: string[];
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
  /** What the container's init becomes once the job runs (a small reaper); null to stay. */
  reaper: string | null;
}

/** Facts about the host the plan depends on, gathered by the caller (tests pass their own). */
export interface HostFacts {
  /** RLIMIT_NOFILE hard limit bpm itself was given. */
  nofileHard: number | "unlimited";
  /** Capabilities in this host's bounding set (privileged jobs get no others). */
  boundingCaps: string[];
  /** The host's filesystem as the mounts need it. */
  fs: HostFs;
}

export interface PlanInput {
  root: ExternalPath;
  paths: JobPaths;
  proc: ProcessConfig;
  user: Identity;
  job: JobBook;
  cgroup: CgroupLayout;
  mode: LaunchPlan["mode"];
  host: HostFacts;
  shareLock: string;
  reaper?: string | null;
  /** Startup tracing (trace --startup): the job waits before exec. */
  pause?: boolean;
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

/** What a privileged job gets, where the host allows it: the original's fixed
 * set, capabilities 0 to 37 (CHOWN to AUDIT_READ; CapEff 0000003fffffffff on a
 * BOSH VM). Newer ones (PERFMON, BPF, CHECKPOINT_RESTORE) were never in it. */
export const PRIVILEGED_CAPABILITIES = Object.keys(CAPABILITIES).filter((c) => CAPABILITIES[c]! <= CAPABILITIES.AUDIT_READ!);

/** Where a job can write, as host paths (the hook runs on the host): its
 * BOSH directories and the temp dirs every user shares. */
function jobWritable(root: ExternalPath, proc: ProcessConfig): string[] {
  const places = ["/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue", "/run/lock", "/var/lock", "/var/crash"];
  for (const base of ["/var/vcap", root]) places.push(`${base}/data`, `${base}/store`, `${base}/sys`);
  for (const v of proc.additional_volumes) if (v.writable) places.push(v.path, v.source);
  return places;
}

/**
 * The pre_start hook's environment: the process's, except what would let
 * the job steer root: root's own HOME, the system temp dir, and a PATH
 * without "." or any other relative entry, or any place the job can write
 * (python, git or pip run by a hook would read what the job planted there).
 */
export function hookEnv(env: Record<string, string>, root: ExternalPath, proc: ProcessConfig): Record<string, string> {
  const writable = jobWritable(root, proc);
  // Canonical entries only: "/var/vcap/jobs/x/../../data/x" or "//var/vcap/data" would slip past the prefixes.
  const safe = (dir: string) => dir.startsWith("/") && posix.normalize(dir) === dir && !writable.some((w) => dir === w || dir.startsWith(w + "/"));
  const path = (env.PATH ?? "").split(":").filter(safe);
  return { ...env, HOME: ROOT_HOME, TMPDIR: "/tmp", PATH: path.length ? path.join(":") : "/usr/sbin:/usr/bin:/sbin:/bin" };
}

/** root's home directory on every stemcell. */
const ROOT_HOME = "/root";

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

  const vcap = { uid: input.user.uid, gid: input.user.gid };
  const real = (p: string) => realPath(host.fs, p);
  const preps: Prep[] = [
    { path: real(paths.dataDir), mode: 0o700, ...vcap, kind: "dir" },
    { path: real(paths.tmpDir), mode: 0o700, ...vcap, kind: "dir" },
    { path: real(paths.socketDir), mode: 0o700, ...vcap, kind: "dir" },
    { path: real(paths.runDir), mode: 0o700, uid: 0, gid: 0, kind: "dir" },
    { path: real(paths.rootfsDir), mode: 0o700, uid: 0, gid: 0, kind: "dir" },
  ];
  if (proc.persistent_disk) preps.push({ path: real(paths.storeDir), mode: 0o700, ...vcap, kind: "dir" });
  for (const v of proc.additional_volumes) {
    if (v.mount_only) continue;
    // A read-only volume is never chowned: one that is there is bound as it
    // is; one that is not is made root's, empty (the job cannot write it).
    if (v.writable) preps.push({ path: real(v.source), mode: 0o700, ...vcap, kind: "volume" });
    else if (!host.fs.paths[v.source]?.exists) preps.push({ path: real(v.source), mode: 0o755, uid: 0, gid: 0, kind: "dir" });
  }

  const capabilities = privileged
    ? PRIVILEGED_CAPABILITIES.filter((c) => host.boundingCaps.includes(c))
    : [...new Set(proc.capabilities.map((c) => c.toUpperCase().replace(/^CAP_/, "")))];

  const env = { ...defaultEnv(paths), ...proc.env };
  return {
    kind: "launch",
    mode: input.mode,
    job: input.job,
    cgroup: input.cgroup,
    namespaces: hostPid ? ["mount", "ipc", "uts"] : ["mount", "ipc", "uts", "pid"],
    preps,
    hook: proc.hooks.pre_start ? { path: proc.hooks.pre_start, env: hookEnv(env, input.root, proc) } : null,
    shareLock: input.shareLock,
    rootfs: real(paths.rootfsDir),
    mounts: buildMounts({ root: input.root, paths, proc, privileged, fs: host.fs }),
    user: privileged ? { uid: 0, gid: 0, groups: [0] } : { uid: input.user.uid, gid: input.user.gid, groups: input.user.groups },
    capabilities,
    capabilitiesUnavailable: privileged ? PRIVILEGED_CAPABILITIES.filter((c) => !host.boundingCaps.includes(c)) : [],
    rlimits,
    noNewPrivs: !privileged,
    subreaper: hostPid,
    cwd: proc.workdir ?? paths.internal.jobDir,
    executable: proc.executable,
    args: proc.args,
    env,
    statusFile: paths.exitFile,
    // Privileged jobs run without a filter, as the original's did.
    seccomp: privileged ? null : jobFilter(hostArch()),
    pause: input.pause ?? false,
    reaper: input.reaper ?? null,
  };
}

export function memoryLimit(proc: ProcessConfig): number | undefined {
  return proc.limits.memory;
}
