// bpm.log: one JSON event per line, the shape operators already grep for.
import { closeSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { ensureDir, openAppend, type Owner } from "./files.ts";

export type Level = "debug" | "info" | "error";

export class BpmLog {
  private readonly path: string;
  private readonly owner: Owner;
  private readonly base: Record<string, unknown>;
  private dirReady = false;
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
      if (!this.dirReady) ensureDir(dirname(this.path), 0o750, this.owner);
      this.dirReady = true;
      const fd = openAppend(this.path, 0o600, this.owner);
      try {
        writeSync(fd, line + "\n");
      } finally {
        closeSync(fd);
      }
    } catch {
      // The log is for operators; failing to write it must not fail the command.
    }
  }
  info(message: string, data?: Record<string, unknown>) {
    this.write("info", message, data);
  }
  error(message: string, data?: Record<string, unknown>) {
    this.write("error", message, data);
  }
}
