// BOSH paths. A host path and a container path are different types, so a host
// path can never be used where the container's view is meant (or the reverse).
import { join } from "node:path";

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
export const intJoin = (base: InternalPath, ...parts: string[]) => join(base, ...parts) as InternalPath;

export function boshRoot(env: NodeJS.ProcessEnv = process.env): ExternalPath {
  const fromEnv = env.BPM_BOSH_ROOT;
  return ext(fromEnv && fromEnv !== "" ? fromEnv : DEFAULT_ROOT);
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
    jobsDir: extJoin(root, "jobs"),
    locksDir: extJoin(root, "data", "bpm", "locks"),
    helperDir: extJoin(root, "data", "bpm"),
    runDir: extJoin(root, "sys", "run", "bpm"),
    storeDir: extJoin(root, "store"),
  };
}

/** Every path of the contract for one job and one of its processes. */
export function jobPaths(root: ExternalPath, job: string, proc: string = job) {
  const dirs = bpmDirs(root);
  const runDir = extJoin(dirs.runDir, job);
  const logDir = extJoin(root, "sys", "log", job);
  const id = containerId(job, proc);
  return {
    job,
    proc,
    id,
    config: extJoin(root, "jobs", job, "config", "bpm.yml"),
    jobDir: extJoin(root, "jobs", job),
    runDir,
    pidfile: extJoin(runDir, `${proc}.pid`),
    stateFile: extJoin(runDir, `${proc}.state`),
    exitFile: extJoin(runDir, `${proc}.exit`),
    /** The job's checked bpm.yml, reused while the file is unchanged (src/config/cache.ts). */
    configCache: extJoin(runDir, "config.cache"),
    rootfsDir: extJoin(runDir, `${proc}.root`),
    logDir,
    stdoutLog: extJoin(logDir, `${proc}.stdout.log`),
    stderrLog: extJoin(logDir, `${proc}.stderr.log`),
    bpmLog: extJoin(logDir, "bpm.log"),
    lockFile: extJoin(dirs.locksDir, `${id}.lock`),
    dataDir: extJoin(root, "data", job),
    tmpDir: extJoin(root, "data", job, "tmp"),
    storeDir: extJoin(root, "store", job),
    socketDir: extJoin(root, "sys", "run", job),
    internal: {
      jobDir: intJoin(INTERNAL_ROOT, "jobs", job),
      dataDir: intJoin(INTERNAL_ROOT, "data", job),
      tmpDir: intJoin(INTERNAL_ROOT, "data", job, "tmp"),
      storeDir: intJoin(INTERNAL_ROOT, "store", job),
      logDir: intJoin(INTERNAL_ROOT, "sys", "log", job),
      socketDir: intJoin(INTERNAL_ROOT, "sys", "run", job),
      packages: intJoin(INTERNAL_ROOT, "packages"),
      dataPackages: intJoin(INTERNAL_ROOT, "data", "packages"),
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
