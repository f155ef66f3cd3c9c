// One kernel lock per JOB/PROC serialises start, stop and run. The lock file
// is opened here and flock()ed by the helper on the inherited descriptor: the
// lock belongs to the open file, so it stays with this process and the
// kernel releases it when bpm exits, however it dies.
import { spawnSync } from "node:child_process";
import { closeSync, constants as C, openSync } from "node:fs";
import { dirname } from "node:path";
import { ensureDir } from "./files.ts";

export class Lock {
  private fd: number | null;
  constructor(fd: number) {
    this.fd = fd;
  }
  release(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

export function acquireLock(file: string, helper: string): Lock {
  ensureDir(dirname(file), 0o700);
  const fd = openSync(file, C.O_RDWR | C.O_CREAT | C.O_NOFOLLOW, 0o600);
  const r = spawnSync(helper, ["lock"], { stdio: [fd, "ignore", "pipe"] });
  if (r.status !== 0) {
    closeSync(fd);
    throw new Error(`could not lock ${file}: ${r.stderr?.toString().trim() || r.error?.message || `status ${r.status}`}`);
  }
  return new Lock(fd);
}
