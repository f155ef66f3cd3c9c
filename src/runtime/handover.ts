// Handing a command over to the helper: the plan is written to a private
// file in ROOT/sys/run/bpm (a tmpfs on BOSH VMs: a full disk does not stop
// a stop), and this process becomes the helper
// (process.execve): no child process, no second Node, nothing left to wait
// for. The helper reads and removes the file, does the work, logs, and exits
// with the command's status.
import { closeSync, constants as C, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { describeError } from "./files.ts";

let handedOver = 0;

/** A plan file of this process's own (its pid, and a count for callers that hand over more than once). */
function writePlan(dir: string, plan: Buffer): string {
  const file = join(dir, `plan-${process.pid}-${handedOver++}`);
  try {
    rmSync(file, { force: true }); // one left by a bpm that died before its helper read it
    const fd = openSync(file, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, plan);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    rmSync(file, { force: true });
    throw new Error(`writing ${file}: ${describeError(e)}`);
  }
  return file;
}

/**
 * Becomes the helper running `verb PLAN-FILE`. `wait` instead runs it as a
 * child and resolves with its exit status (for callers that must go on, such
 * as tests that cycle start and stop in one process).
 */
export async function handOver(helper: string, dir: string, verb: "start" | "stop", plan: Buffer, how: "replace" | "wait" = "replace"): Promise<number> {
  const file = writePlan(dir, plan);
  const argv = ["bpm-init", verb, file];
  try {
    // Nothing of ours is buffered: bpm writes to its stdio synchronously.
    if (how === "replace") process.execve!(helper, argv, {});
    const child = process.getBuiltinModule("node:child_process").spawn(helper, argv.slice(1), { argv0: argv[0], stdio: "inherit" });
    return await new Promise((resolve, reject) => {
      child.on("error", reject);
      child.on("exit", (code, signal) => resolve(code ?? 128 + process.getBuiltinModule("node:os").constants.signals[signal!]));
    });
  } finally {
    rmSync(file, { force: true });
  }
}
