// Directories bpm keeps for itself (the helper's, a job's run dir): root's,
// made without following a symlink where they are made or checked, owner and
// mode set on the open descriptor. Nothing a job can write is opened here:
// the helper alone opens those (helper-c/bpmlog.c).
import { closeSync, constants as C, fchmodSync, fchownSync, lstatSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";

/** mkdir -p, then root's and mode on the last directory; refuses a symlink there. */
export function ensureDir(path: string, mode: number): void {
  const missing: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    try {
      const st = lstatSync(p);
      if (st.isSymbolicLink() && missing.length === 0 && p === path) throw new Error(`refusing to open symlink at ${p}`);
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
    fchownSync(fd, 0, 0);
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}
