// The C helper travels inside bpm and is extracted on first use to
// ROOT/data/bpm/helper-<sha256>: a root-owned 0700 directory and file,
// written atomically. Every use compares the file with the embedded bytes and
// runs the very file descriptor that was checked, so a swapped file can never run.
// The reaper (helper-c/reaper/, what a container's init becomes once its job
// runs) is extracted beside it the same way as reaper-<sha256>, mode 0711:
// the init, already the job's user, may execute it, not read it.
import { HELPER_VERSION as WIRE_HELPER_VERSION, PLAN_VERSION } from "../plan/wire.ts";
import { closeSync, constants as C, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ensureDir } from "./files.ts";

/** Bytes as the bundle carries them: base64, decoded at the first use (most commands never use them). */
type Carried = Uint8Array | string;
let embedded: Carried | null = null;
let embeddedReaper: Carried | null = null;
let verified: { dir: string; fd: number } | null = null;
const knownHashes = new WeakMap<Uint8Array, string>();

const decoded = new Map<string, Uint8Array>();
function bytesOf(carried: Carried, sha256hex?: string): Uint8Array {
  if (typeof carried !== "string") return carried;
  let bytes = decoded.get(carried);
  if (!bytes) {
    bytes = Buffer.from(carried, "base64");
    decoded.set(carried, bytes);
    if (sha256hex) knownHashes.set(bytes, sha256hex);
  }
  return bytes;
}
let hashes: { helper?: string; reaper?: string } = {};

/** Called once by the entry point with the bytes the bundle carries (or
 * their base64) and their sha256, computed at build time (loading
 * node:crypto costs every command). */
export function setHelperBytes(bytes: Carried, sha256hex?: string, reaper?: { bytes: Carried; sha256?: string }): void {
  embedded = bytes;
  embeddedReaper = reaper?.bytes ?? null;
  hashes = { helper: sha256hex, reaper: reaper?.sha256 };
  if (typeof bytes !== "string" && sha256hex) knownHashes.set(bytes, sha256hex);
  if (reaper && typeof reaper.bytes !== "string" && reaper.sha256) knownHashes.set(reaper.bytes, reaper.sha256);
}

export const sha256 = (b: Uint8Array | string) =>
  process.getBuiltinModule("node:crypto").createHash("sha256").update(b).digest("hex");
export const helperFileName = (bytes: Uint8Array, kind = "helper") => `${kind}-${knownHashes.get(bytes) ?? sha256(bytes)}`;

const HELPER = { kind: "helper", mode: 0o700, check: true };
const REAPER = { kind: "reaper", mode: 0o711, check: false };

/** Returns an open descriptor of a verified copy of the helper, extracting it if needed. */
export function ensureHelper(dir: string, bytes: Uint8Array, binary = HELPER): number {
  ensureDir(dir, 0o700);
  const path = join(dir, helperFileName(bytes, binary.kind));
  const fd = openVerified(path, bytes, binary.mode);
  if (fd !== null) return fd;
  const tmp = join(dir, `.${binary.kind}.${process.pid}.${Math.random().toString(36).slice(2)}`);
  const out = openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, binary.mode);
  try {
    writeSync(out, bytes);
    fsyncSync(out);
  } finally {
    closeSync(out);
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    unlinkSync(tmp);
    throw e;
  }
  const dirFd = openSync(dir, C.O_RDONLY | C.O_DIRECTORY);
  fsyncSync(dirFd);
  closeSync(dirFd);
  const again = openVerified(path, bytes, binary.mode);
  if (again === null) throw new Error(`${binary.kind} at ${path} failed verification right after extraction`);
  if (binary.check) selfCheck(path);
  return again;
}

export const HELPER_VERSION = `${WIRE_HELPER_VERSION} ${PLAN_VERSION}`;

/** A freshly extracted helper must run and speak our plan version (a noexec data dir would stop it here). */
function selfCheck(path: string): void {
  // Loaded here, not at the top: every command imports this module, and
  // node:child_process (with net and stream) costs ~10 ms to load.
  const r = process.getBuiltinModule("node:child_process").spawnSync(path, ["version"], { encoding: "utf8" });
  if (r.status !== 0 || r.stdout.trim() !== HELPER_VERSION) {
    throw new Error(`helper ${path} does not run: ${r.error?.message ?? (r.stderr.trim() || `printed "${r.stdout.trim()}"`)}`);
  }
}

/** An fd of path if it is a root-owned regular file of this mode with exactly these bytes, else null (a bad copy is removed). */
function openVerified(path: string, bytes: Uint8Array, mode: number): number | null {
  let fd: number;
  try {
    fd = openSync(path, C.O_RDONLY | C.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ELOOP") {
      unlinkSync(path);
      return null;
    }
    throw e;
  }
  const st = fstatSync(fd);
  let ok = st.isFile() && st.uid === 0 && (st.mode & 0o7777) === mode && st.size === bytes.length;
  if (ok) {
    const buf = Buffer.alloc(bytes.length);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    ok = got === buf.length && buf.equals(bytes);
  }
  if (ok) return fd;
  closeSync(fd);
  unlinkSync(path);
  return null;
}

/** The path that runs the verified helper (its descriptor, via /proc). */
export function helperExecPath(dir: string): string {
  if (!embedded) throw new Error("this build of bpm carries no helper");
  if (verified?.dir !== dir) verified = { dir, fd: ensureHelper(dir, bytesOf(embedded, hashes.helper)) };
  return `/proc/self/fd/${verified.fd}`;
}

/** The verified reaper's path, for the plan (the helper opens it before the
 * container exists); null when this build carries none (the init then stays
 * as it is). Checked like the helper, which runs right after. */
export function reaperPath(dir: string): string | null {
  if (!embeddedReaper) return null;
  const bytes = bytesOf(embeddedReaper, hashes.reaper);
  closeSync(ensureHelper(dir, bytes, REAPER));
  return join(dir, helperFileName(bytes, "reaper"));
}
