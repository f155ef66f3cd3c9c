// The container's filesystem as an ordered list of operations for the helper:
// everything before `rootro` happens inside the new root before pivot_root,
// masks and read-only paths after it. Pure: what the host has (which system
// directories exist, where symlinks that root owns lead, what a glob matches)
// comes in as HostFs, gathered on the host by the runtime (hostfacts.ts).
import { posix } from "node:path";
import type { ProcessConfig } from "../config/schema.ts";
import { stateConflict } from "../config/volumes.ts";
import { INTERNAL_ROOT, toExternal, type ExternalPath, type JobPaths } from "../bosh/paths.ts";

export type MountFlag = "ro" | "nosuid" | "nodev" | "noexec" | "shared";
export type MountOp =
  | { kind: "bind"; source: string; target: string; flags: MountFlag[] }
  | { kind: "fs"; fstype: string; source: string; target: string; flags: MountFlag[]; data: string }
  | { kind: "mknod"; target: string; major: number; minor: number; mode: number }
  | { kind: "symlink"; linkTarget: string; target: string }
  | { kind: "mask"; target: string }
  | { kind: "readonly"; target: string }
  /** The root, once everything is in place: read-only, with these options. */
  | { kind: "rootro"; flags: MountFlag[] };

export const SYSTEM_DIRS = ["/bin", "/etc", "/lib", "/lib64", "/sbin", "/usr"];
export const RESOLVER_DIRS = ["/run/resolvconf", "/run/systemd/resolve"];
export const MASKED_PATHS = ["/etc/sv", "/proc/kcore", "/proc/latency_stats", "/proc/sched_debug", "/proc/timer_list", "/proc/timer_stats", "/sys/firmware"];
export const READONLY_PATHS = ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];
const DEVICES = [
  { name: "null", major: 1, minor: 3 }, { name: "zero", major: 1, minor: 5 }, { name: "full", major: 1, minor: 7 },
  { name: "random", major: 1, minor: 8 }, { name: "urandom", major: 1, minor: 9 }, { name: "tty", major: 5, minor: 0 },
];

/** A host path as the helper will walk it: every symlink that root owns
 * resolved, none left (the helper refuses any it meets), and whether
 * anything is there yet. */
export interface HostPath {
  real: string;
  exists: boolean;
}

/** What the plan needs to know of the host's filesystem. */
export interface HostFs {
  /** Each host path the plan may bind or create (see hostPathsFor). */
  paths: Record<string, HostPath>;
  /** System directories that are relative symlinks within / (merged /usr): the link's text. */
  links: Record<string, string>;
  /** Each unrestricted volume's pattern and the paths it matches now, sorted. */
  globs: Record<string, string[]>;
  /** Glob matches left out: reached through a symlink a job could have planted. */
  skipped: { path: string; symlink: string }[];
}

export interface MountContext {
  root: ExternalPath;
  paths: JobPaths;
  proc: ProcessConfig;
  privileged: boolean;
  fs: HostFs;
}

