// bpm.log: one JSON event per line, the shape operators already grep for.
// The CLI only formats its events and keeps them: start and stop hand them
// to the helper in their plan (the helper writes them first, then its own),
// other commands have them written where they stand (flush). Opened without
// following symlinks: a symlink a job planted there fails the command
// loudly, as in the original, unless the log is only wanted (stop: a job
// must not be able to make its own stop fail); then the refusal is said once
// on stderr and nothing is written.
import { closeSync, writeSync } from "node:fs";
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
  /** Lines formatted and not yet handed on, in order. */
  private pending: string[] = [];
  /** Set once opening failed: nothing more is kept, tried or said. */
  private refused = false;
  constructor(path: string, owner: Owner, base: Record<string, unknown>, need: LogNeed = "required") {
    this.path = path;
    this.owner = owner;
    this.base = base;
    this.need = need;
  }

  write(level: Level, message: string, data: Record<string, unknown> = {}): void {
    if (!this.refused) this.pending.push(eventLine(new Date().toISOString(), level, message, { ...this.base, ...data }));
  }
  info(message: string, data?: Record<string, unknown>) {
    this.write("info", message, data);
  }
  error(message: string, data?: Record<string, unknown>) {
    this.write("error", message, data);
  }

  /** The lines waiting, handed over (to a plan): they are no longer this log's to write. */
  take(): string[] {
    const lines = this.pending;
    this.pending = [];
    return lines;
  }

  /** Writes the lines waiting to bpm.log now. */
  flush(): void {
    const lines = this.take();
    if (lines.length === 0) return;
    let fd: number;
    try {
      ensureDir(dirname(this.path), 0o750, this.owner);
      fd = openAppend(this.path, 0o600, this.owner);
    } catch (e) {
      this.refused = true;
      if (e instanceof RefusedFile && this.need === "required") throw e;
      if (this.need === "wanted") process.stderr.write(`bpm.log not written: ${e instanceof RefusedFile ? e.message : `open ${this.path}: ${describeError(e)}`}\n`);
      return;
    }
    try {
      writeSync(fd, lines.join(""));
    } catch {
      // A full disk, say: the log must not fail the command.
    } finally {
      closeSync(fd);
    }
  }
}
