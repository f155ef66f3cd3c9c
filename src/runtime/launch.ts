// Spawning the helper in the foreground (bpm run, trace --startup, shell)
// with a plan on fd 3 and reading its report there: "running PID" (nothing
// done), or "pid PID START" once the init exists, then "ok" once the job has
// exec'd or "error: ...", and at the end "exit STATUS OOM-KILLS".
import { spawn, type ChildProcess } from "node:child_process";
import { constants as osConstants } from "node:os";
import type { Readable, Writable } from "node:stream";

export type Stdio = number | "ignore" | "inherit" | "pipe";

export interface Launched {
  child: ChildProcess;
  /** The process already ran: the helper did nothing. */
  alreadyRunning: boolean;
  /** The container's init (host pid); 0 if there is none. */
  pid: number;
  /** Why the job did not start, as the helper said it; undefined when it runs. */
  failure?: string;
  /** Resolves with the helper's exit status (in the foreground, the job's) and the OOM kills it saw. */
  exit: Promise<{ status: number; oomKills: number | null }>;
}

export interface LaunchOptions {
  verb?: "launch" | "shell";
  stdio: [Stdio, Stdio, Stdio];
  /** Startup tracing: called once the init exists while the job waits before
   * exec; when it resolves, the job is let go. */
  beforeExec?: (initPid: number) => Promise<void>;
  /** Called right after the spawn (run passes bpm's signals on from then). */
  onSpawn?: (child: ChildProcess) => void;
}

/** The exit status of a child as a shell would report it. */
export function exitStatus(child: ChildProcess): Promise<number> {
  return new Promise((res) => child.on("exit", (code, sig) => res(code ?? 128 + (osConstants.signals[sig!] ?? 0))));
}

/** Spawns the helper with the plan (encoded for its verb: encodePlan, encodeEnterPlan) and resolves once it has said whether the job runs. */
export function launch(helper: string, plan: Buffer, opts: LaunchOptions): Promise<Launched> {
  const pause = opts.beforeExec !== undefined;
  // fd 3: plan in, report out; fd 4: the go-ahead for startup tracing.
  const stdio = [...opts.stdio, "pipe" as const, ...(pause ? ["pipe" as const] : [])];
  // launch: a session of its own, so a Ctrl-C reaches bpm alone, which
  // forwards it once. shell: stays in the terminal's process group, where
  // window-size changes are signalled.
  const verb = opts.verb ?? "launch";
  const child = spawn(helper, [verb], { argv0: verb === "shell" ? "bpm-shell" : "bpm-init", stdio, detached: verb === "launch" });
  const exited = exitStatus(child);
  opts.onSpawn?.(child);
  const channel = child.stdio[3] as Readable & Writable;
  channel.on("error", () => {});
  let reply = "";
  let pid = 0;
  const line = (re: RegExp) => re.exec(reply);
  const ended = new Promise<void>((res) => channel.on("close", res));
  const exit = Promise.all([exited, ended]).then(([status]) => {
    const m = line(/^exit (\d+) (-?\d+)$/m);
    return { status: m ? Number(m[1]) : status, oomKills: m && Number(m[2]) >= 0 ? Number(m[2]) : null };
  });
  const said = new Promise<Launched>((resolve) => {
    const settle = () => {
      const running = line(/^running (\d+)$/m);
      const error = line(/^error: (.*)$/m);
      if (running) resolve({ child, alreadyRunning: true, pid: Number(running[1]), exit });
      else if (error) resolve({ child, alreadyRunning: false, pid, failure: error[1], exit });
      else if (line(/^ok$/m)) resolve({ child, alreadyRunning: false, pid, exit });
    };
    channel.on("data", (d: Buffer) => {
      reply += d.toString();
      const m = line(/^pid (\d+) \d+$/m);
      if (m && !pid) {
        pid = Number(m[1]);
        if (pause) {
          const go = child.stdio[4] as Writable;
          go.on("error", () => {});
          opts.beforeExec!(pid).then(
            () => go.end("g"),
            (e: Error) => {
              reply += `error: ${e.message}\n`;
              child.kill("SIGTERM");
              settle();
            },
          );
        }
      }
      settle();
    });
    void ended.then(() => {
      settle();
      resolve({ child, alreadyRunning: false, pid, failure: "the helper ended without a word", exit });
    });
  });
  channel.write(plan);
  return said;
}
