// bpm.log: one JSON event per line, the shape operators already grep for.
// The CLI never opens it (nor any file a job can write): it formats its
// events and keeps them here until the helper, the one opener
// (helper-c/bpmlog.c), writes them: start and stop carry them in the plan
// they hand over, other commands have the helper's log verb write them
// (src/lifecycle/job.ts).
import type { LogNeed } from "../plan/book.ts";
import { eventLine } from "../plan/wire.ts";

export type Level = "debug" | "info" | "error";

export class BpmLog {
  private readonly base: Record<string, unknown>;
  /** Whether the command fails without bpm.log (the helper's log verb is told). */
  readonly need: LogNeed;
  /** Lines formatted and not yet handed over, in order. */
  private pending: string[] = [];
  /** Set once the helper could not use bpm.log: nothing more is kept, tried or said. */
  private refused = false;
  constructor(base: Record<string, unknown>, need: LogNeed) {
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

  /** The helper could not use bpm.log (and said so, or the command fails with why). */
  refuse(): void {
    this.refused = true;
    this.pending = [];
  }
}
