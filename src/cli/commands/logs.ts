// `bpm logs`: the tail of a process's log files, as `tail` prints it, with
// -f following across rotation by rename and by copytruncate.
import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { boshRoot, jobPaths } from "../../bosh/paths.ts";
import { command, CommandError, jobArgs, requireJob } from "../command.ts";

/** Where following a file picks up: the file (by inode) and the offset up
 * to which its tail was printed. */
interface Position {
  f: string;
  ino: number;
  pos: number;
}

/** The last n lines of a file, as tail prints them (read backwards, so big
 * logs stay cheap), and the position they end at: lines appended after the
 * read are left to `follow`, so none is lost or printed twice. */
function lastLines(file: string, n: number): { text: string; at: Position } {
  const fd = openSync(file, "r");
  try {
    const st = fstatSync(fd);
    const at = { f: file, ino: st.ino, pos: st.size };
    if (n <= 0) return { text: "", at };
    let pos = st.size;
    let data = Buffer.alloc(0);
    while (pos > 0) {
      const len = Math.min(64 * 1024, pos);
      pos -= len;
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, pos);
      data = Buffer.concat([buf, data]);
      let count = 0;
      for (let i = 0; i < data.length - 1; i++) if (data[i] === 0x0a) count++;
      if (count >= n) break;
    }
    const text = data.toString();
    const ends = text.endsWith("\n");
    const lines = (ends ? text.slice(0, -1) : text).split("\n");
    return { text: text === "" ? "" : lines.slice(-n).join("\n") + (ends ? "\n" : ""), at };
  } finally {
    closeSync(fd);
  }
}

async function follow(state: Position[], headers: boolean): Promise<void> {
  let last = state.length > 1 ? state[state.length - 1]!.f : undefined;
  const stop = new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  let stopped = false;
  stop.then(() => (stopped = true));
  while (!stopped) {
    for (const s of state) {
      let st;
      try {
        st = statSync(s.f);
      } catch {
        continue;
      }
      if (st.ino !== s.ino) { s.ino = st.ino; s.pos = 0; }  // renamed away: a new file
      if (st.size < s.pos) s.pos = 0;                        // copytruncate
      if (st.size === s.pos) continue;
      const fd = openSync(s.f, "r");
      const buf = Buffer.alloc(st.size - s.pos);
      const n = readSync(fd, buf, 0, buf.length, s.pos);
      closeSync(fd);
      s.pos += n;
      if (headers && last !== s.f) process.stdout.write(`\n==> ${s.f} <==\n`);
      last = s.f;
      process.stdout.write(buf.subarray(0, n));
    }
    await Promise.race([stop, new Promise((r) => setTimeout(r, 200))]);
  }
}

export default command({
  meta: { name: "logs", description: "Print the last lines of a process's logs" },
  args: {
    ...jobArgs,
    all: { type: "boolean", alias: "a", description: "both stdout and stderr logs" },
    err: { type: "boolean", alias: "e", description: "the stderr log only" },
    follow: { type: "boolean", alias: "f", description: "keep printing as the logs grow (Ctrl-C to stop)" },
    lines: { type: "string", alias: "n", description: "how many lines (default 25)" },
    quiet: { type: "boolean", alias: "q", description: "no ==> file <== headers" },
  },
  async run({ args }) {
    const job = requireJob(args);
    const paths = jobPaths(boshRoot(), job, args.process ?? job);
    const n = args.lines === undefined ? 25 : Number(args.lines);
    if (!Number.isInteger(n) || n < 0) throw new CommandError(`invalid number of lines: "${args.lines}"`);
    const files = args.all ? [paths.stdoutLog, paths.stderrLog] : [args.err ? paths.stderrLog : paths.stdoutLog];
    if (!files.some((f) => existsSync(f))) throw new CommandError("logs not found");
    const present = files.filter((f) => existsSync(f));
    const headers = present.length > 1 && !args.quiet;
    const positions = present.map((f, i) => {
      const { text, at } = lastLines(f, n);
      if (headers) process.stdout.write(`${i > 0 ? "\n" : ""}==> ${f} <==\n`);
      process.stdout.write(text);
      return at;
    });
    if (args.follow) await follow(positions, headers);
  },
});
