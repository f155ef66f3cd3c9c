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

/** A job's or process's name is one path component: not empty, not . or .., no / or NUL. */
export function checkName(kind: "job" | "process", name: string): void {
  if (name === "" || name === "." || name === ".." || /[/\0]/.test(name)) throw new Error(`invalid ${kind} name ${JSON.stringify(name)}: a name may not be empty, "." or "..", or contain "/"`);
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

/** `bpm-` + the escaped name: `JOB`, or `JOB.PROC` when they differ. */
export function containerId(job: string, proc: string = job): string {
  const name = job === proc ? job : `${job}.${proc}`;
  return "bpm-" + escapeName(name);
}

export function escapeName(name: string): string {
  let out = "";
  for (const byte of Buffer.from(name, "utf8")) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && SAFE.test(ch) ? ch : "." + byte.toString(16).padStart(2, "0");
  }
  return out;
}

/** The inverse of containerId's escaping; returns null for ids not made by it. */
export function decodeContainerId(id: string): string | null {
  if (!id.startsWith("bpm-")) return null;
  const bytes: number[] = [];
  const body = id.slice(4);
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch === ".") {
      const hex = body.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) return null;
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
