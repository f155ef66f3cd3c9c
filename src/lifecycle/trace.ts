// `bpm trace`: strace on the job's main process, attached to a running one,
// or (startup tracing) attached before the job's first instruction while it
// is started in the foreground like `bpm run`.
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { constants as osConstants } from "node:os";
import { exitStatus } from "../runtime/launch.ts";
import { startTime } from "../runtime/procs.ts";
import { readState, statusOf } from "../runtime/state.ts";
import { UserError, type JobContext } from "./job.ts";

export const STRACE_ARGS = ["-s", "100", "-f", "-y", "-yy"];
const ATTACH_TIMEOUT_MS = 10_000;

/** strace from PATH, or a clear error saying how to get it. */
export function findStrace(path = process.env.PATH ?? "/usr/bin:/bin"): string {
  for (const dir of path.split(":")) {
    const candidate = join(dir || ".", "strace");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  throw new UserError("strace is not installed (or not in PATH): install it with `apt-get install strace`");
}

/** The init's oldest child: the job's main process (host pid), or null. */
export function mainProcess(initPid: number): number | null {
  let best: { pid: number; start: number } | null = null;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid !== initPid) continue;
    const start = startTime(Number(name)) ?? Infinity;
    if (!best || start < best.start) best = { pid: Number(name), start };
  }
  return best?.pid ?? null;
}

const tracerOf = (pid: number) => {
  try {
    return Number(/^TracerPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return -1;
  }
};

// The job waits for bpm's go-ahead in read(4, ...): attach there, so the
// trace starts with the job's own first instructions, not bpm's set-up.
const READ_NR: Record<string, number> = { x64: 0, arm64: 63 };
const waitingForGo = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/syscall`, "utf8").startsWith(`${READ_NR[process.arch]} 0x4 `) ? true : null;
  } catch {
    return null;
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until check() gives a value, the deadline passes (null), or stop() says give up. */
async function waitFor<T>(check: () => T | null, stop: () => boolean = () => false, ms = ATTACH_TIMEOUT_MS): Promise<T | null> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !stop()) {
    const v = check();
    if (v !== null) return v;
    await sleep(5);
  }
  return null;
}

export interface Tracer {
  child: ChildProcess;
  exit: Promise<number>;
}

/** Starts strace on pid and resolves once it is attached (the kernel says so). */
export async function attachStrace(strace: string, pid: number, output: string | undefined, detached: boolean): Promise<Tracer> {
  const child = spawn(strace, [...STRACE_ARGS, ...(output ? ["-o", output] : []), "-p", String(pid)], { stdio: ["ignore", "inherit", "inherit"], detached });
  let exited = false;
  const exit = exitStatus(child).then((s) => ((exited = true), s));
  const spawned = await new Promise<Error | null>((r) => (child.once("spawn", () => r(null)), child.once("error", r)));
  if (spawned) throw new UserError(`failed to run ${strace}: ${spawned.message}`);
  const attached = await waitFor(() => (tracerOf(pid) === child.pid ? true : null), () => exited);
  if (!attached) {
    child.kill("SIGKILL");
    throw new UserError(`strace could not attach to process ${pid} (exit status ${await exit})`);
  }
  return { child, exit };
}

/** Attaches to the running process's main process; returns strace's exit status (0 after Ctrl-C). */
export async function traceRunning(ctx: JobContext, output: string | undefined): Promise<number> {
  const strace = findStrace();
  const state = readState(ctx.paths);
  if (statusOf(state) !== "running") throw new UserError("process is not running or could not be found");
  const pid = mainProcess(state!.pid) ?? state!.pid;
  let interrupted = false;
  let tracer: Tracer | undefined;
  // A terminal's Ctrl-C reaches strace itself; a SIGINT sent to bpm alone (a
  // supervisor, `kill -INT`) is passed on. Either way strace detaches and exits.
  const onInt = () => {
    interrupted = true;
    tracer?.child.kill("SIGINT");
  };
  const onTerm = () => tracer?.child.kill("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  try {
    tracer = await attachStrace(strace, pid, output, false);
    if (interrupted) tracer.child.kill("SIGINT");
    const status = await tracer.exit;
    // strace answers Ctrl-C by detaching and exiting 130, which may be seen
    // before bpm's own SIGINT handler runs.
    return interrupted || status === 128 + osConstants.signals.SIGINT ? 0 : status;
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
}

/** For `run`'s beforeExec: finds the waiting job and attaches strace to it
 * (in a session of its own, so that Ctrl-C reaches the job, not the tracer). */
export function startupTracer(output: string | undefined) {
  const strace = findStrace();
  let tracer: Tracer | undefined;
  return {
    beforeExec: async (initPid: number) => {
      const job = await waitFor(() => mainProcess(initPid), () => startTime(initPid) === null);
      if (job === null) throw new UserError("the job's process did not appear");
      await waitFor(() => waitingForGo(job), () => startTime(job) === null, 2_000);
      tracer = await attachStrace(strace, job, output, true);
    },
    /** strace's exit status once the traced processes are gone, or null if it never ran. */
    done: async () => (tracer ? await tracer.exit : null),
  };
}
