// `bpm logs`: the tail of a process's log files, as `tail` prints it, with
// -f following across rotation by rename and by copytruncate. The files are
// the job's: src/runtime/tail.ts reads them without trusting them.
import { once } from "node:events";
import { closeSync, fstatSync } from "node:fs";
import { setImmediate } from "node:timers/promises";
import { boshRoot, jobPaths } from "../../bosh/paths.ts";
import { chunks, CUT_MARKER, lastLinesStart, openLog, reopenIfRotated, type LogFile } from "../../runtime/tail.ts";
import { command, CommandError, jobArgs, requireJob } from "../command.ts";

const POLL_MS = 200;

/** Writes to stdout and waits while the reader is behind (memory stays one
 * chunk, however much is printed), then lets a signal in. */
async function print(chunk: Buffer | string): Promise<void> {
  if (!process.stdout.write(chunk)) await once(process.stdout, "drain");
  await setImmediate();
}

async function follow(logs: LogFile[], headers: boolean): Promise<void> {
  let last = logs.length > 1 ? logs[logs.length - 1]!.path : undefined;
  let stopped = false;
  const stop = new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  }).then(() => (stopped = true));
  while (!stopped) {
    for (let i = 0; i < logs.length; i++) {
      const log = logs[i]!;
      const size = fstatSync(log.fd).size;
      if (size < log.pos) log.pos = 0; // copytruncate
      for (const chunk of chunks(log.fd, log.pos, size)) {
        if (headers && last !== log.path) await print(`\n==> ${log.path} <==\n`);
        last = log.path;
        await print(chunk);
        log.pos += chunk.length;
        if (stopped) return;
      }
      logs[i] = reopenIfRotated(log);
    }
    await Promise.race([stop, new Promise((r) => setTimeout(r, POLL_MS))]);
  }
}

export default command({
  meta: { name: "logs", description: "Print the last lines of a process's logs" },
  args: {
    ...jobArgs,
    all: { type: "boolean", alias: "a", description: "both stdout and stderr logs" },
    err: { type: "boolean", alias: "e", description: "the stderr log only" },
    follow: { type: "boolean", alias: "f", description: "keep printing as the logs grow (Ctrl-C to stop)" },
    lines: { type: "string", alias: "n", valueHint: "N", description: "how many lines (default 25)" },
    quiet: { type: "boolean", alias: "q", description: "no ==> file <== headers" },
  },
  async run({ args }) {
    const job = requireJob(args);
    const paths = jobPaths(boshRoot(), job, args.process ?? job);
    const n = args.lines === undefined ? 25 : Number(args.lines);
    if (!Number.isInteger(n) || n < 0) throw new CommandError(`invalid number of lines: "${args.lines}"`);
    // `bpm logs | head`: a closed pipe ends the command quietly.
    process.stdout.on("error", () => process.exit(0));
    const files = args.all ? [paths.stdoutLog, paths.stderrLog] : [args.err ? paths.stderrLog : paths.stdoutLog];
    const logs: LogFile[] = [];
    try {
      for (const f of files) {
        const log = openLog(f);
        if (log) logs.push(log);
      }
      if (logs.length === 0) throw new CommandError("logs not found");
      const headers = logs.length > 1 && !args.quiet;
      for (const [i, log] of logs.entries()) {
        if (headers) await print(`${i > 0 ? "\n" : ""}==> ${log.path} <==\n`);
        // What is appended after this size is left to follow: none lost, none twice.
        const size = fstatSync(log.fd).size;
        const { start, cut } = lastLinesStart(log.fd, size, n);
        if (cut) await print(CUT_MARKER);
        log.pos = start;
        for (const chunk of chunks(log.fd, start, size)) {
          await print(chunk);
          log.pos += chunk.length;
        }
      }
      if (args.follow) await follow(logs, headers);
    } finally {
      for (const log of logs) closeSync(log.fd);
    }
  },
});
