// Reading the logs a job writes to, as root: opened without following a
// symlink and without blocking (a FIFO there cannot wedge bpm), regular files
// only, read in fixed-size chunks so that time and memory stay bounded by
// what is printed, whatever the job put in the file.
import { closeSync, constants as C, fstatSync, lstatSync, openSync, readSync } from "node:fs";
import { RefusedFile } from "./files.ts";

/** Looking back for newlines: one page-cache-friendly window at a time. */
const CHUNK = 64 * 1024;
/** Copying out: bigger pieces, fewer writes. */
const COPY_CHUNK = 1024 * 1024;

/** An open log: the descriptor, the inode it was opened as, and how far it has been printed. */
export interface LogFile {
  path: string;
  fd: number;
  ino: number;
  pos: number;
}

/** Opens a log file for reading, or null if there is none; refuses anything but a regular file. */
export function openLog(path: string): LogFile | null {
  let fd: number;
  try {
    fd = openSync(path, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ELOOP") throw new RefusedFile(`refusing to open symlink at ${path}`);
    throw e;
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new RefusedFile(`refusing to read ${path}: not a regular file`);
  }
  return { path, fd, ino: st.ino, pos: 0 };
}

/** The offset where the last n lines of the first `size` bytes begin, as
 * tail counts them (a last line without a newline counts). Reads backwards
 * one chunk at a time, each byte looked at once. */
export function lastLinesStart(fd: number, size: number, n: number): number {
  if (n <= 0) return size;
  const buf = Buffer.alloc(CHUNK);
  let end = size;
  // A newline that ends the file ends the last line; it does not start one.
  let skipFinal = true;
  let seen = 0;
  while (end > 0) {
    const start = Math.max(0, end - CHUNK);
    const got = readSync(fd, buf, 0, end - start, start);
    if (got <= 0) return start; // shrank under us: print from here
    for (let i = got - 1; i >= 0; i--) {
      if (buf[i] !== 0x0a) {
        skipFinal = false;
        continue;
      }
      if (skipFinal) {
        skipFinal = false;
        continue;
      }
      if (++seen === n) return start + i + 1;
    }
    end = start;
  }
  return 0;
}

/** Writes bytes [from, to) of the file to out, a chunk at a time; returns where it stopped (EOF may come first). */
export function copyRange(fd: number, from: number, to: number, out: (chunk: Buffer) => void): number {
  let pos = from;
  while (pos < to) {
    const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, to - pos));
    const got = readSync(fd, buf, 0, buf.length, pos);
    if (got <= 0) break;
    out(buf.subarray(0, got));
    pos += got;
  }
  return pos;
}

/** What changed at a followed path: the same file grew or shrank, or another file (rotation) took its place. */
export function followStep(log: LogFile, out: (chunk: Buffer) => void): LogFile {
  const size = fstatSync(log.fd).size;
  if (size < log.pos) log.pos = 0; // copytruncate
  log.pos = copyRange(log.fd, log.pos, size, out);
  let now;
  try {
    now = lstatSync(log.path);
  } catch {
    return log; // renamed away, the new one not there yet
  }
  if (now.ino === log.ino) return log;
  // Rotated: what the old file got after our last read is printed above;
  // the new one is opened as safely as the first.
  const next = openLog(log.path);
  if (!next) return log;
  closeSync(log.fd);
  return next;
}
