// Which volume paths would reach bpm's own state: its data directory
// (ROOT/data/bpm: the helper, locks) and its run directory (ROOT/sys/run/bpm:
// every job's pidfiles, state and parsed config). A job that could write
// there could hang or fool every bpm command for every job.
import { posix } from "node:path";

/** bpm's state directories under a root (`/var/vcap` or ROOT). On a BOSH VM
 * /var/vcap/sys is a symlink to /var/vcap/data/sys: its run dir counts too. */
export function stateDirs(root: string) {
  return {
    data: [posix.join(root, "data/bpm")],
    run: [posix.join(root, "sys/run/bpm"), posix.join(root, "data/sys/run/bpm")],
  };
}

const inside = (p: string, dir: string) => p.startsWith(dir + "/");

/**
 * Why a volume at host path p may not be mounted for job, or null when it
 * may: bpm's data dir and all beneath it, its run dir, and other jobs' dirs
 * in it, are refused; the job's own run dir (and what is in it) only
 * read-only (the BOSH director's nats job mounts it `mount_only`); a
 * directory above any of them only read-only.
 */
export function stateConflict(p: string, writable: boolean, job: string, roots: readonly string[]): string | null {
  for (const root of roots) {
    const { data, run } = stateDirs(root);
    for (const d of data) {
      if (p === d || inside(p, d)) return `${p} is bpm's own state (${d}): no job may mount it`;
      if (writable && inside(d, p)) return `${p} holds bpm's own state (${d}): it may only be mounted read-only`;
    }
    for (const r of run) {
      if (p === r) return `${p} is bpm's own state (every job's pidfiles): no job may mount it`;
      if (inside(p, r)) {
        const owner = p.slice(r.length + 1).split("/")[0];
        if (owner !== job) return `${p} is another job's state in ${r}: no job may mount it`;
        if (writable) return `${p} is this job's state in ${r}: it may only be mounted read-only`;
      }
      if (writable && inside(r, p)) return `${p} holds bpm's own state (${r}): it may only be mounted read-only`;
    }
  }
  return null;
}
