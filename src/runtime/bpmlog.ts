// bpm.log: one JSON event per line, the shape operators already grep for.
// Opened once, on the first event, without following symlinks: a symlink a
// job planted there fails the command loudly, as in the original, unless
// the log is only wanted (stop: a job must not be able to make its own
// stop fail); then the refusal is said once on stderr and nothing is written.
import { writeSync } from "node:fs";
import { dirname } from "node:path";
import { eventLine } from "../plan/wire.ts";
import { describeError, ensureDir, openAppend, RefusedFile, type Owner } from "./files.ts";

export type Level = "debug" | "info" | "error";
/** required: a bpm.log bpm may not use fails the command; wanted: it is skipped, with a word on stderr. */
export type LogNeed = "required" | "wanted";

export class BpmLog {
  private readonly path: string;
  private readonly owner: Owner;
  private readonly base: Record<string, unknown>;
  private readonly need: LogNeed;
  private fd: number | null = null;
  /** Set once opening failed: nothing more is tried (or said). */
  private refused = false;
  constructor(path: string, owner: Owner, base: Record<string, unknown>, need: LogNeed = "required") {
    this.path = path;
    this.owner = owner;
    this.base = base;
    this.need = need;
  }

  /** Whether events can still be written here (false once opening it failed). */
  get usable(): boolean {
    return !this.refused;
  }

  write(level: Level, message: string, data: Record<string, unknown> = {}): void {
    const line = eventLine(new Date().toISOString(), level, message, { ...this.base, ...data });
    if (this.refused) return;
    if (this.fd === null) {
      try {
        ensureDir(dirname(this.path), 0o750, this.owner);
        this.fd = openAppend(this.path, 0o600, this.owner);
      } catch (e) {
        this.refused = true;
        if (e instanceof RefusedFile && this.need === "required") throw e;
        if (this.need === "wanted") process.stderr.write(`bpm.log not written: ${e instanceof RefusedFile ? e.message : `open ${this.path}: ${describeError(e)}`}\n`);
        return;
      }
    }
    try {
      writeSync(this.fd, line);
    } catch {
      // A full disk, say: the log must not fail the command.
    }
  }
  info(message: string, data?: Record<string, unknown>) {
    this.write("info", message, data);
  }
  error(message: string, data?: Record<string, unknown>) {
    this.write("error", message, data);
  }
}