const isGlob = (p: string) => /[*?[]/.test(p);

/** Every host path and glob pattern whose facts the plan for proc needs. */
export function hostPathsFor(root: ExternalPath, paths: JobPaths, proc: ProcessConfig): { paths: string[]; patterns: string[] } {
  const i = paths.internal;
  const list = [
    ...SYSTEM_DIRS, ...RESOLVER_DIRS,
    paths.tmpDir, paths.dataDir, paths.storeDir, paths.logDir, paths.socketDir, paths.jobDir, paths.runDir, paths.rootfsDir,
    toExternal(root, i.packages), toExternal(root, i.dataPackages),
    ...proc.additional_volumes.map((v) => v.source),
  ];
  const patterns: string[] = [];
  for (const v of proc.unsafe.unrestricted_volumes) (isGlob(v.path) ? patterns : list).push(v.path);
  return { paths: [...new Set(list)], patterns };
}

/** Options for a bind mount: read-only unless writable, noexec unless executable; nosuid except when
 * privileged (then no mount is nosuid, the root included, as in the original). */
function bindFlags(ctx: MountContext, o: { writable: boolean; exec: boolean }): MountFlag[] {
  const flags: MountFlag[] = ["nodev"];
  if (!ctx.privileged) flags.push("nosuid");
  if (!o.writable) flags.push("ro");
  if (!o.exec) flags.push("noexec");
  return flags;
}

/** Where the helper finds a host path: its real location (the helper then
 * refuses any symlink it meets on the way). */
export function realPath(fs: HostFs, p: string): string {
  const known = fs.paths[p];
  if (!known) throw new Error(`no host facts gathered for ${p}`);
  return known.real;
}

/** Host directories the job sees, sorted so that a parent is mounted before what sits inside it. */
function binds(ctx: MountContext): Extract<MountOp, { kind: "bind" } | { kind: "symlink" }>[] {
  const { paths, proc, fs } = ctx;
  const out: Extract<MountOp, { kind: "bind" } | { kind: "symlink" }>[] = [];
  const bind = (target: string, source: string, writable: boolean, exec: boolean, extra: MountFlag[] = []) =>
    out.push({ kind: "bind", source: realPath(fs, source), target, flags: [...bindFlags(ctx, { writable, exec }), ...extra] });
  const present = (p: string) => fs.paths[p]?.exists === true;

  for (const dir of SYSTEM_DIRS) {
    // Merged /usr: /bin is a symlink to usr/bin, and so it stays inside.
    if (fs.links[dir] !== undefined) out.push({ kind: "symlink", linkTarget: fs.links[dir], target: dir });
    else if (present(dir)) bind(dir, dir, false, true);
  }
  for (const dir of RESOLVER_DIRS) if (present(dir)) bind(dir, dir, false, false);

  // Everything a job can write is noexec, as in the original: only the
  // job's own directory and the packages (both read-only) run programs.
  const i = paths.internal;
  for (const tmp of ["/tmp", "/var/tmp", i.tmpDir]) bind(tmp, paths.tmpDir, true, false);
  for (const pkgs of [i.packages, i.dataPackages]) {
    const host = toExternal(ctx.root, pkgs);
    if (present(host)) bind(pkgs, host, false, true);
  }
  bind(i.jobDir, paths.jobDir, false, true);
  bind(i.logDir, paths.logDir, true, false);
  bind(i.socketDir, paths.socketDir, true, false);
  if (proc.ephemeral_disk) bind(i.dataDir, paths.dataDir, true, false);
  if (proc.persistent_disk) bind(i.storeDir, paths.storeDir, true, false);

  for (const v of proc.additional_volumes) {
    bind(v.path, v.source, v.writable, v.allow_executions, v.shared ? ["shared"] : []);
  }
  const mounted = out.map((m) => m.target);
  for (const v of proc.unsafe.unrestricted_volumes) {
    const matches = isGlob(v.path) ? (fs.globs[v.path] ?? []) : [v.path];
    for (const path of matches) {
      // What bpm already mounts wins over an unrestricted volume beneath it.
      if (mounted.some((m) => path === m || path.startsWith(m + "/"))) continue;
      // A glob skips bpm's own state (`/var/vcap/data/*` matches data/bpm);
      // a path written out is refused before this (schema, prepare.ts).
      const real = fs.paths[path]?.real ?? path;
      if ([path, real].some((p) => stateConflict(p, v.writable, paths.job, [INTERNAL_ROOT, ctx.root]))) continue;
      out.push({ kind: "bind", source: real, target: path, flags: bindFlags(ctx, { writable: v.writable, exec: v.allow_executions }) });
    }
  }
  // Stable sort by depth: /var/vcap/data/JOB before /var/vcap/data/JOB/tmp.
  const depth = (p: string) => posix.normalize(p).split("/").length;
  return out.map((m, n) => ({ m, n })).sort((a, b) => depth(a.m.target) - depth(b.m.target) || a.n - b.n).map((x) => x.m);
}

/** /proc, a small /dev with the usual nodes, /dev/pts, /dev/shm, /dev/mqueue, read-only /sys. */
function kernelFilesystems(ctx: MountContext): MountOp[] {
  const nosuid: MountFlag[] = ctx.privileged ? [] : ["nosuid"];
  const ops: MountOp[] = [
    { kind: "fs", fstype: "proc", source: "proc", target: "/proc", flags: [...nosuid, "nodev", "noexec"], data: "" },
    { kind: "fs", fstype: "tmpfs", source: "tmpfs", target: "/dev", flags: [...nosuid, "noexec"], data: "mode=755,size=64k" },
  ];
  for (const d of DEVICES) ops.push({ kind: "mknod", target: `/dev/${d.name}`, major: d.major, minor: d.minor, mode: 0o666 });
  ops.push(
    { kind: "fs", fstype: "devpts", source: "devpts", target: "/dev/pts", flags: [...nosuid, "noexec"], data: "newinstance,ptmxmode=0666,mode=0620" },
    { kind: "symlink", linkTarget: "pts/ptmx", target: "/dev/ptmx" },
    // No size cap: a small /dev/shm once crashed PostgreSQL.
    { kind: "fs", fstype: "tmpfs", source: "shm", target: "/dev/shm", flags: [...nosuid, "nodev", "noexec"], data: "mode=1777" },
    { kind: "fs", fstype: "mqueue", source: "mqueue", target: "/dev/mqueue", flags: [...nosuid, "nodev", "noexec"], data: "" },
    { kind: "symlink", linkTarget: "/proc/self/fd", target: "/dev/fd" },
    { kind: "symlink", linkTarget: "/proc/self/fd/0", target: "/dev/stdin" },
    { kind: "symlink", linkTarget: "/proc/self/fd/1", target: "/dev/stdout" },
    { kind: "symlink", linkTarget: "/proc/self/fd/2", target: "/dev/stderr" },
    { kind: "fs", fstype: "sysfs", source: "sysfs", target: "/sys", flags: ["ro", ...nosuid, "nodev", "noexec"], data: "" },
  );
  return ops;
}

export function buildMounts(ctx: MountContext): MountOp[] {
  const ops: MountOp[] = [...binds(ctx), ...kernelFilesystems(ctx)];
  if (!ctx.privileged) {
    for (const target of MASKED_PATHS) ops.push({ kind: "mask", target });
    for (const target of READONLY_PATHS) ops.push({ kind: "readonly", target });
  }
  ops.push({ kind: "rootro", flags: ["ro", ...(ctx.privileged ? [] : ["nosuid" as const]), "nodev"] });
  return ops;
}
