// BOSH paths. A host path and a container path are different types, so a host
// path can never be used where the container's view is meant (or the reverse).
import { join, resolve } from "node:path";

declare const external: unique symbol;
declare const internal: unique symbol;
/** A path on the host, under ROOT (which tests move with BPM_BOSH_ROOT). */
export type ExternalPath = string & { readonly [external]: true };
/** A path as the job sees it inside its container: always under /var/vcap. */
export type InternalPath = string & { readonly [internal]: true };

export const INTERNAL_ROOT = "/var/vcap" as InternalPath;
export const DEFAULT_ROOT = "/var/vcap";

export const ext = (p: string) => p as ExternalPath;
export const int = (p: string) => p as InternalPath;
export const extJoin = (base: ExternalPath, ...parts: string[]) => join(base, ...parts) as ExternalPath;

export function boshRoot(env: NodeJS.ProcessEnv = process.env): ExternalPath {
  const fromEnv = env.BPM_BOSH_ROOT;
  // Absolute and normalised once, so that paths below it can be built by concatenation.
  return ext(fromEnv && fromEnv !== "" ? resolve(fromEnv) : DEFAULT_ROOT);
}

/** The longest job or process name, in bytes. */
export const MAX_NAME_BYTES = 64;
/** The longest container id: its lock file (`ID.lock`) and cgroup directory
 * fit a file name (255 bytes), with 50 to spare for a systemd scope named
 * after it (`UNIT-bpm-ID.scope`). */
export const MAX_CONTAINER_ID_BYTES = 200;
const NAME_CHARS = /^[A-Za-z0-9_.-]+$/;

/** Why a job or process name cannot be used, or null. Names become file
 * names (PROC.pid, PROC.stdout.log, JOB/ directories), a cgroup and a lock
 * named by the container id, and rows of `bpm list`: one path component of
 * letters, digits, "_", "-" and ".", not "." or "..", at most 64 bytes. */
export function nameProblem(name: string): string | null {
  if (name === "" || name === "." || name === ".." || /[/\0]/.test(name)) return `a name may not be empty, "." or "..", or contain "/"`;
  if (!NAME_CHARS.test(name)) return `a name may hold only letters, digits, "_", "-" and "."`;
  if (name.length > MAX_NAME_BYTES) return `a name may be at most ${MAX_NAME_BYTES} characters long (it names files and a cgroup)`;
  return null;
}

/** Why these names together cannot be used (their container id is too long), or null. */
export function idProblem(job: string, proc: string = job): string | null {
  const id = containerId(job, proc);
  return id.length > MAX_CONTAINER_ID_BYTES
    ? `container id ${id} is ${id.length} bytes long, more than ${MAX_CONTAINER_ID_BYTES} (a "." in a name takes 3)`
    : null;
}

/** A job's or process's name is one path component bpm can name files after (nameProblem). */
export function checkName(kind: "job" | "process", name: string): void {
  const why = nameProblem(name);
  if (why) throw new Error(`invalid ${kind} name ${JSON.stringify(name)}: ${why}`);
}

/** What a job's directories (data/JOB, store/JOB, sys/run/JOB, sys/log/JOB)
 * would be for these names, which are taken on a BOSH VM: bpm's own, and
 * those the BOSH agent keeps under data/ (/var/vcap/sys and /var/vcap/jobs
 * are symlinks into it). Such a job would be given them, chowned to vcap and
 * mounted writable. Process names make only files in their job's
 * directories, so they cannot collide. */
const RESERVED_JOB_NAMES: Record<string, string> = {
  bpm: "ROOT/data/bpm and ROOT/sys/run/bpm are bpm's own directories",
  sys: "ROOT/data/sys is /var/vcap/sys on a BOSH VM (every job's logs and state)",
  jobs: "ROOT/data/jobs is /var/vcap/jobs on a BOSH VM",
  packages: "ROOT/data/packages holds the compiled packages every job runs",
  ...Object.fromEntries(["blobs", "compile", "root_log", "root_tmp", "sensitive_blobs", "tmp"].map((n) => [n, `ROOT/data/${n} is the BOSH agent's`])),
};

/** Why a job may not have this name, or null. */
export function reservedJobName(job: string): string | null {
  const why = Object.hasOwn(RESERVED_JOB_NAMES, job) ? RESERVED_JOB_NAMES[job] : undefined;
  return why ? `job name "${job}" is reserved: ${why}` : null;
}

/** Maps a path under /var/vcap to the same place under ROOT on the host. */
export function toExternal(root: ExternalPath, p: InternalPath): ExternalPath {
  if (p === INTERNAL_ROOT) return root;
  if (!p.startsWith(INTERNAL_ROOT + "/")) throw new Error(`path ${p} is not under ${INTERNAL_ROOT}`);
  return extJoin(root, p.slice(INTERNAL_ROOT.length + 1));
}

