// Handing a command over to the helper: this process becomes the helper
// (process.execve), with the plan in its environment (BPM_PLAN, base64):
// no child process, no second Node, and no file anywhere, so nothing is
// left behind however bpm is killed and a full disk or tmpfs cannot stop
// a stop. The environment of a root process is root's alone to read
// (/proc/PID/environ), and the helper wipes it once read. A plan too large
// for the environment goes to a child helper on a pipe (descriptor 3),
// and this process exits with its status.
import type { ChildProcess } from "node:child_process";

/** The kernel always takes 128 KiB of arguments and environment (ARG_MAX's floor): stay under it. */
const MAX_ENV_PLAN = 120 * 1024;

/**
 * Becomes the helper running `verb`. `wait` instead runs it as a child and
 * resolves with its exit status (for callers that must go on, such as tests
 * that cycle start and stop in one process).
 */
export async function handOver(helper: string, verb: "start" | "stop", plan: Buffer, how: "replace" | "wait" = "replace"): Promise<number> {
  const encoded = plan.toString("base64");
  // Nothing of ours is buffered: bpm writes to its stdio synchronously.
  if (how === "replace" && encoded.length <= MAX_ENV_PLAN) process.execve!(helper, ["bpm-init", verb, "env"], { BPM_PLAN: encoded });
  const child: ChildProcess = process.getBuiltinModule("node:child_process").spawn(helper, [verb, "fd"], {
    argv0: "bpm-init",
    stdio: ["inherit", "inherit", "inherit", "pipe"],
  });
  const sent = child.stdio[3] as NodeJS.WritableStream;
  sent.on("error", () => {}); // a helper that died early says why itself
  sent.end(plan);
  const status = await new Promise<number>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? 128 + process.getBuiltinModule("node:os").constants.signals[signal!]));
  });
  // As if this process had become the helper: its status, nothing of ours after it.
  if (how === "replace") process.exit(status);
  return status;
}
