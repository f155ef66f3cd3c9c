// bpm.log: one JSON event per line, the shape operators already grep for.
// Opened once, on the first event, without following symlinks: a symlink a
// job planted there fails the command loudly, as in the original.
import { writeSync } from "node:fs";
import { dirname } from "node:path";
import { ensureDir, openAppend, RefusedFile, type Owner } from "./files.ts";

export type Level = "debug" | "info" | "error";

export class BpmLog {
  private readonly path: string;
  private readonly owner: Owner;
  private readonly base: Record<string, unknown>;
  private fd: number | null = null;
  constructor(path: string, owner: Owner, base: Record<string, unknown>) {
    this.path = path;
    this.owner = owner;
    this.base = base;
  }

  write(level: Level, message: string, data: Record<string, unknown> = {}): void {
    const line = JSON.stringify({
      timestamp: new Date().toISOString(),
      level,
      source: "bpm",
      message,
      data: { ...this.base, ...data },
    });
    try {
      if (this.fd === null) {
        ensureDir(dirname(this.path), 0o750, this.owner);
        this.fd = openAppend(this.path, 0o600, this.owner);
      }
      writeSync(this.fd, line + "\n");
    } catch (e) {
      if (e instanceof RefusedFile) throw e;
      // Otherwise (a full disk, say) the log must not fail the command.
    }
  }
  info(message: string, data?: Record<string, unknown>) {
    this.write("info", message, data);
  }
  error(message: string, data?: Record<string, unknown>) {
    this.write("error", message, data);
  }
}