/** The root-level directories bpm keeps for itself, independent of any job. */
export function bpmDirs(root: ExternalPath) {
  return {
    jobsDir: ext(`${root}/jobs`),
    locksDir: ext(`${root}/data/bpm/locks`),
    helperDir: ext(`${root}/data/bpm`),
    runDir: ext(`${root}/sys/run/bpm`),
    storeDir: ext(`${root}/store`),
  };
}

/** Every path of the contract for one job and one of its processes. Built by
 * concatenation (list builds them for every job): root is normalised and the
 * names are single components (checkName). */
export function jobPaths(root: ExternalPath, job: string, proc: string = job) {
  checkName("job", job);
  if (proc !== job) checkName("process", proc);
  const tooLong = idProblem(job, proc);
  if (tooLong) throw new Error(`invalid names for job ${job}, process ${proc}: ${tooLong}`);
  const runDir = ext(`${root}/sys/run/bpm/${job}`);
  const logDir = ext(`${root}/sys/log/${job}`);
  const id = containerId(job, proc);
  const i = `${INTERNAL_ROOT}`;
  return {
    job,
    proc,
    id,
    config: ext(`${root}/jobs/${job}/config/bpm.yml`),
    jobDir: ext(`${root}/jobs/${job}`),
    runDir,
    pidfile: ext(`${runDir}/${proc}.pid`),
    stateFile: ext(`${runDir}/${proc}.state`),
    exitFile: ext(`${runDir}/${proc}.exit`),
    /** The job's checked bpm.yml, reused while the file is unchanged (src/config/cache.ts). */
    configCache: ext(`${runDir}/config.cache`),
    rootfsDir: ext(`${runDir}/${proc}.root`),
    logDir,
    stdoutLog: ext(`${logDir}/${proc}.stdout.log`),
    stderrLog: ext(`${logDir}/${proc}.stderr.log`),
    bpmLog: ext(`${logDir}/bpm.log`),
    lockFile: ext(`${root}/data/bpm/locks/${id}.lock`),
    dataDir: ext(`${root}/data/${job}`),
    tmpDir: ext(`${root}/data/${job}/tmp`),
    storeDir: ext(`${root}/store/${job}`),
    socketDir: ext(`${root}/sys/run/${job}`),
    internal: {
      jobDir: int(`${i}/jobs/${job}`),
      dataDir: int(`${i}/data/${job}`),
      tmpDir: int(`${i}/data/${job}/tmp`),
      storeDir: int(`${i}/store/${job}`),
      logDir: int(`${i}/sys/log/${job}`),
      socketDir: int(`${i}/sys/run/${job}`),
      packages: int(`${i}/packages`),
      dataPackages: int(`${i}/data/packages`),
    },
  };
}
export type JobPaths = ReturnType<typeof jobPaths>;

const SAFE = /[A-Za-z0-9_-]/;
/** Joins a job and a process in an id; a dot within a name is written `.2E`
 * instead, so no pair of names shares an id (job `a` process `b` is
 * `bpm-a.2eb`, job and process `a.b` is `bpm-a.2Eb`), while ids of names
 * without dots are what they always were. */
const SEPARATOR = ".2e";
const DOT_IN_NAME = ".2E";

/** `bpm-` + the escaped name: `JOB`, or `JOB.PROC` when they differ. */
export function containerId(job: string, proc: string = job): string {
  const escaped = job === proc ? escapeName(job) : `${escapeName(job)}${SEPARATOR}${escapeName(proc)}`;
  return "bpm-" + escaped;
}

/** Each byte outside [A-Za-z0-9_-] as `.` and two hex digits (lowercase, but a dot's uppercase). */
export function escapeName(name: string): string {
  let out = "";
  for (const byte of Buffer.from(name, "utf8")) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && SAFE.test(ch) ? ch : ch === "." ? DOT_IN_NAME : "." + byte.toString(16).padStart(2, "0");
  }
  return out;
}

/** The inverse of containerId's escaping (`JOB` or `JOB.PROC`, as list shows
 * names); returns null for ids not made by it. Reads ids of earlier versions
 * too (a dot in a name written `.2e`). */
export function decodeContainerId(id: string): string | null {
  if (!id.startsWith("bpm-")) return null;
  const bytes: number[] = [];
  const body = id.slice(4);
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch === ".") {
      const hex = body.slice(i + 1, i + 3);
      if (!/^(?:[0-9a-f]{2}|2E)$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (SAFE.test(ch)) {
      bytes.push(ch.charCodeAt(0));
    } else {
      return null;
    }
  }
  return Buffer.from(bytes).toString("utf8");
}
