// A job's checked configuration, kept beside its state (ROOT/sys/run/bpm/JOB,
// root's alone) and reused while bpm.yml is the very same, unchanged file:
// monit restarts a job many times between two deploys, and parsing YAML is
// most of what a start costs bpm. The key is the file's identity (device,
// inode, size, modification and change times to the nanosecond), the
// schema's context and the build of bpm; anything else means a fresh parse.
import { closeSync, constants as C, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import type { LoadedConfig } from "./load.ts";
import type { SchemaContext } from "./schema.ts";

declare const BPM_BUILD_ID: string;
const BUILD = typeof BPM_BUILD_ID === "string" ? BPM_BUILD_ID : "dev";

/** What identifies this parse of file: null if the file cannot be looked at. */
export function configKey(file: string, ctx: SchemaContext): string | null {
  try {
    const st = statSync(file, { bigint: true });
    return [BUILD, ctx.root, ctx.job, st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join("|");
  } catch {
    return null;
  }
}

export function readCachedConfig(cacheFile: string, key: string | null): LoadedConfig | null {
  if (key === null) return null;
  try {
    const cached = JSON.parse(readFileSync(cacheFile, "utf8")) as { key: string; loaded: LoadedConfig };
    return cached.key === key ? cached.loaded : null;
  } catch {
    return null;
  }
}

/** Keeps a parse for the next command, if the file did not change while it was read. Best effort. */
export function writeCachedConfig(cacheFile: string, key: string | null, file: string, ctx: SchemaContext, loaded: LoadedConfig): void {
  if (key === null || configKey(file, ctx) !== key) return;
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, JSON.stringify({ key, loaded }));
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, cacheFile);
  } catch {
    rmSync(tmp, { force: true });
  }
}
