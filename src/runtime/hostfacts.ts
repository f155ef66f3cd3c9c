// Facts about the host that a launch plan depends on, gathered here so that
// src/plan stays pure: bpm's own limits and capabilities, and where each
// host path the plan needs really is. Symlinks are followed only where root
// owns them in a directory only root can write (merged /usr, /var/vcap/sys
// on a BOSH VM); one a job could have planted is refused, naming it.
import { globSync, lstatSync, readFileSync, readlinkSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import type { ExternalPath, JobPaths } from "../bosh/paths.ts";
import { CAPABILITIES } from "../config/capabilities.ts";
import type { ProcessConfig } from "../config/schema.ts";
import { hostPathsFor, SYSTEM_DIRS, type HostFs, type HostPath } from "../plan/mounts.ts";
import type { HostFacts } from "../plan/plan.ts";

/** A path that could not be resolved safely: the symlink that stopped it. */
export class UntrustedSymlink extends Error {
  readonly path: string;
  readonly symlink: string;
  constructor(path: string, symlink: string) {
    super(`${symlink} is a symlink that root does not control (refused: a job may have planted it)`);
    this.path = path;
    this.symlink = symlink;
  }
}

const MAX_LINKS = 40;

/** Whether root alone could have made this symlink what it is. */
function trusted(link: string): boolean {
  const st = lstatSync(link);
  const parent = lstatSync(dirname(link));
  return st.uid === 0 && parent.uid === 0 && (parent.mode & 0o022) === 0;
}

/** The path with trusted symlinks resolved and none left; components that do
 * not exist yet are kept as written. Throws UntrustedSymlink. `known` holds
 * real directories already walked (one gathering resolves many paths that
 * share ROOT and its subdirectories). */
export function trustedPath(path: string, known: Map<string, string> = new Map()): HostPath {
  let links = 0;
  const resolve = (p: string): HostPath => {
    const parts = p.split("/").filter((c) => c !== "" && c !== ".");
    let cur = "/";
    for (let n = 0; n < parts.length; n++) {
      const next = join(cur, parts[n]!);
      const seen = known.get(next);
      if (seen !== undefined && n < parts.length - 1) {
        cur = seen;
        continue;
      }
      let st;
      try {
        st = lstatSync(next);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
        return { real: join(next, ...parts.slice(n + 1)), exists: false };
      }
      if (st.isSymbolicLink()) {
        if (!trusted(next)) throw new UntrustedSymlink(path, next);
        if (++links > MAX_LINKS) throw new Error(`${path}: too many levels of symbolic links`);
        const target = readlinkSync(next);
        const at = resolve(isAbsolute(target) ? target : join(cur, target));
        if (!at.exists) return { real: join(at.real, ...parts.slice(n + 1)), exists: false };
        cur = at.real;
      } else {
        cur = next;
      }
      if (st.isSymbolicLink() || st.isDirectory()) known.set(next, cur);
    }
    return { real: cur, exists: true };
  };
  return resolve(path);
}

/** Where every host path the plan for proc needs really is. */
function gatherHostFs(root: ExternalPath, paths: JobPaths, proc: ProcessConfig): HostFs {
  const wanted = hostPathsFor(root, paths, proc);
  const fs: HostFs = { paths: {}, links: {}, globs: {}, skipped: [] };
  const known = new Map<string, string>();
  for (const pattern of wanted.patterns) {
    // A match through a symlink a job planted is left out, not a failure:
    // one job must not be able to stop another from starting.
    fs.globs[pattern] = globSync(pattern).sort().filter((match) => {
      // A system directory (merged /usr) is read as every other wanted path is, below.
      if (SYSTEM_DIRS.includes(match)) {
        wanted.paths.push(match);
        return true;
      }
      try {
        fs.paths[match] = trustedPath(match, known);
        return true;
      } catch (e) {
        if (!(e instanceof UntrustedSymlink)) throw e;
        fs.skipped.push({ path: match, symlink: e.symlink });
        return false;
      }
    });
  }
  for (const p of wanted.paths) {
    if (SYSTEM_DIRS.includes(p)) {
      const link = systemLink(p);
      if (link !== null) {
        fs.links[p] = link;
        continue;
      }
    }
    fs.paths[p] = trustedPath(p, known);
  }
  return fs;
}

/** A system directory that is a symlink within / (merged /usr: bin -> usr/bin), or null. */
function systemLink(dir: string): string | null {
  try {
    if (!lstatSync(dir).isSymbolicLink()) return null;
  } catch {
    return null;
  }
  const link = readlinkSync(dir);
  return !link.startsWith("/") && !link.includes("..") ? link : null;
}

/** bpm's own open-files limit and capability bounding set, and the host paths the plan needs. */
export function readHostFacts(root: ExternalPath, paths: JobPaths, proc: ProcessConfig): HostFacts {
  const limits = readFileSync("/proc/self/limits", "utf8");
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(limits);
  const hard = m?.[1] === "unlimited" || !m ? "unlimited" : Number(m[1]);
  const status = readFileSync("/proc/self/status", "utf8");
  const bnd = BigInt("0x" + (/^CapBnd:\s+([0-9a-f]+)/m.exec(status)?.[1] ?? "0"));
  const caps: string[] = [];
  for (let n = 0; n < 64; n++) {
    if (!(bnd & (1n << BigInt(n)))) continue;
    const name = Object.keys(CAPABILITIES).find((k) => CAPABILITIES[k] === n);
    if (name) caps.push(name);
  }
  return { nofileHard: hard, boundingCaps: caps, fs: gatherHostFs(root, paths, proc) };
}
