// File operations for places a job can write to: nothing here follows a
// symlink, and ownership and mode are set on the open descriptor.
import { closeSync, constants as C, fchmodSync, fchownSync, fstatSync, lstatSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";

export interface Owner {
  uid: number;
  gid: number;
}
export const ROOT_OWNER: Owner = { uid: 0, gid: 0 };

/** A path bpm will not use as root: a symlink, or not a plain file of its own. */
export class RefusedFile extends Error {}

/** mkdir -p, then set owner and mode on the last directory; refuses symlinks anywhere it creates or checks. */
export function ensureDir(path: string, mode: number, owner: Owner = ROOT_OWNER): void {
  const missing: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    try {
      const st = lstatSync(p);
      if (st.isSymbolicLink() && missing.length === 0 && p === path) throw new RefusedFile(`refusing to open symlink at ${p}`);
      if (!st.isDirectory() && !st.isSymbolicLink()) throw new Error(`${p} exists and is not a directory`);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      missing.unshift(p);
      if (p === dirname(p)) break;
    }
  }
  for (const p of missing) {
    try {
      mkdirSync(p, { mode: 0o755 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
  const fd = openSync(path, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
  try {
    fchownSync(fd, owner.uid, owner.gid);
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}

/** Opens (creating) a file for appending without following a symlink at its
 * path; refuses anything but a regular file with one link (a hard link a job
 * made could be a host file), then sets owner and mode on the descriptor. */
export function openAppend(path: string, mode: number, owner: Owner): number {
  let fd: number;
  try {
    fd = openSync(path, C.O_WRONLY | C.O_APPEND | C.O_CREAT | C.O_NOFOLLOW | C.O_NONBLOCK, mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ELOOP") throw new RefusedFile(`refusing to open symlink at ${path}`);
    throw e;
  }
  const st = fstatSync(fd);
  if (!st.isFile() || st.nlink !== 1) {
    closeSync(fd);
    throw new RefusedFile(`refusing to open ${path}: ${st.isFile() ? `it has ${st.nlink} hard links` : "not a regular file"}`);
  }
  fchownSync(fd, owner.uid, owner.gid);
  fchmodSync(fd, mode);
  return fd;
}

/** An errno error as a sentence ("no space left on device"), without Node's prefix and syscall. */
export function describeError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (!err.code) return err.message ?? String(e);
  return /^[A-Z]+: ([^,]*)/.exec(err.message)?.[1] ?? err.message;
}
