// One kernel lock per JOB/PROC serialises start, stop and run. The lock file
// is opened here and flock()ed by a helper on the inherited descriptor: the
// lock belongs to the open file, so it stays with this process and the
// kernel releases it when bpm exits, however it dies. Start, run and stop
// hand it to the helper that does their work, which locks before anything
// else (one spawn instead of two); the `lock` verb alone serves the rest.
import { spawnSync, type StdioOptions } from "node:child_process";
import { closeSync, constants as C, openSync } from "node:fs";
import { dirname } from "node:path";
import { ensureDir } from "./files.ts";

export class Lock {
  readonly file: string;
  private open: number | null;
  constructor(file: string, fd: number) {
    this.file = file;
    this.open = fd;
  }
  get fd(): number {
    if (this.open === null) throw new Error("lock already released");
    return this.open;
  }
  release(): void {
    if (this.open !== null) closeSync(this.open);
    this.open = null;
  }
}

/** The lock file, open but not locked yet: a helper that takes the lock
 * itself before its own work (`launch lock`, `stop lock`) gets it as LOCK_FD. */
export function openLock(file: string): Lock {
  ensureDir(dirname(file), 0o700);
  return new Lock(file, openSync(file, C.O_RDWR | C.O_CREAT | C.O_NOFOLLOW, 0o600));
}

/** Where the helper expects the lock file (LOCK_FD in helper-c/util.h). */
const LOCK_FD = 5;

/** A helper's stdio with the lock file at LOCK_FD (unused descriptors before it ignored). */
type Descriptors = Exclude<StdioOptions, string>;

export function withLock(stdio: Descriptors, lock: Lock): Descriptors {
  if (stdio.length > LOCK_FD) throw new Error(`descriptor ${LOCK_FD} is taken`);
  return [...stdio, ...Array<"ignore">(LOCK_FD - stdio.length).fill("ignore"), lock.fd];
}

/** Takes the lock with a helper of its own. */
export function takeLock(lock: Lock, helper: string): void {
  const r = spawnSync(helper, ["lock"], { stdio: [lock.fd, "ignore", "pipe"] });
  if (r.status !== 0) throw new Error(`could not lock ${lock.file}: ${r.stderr?.toString().trim() || r.error?.message || `status ${r.status}`}`);
}

/** Opens and takes a lock with a helper of its own. */
export function acquireLock(file: string, helper: string): Lock {
  const lock = openLock(file);
  try {
    takeLock(lock, helper);
  } catch (e) {
    lock.release();
    throw e;
  }
  return lock;
}
