// `bpm logs`: the tail of a process's log files, as `tail` prints it, with
// -f following across rotation by rename and by copytruncate. The files are
// the job's: src/runtime/tail.ts reads them without trusting them.
import { closeSync, fstatSync } from "node:fs";
import { boshRoot, jobPaths } from "../../bosh/paths.ts";
import { copyRange, followStep, lastLinesStart, openLog, type LogFile } from "../../runtime/tail.ts";
import { command, CommandError, jobArgs, requireJob } from "../command.ts";

const POLL_MS = 200;

function print(chunk: Buffer): void {
  process.stdout.write(chunk);
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
      let header = headers && last !== log.path;
      logs[i] = followStep(log, (chunk) => {
        if (header) process.stdout.write(`\n==> ${log.path} <==\n`);
        header = false;
        last = log.path;
        print(chunk);
      });
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
      logs.forEach((log, i) => {
        if (headers) process.stdout.write(`${i > 0 ? "\n" : ""}==> ${log.path} <==\n`);
        // What is appended after this size is left to follow: none lost, none twice.
        const size = fstatSync(log.fd).size;
        log.pos = copyRange(log.fd, lastLinesStart(log.fd, size, n), size, print);
      });
      if (args.follow) await follow(logs, headers);
    } finally {
      for (const log of logs) closeSync(log.fd);
    }
  },
});
