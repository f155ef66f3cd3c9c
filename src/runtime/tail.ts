// Reading the logs a job writes to, as root: opened without following a
// symlink and without blocking (a FIFO there cannot wedge bpm), regular files
// only, read in fixed-size chunks so that time and memory stay bounded by
// what is printed, whatever the job put in the file. A line is looked for
// at most MAX_LINE bytes back: a job can make its log a sparse file of any
// size without a newline (Node cannot seek past the holes), and a longer
// line is printed as its end, after CUT_MARKER.
import { closeSync, constants as C, fstatSync, lstatSync, openSync, readSync } from "node:fs";

/** Looking back for newlines: one page-cache-friendly window at a time. */
const CHUNK = 64 * 1024;
/** Copying out: bigger pieces, fewer writes. */
const COPY_CHUNK = 1024 * 1024;
/** The longest line printed whole; of a longer one, its last MAX_LINE bytes. */
export const MAX_LINE = 1024 * 1024;
/** What stands for the beginning of a line too long to print whole. */
export const CUT_MARKER = "[line cut] ";

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
    if (code === "ELOOP") throw new Error(`refusing to open symlink at ${path}`);
    throw e;
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new Error(`refusing to read ${path}: not a regular file`);
  }
  return { path, fd, ino: st.ino, pos: 0 };
}

/** Where the last n lines begin in the first `size` bytes. */
export interface TailStart {
  start: number;
  /** The first of them is longer than MAX_LINE: printed from `start`, its end, after CUT_MARKER. */
  cut: boolean;
}

/** Where the last n lines of the first `size` bytes begin, as tail counts
 * them (a last line without a newline counts), reading backwards one chunk
 * at a time. A line longer than maxLine ends the search: of it, only what
 * follows the last NUL in its last maxLine bytes is printed, as a sparse
 * file's holes read as NULs. */
export function lastLinesStart(fd: number, size: number, n: number, maxLine = MAX_LINE): TailStart {
  if (n <= 0) return { start: size, cut: false };
  const buf = Buffer.alloc(CHUNK);
  let end = size;
  // A newline that ends the file ends the last line; it does not start one.
  let skipFinal = true;
  let seen = 0;
  // The line being looked through ends at lineEnd; its last NUL so far, if any.
  let lineEnd = size;
  let lastNul = -1;
  while (end > 0) {
    const start = Math.max(0, end - CHUNK);
    const got = readSync(fd, buf, 0, end - start, start);
    if (got <= 0) return { start, cut: false }; // shrank under us: print from here
    // Down from i, the chunk is the current line's back to the newline before it (if it is in this chunk).
    let i = got - 1;
    if (skipFinal && buf[i] === 0x0a) i--;
    skipFinal = false;
    while (i >= 0) {
      const newline = buf.lastIndexOf(0x0a, i);
      if (lastNul < 0) {
        const nul = buf.subarray(newline + 1, i + 1).lastIndexOf(0);
        if (nul >= 0) lastNul = start + newline + 1 + nul;
      }
      if (lineEnd - (start + newline + 1) > maxLine) {
        const window = lineEnd - maxLine;
        return { start: lastNul >= window ? lastNul + 1 : window, cut: true };
      }
      if (newline < 0) break; // the line goes on in the chunk before
      if (++seen === n) return { start: start + newline + 1, cut: false };
      lineEnd = start + newline + 1;
      lastNul = -1;
      i = newline - 1;
    }
    end = start;
  }
  return { start: 0, cut: false };
}

/** Bytes [from, to) of the file, a chunk at a time (EOF may end them first):
 * the caller writes each out before it asks for the next. */
export function* chunks(fd: number, from: number, to: number): Generator<Buffer> {
  let pos = from;
  while (pos < to) {
    const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, to - pos));
    const got = readSync(fd, buf, 0, buf.length, pos);
    if (got <= 0) return;
    yield buf.subarray(0, got);
    pos += got;
  }
}

/** The log now at a followed path: the same one, or the file that took its place (rotation by rename). */
export function reopenIfRotated(log: LogFile): LogFile {
  let now;
  try {
    now = lstatSync(log.path);
  } catch {
    return log; // renamed away, the new one not there yet
  }
  if (now.ino === log.ino) return log;
  // Rotated: what the old file got after our last read is printed already;
  // the new one is opened as safely as the first.
  const next = openLog(log.path);
  if (!next) return log;
  closeSync(log.fd);
  return next;
}
