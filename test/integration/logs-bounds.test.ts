// `bpm logs` against a job that makes its logs sparse files of many GiB:
// what is printed, and the time and memory it takes, stay bounded by the
// lines printed and one line's window, however big the holes.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BPM, bashJob, eventually, skipUnlessRoot, useRoot } from "./harness.ts";

const GiB = 2 ** 30;
/** The stdout log's size: 32 GiB unless BPM_SPARSE_LOG_GIB says otherwise (a filesystem without sparse files). */
const OUT_SIZE = Number(process.env.BPM_SPARSE_LOG_GIB || 32) * GiB;
const ERR_SIZE = 3 * GiB;
/** Generous: the scan it replaced read the whole size, about 17 s a GiB here. */
const BOUND_MS = 30_000;

interface Result {
  code: number | null;
  signal: string | null;
  /** What it printed, up to 4 KiB (the rest only counted). */
  head: string;
  bytes: number;
  /** Peak resident memory of the bpm process, in KiB (from /usr/bin/time). */
  peakKiB: number;
}

/** Runs bpm logs under /usr/bin/time, both killed after BOUND_MS (they are
 * a process group of their own); stdout is counted, not kept. */
async function logs(rootPath: string, ...args: string[]): Promise<Result> {
  const rss = join(rootPath, `rss-${Date.now()}`);
  const child = spawn("/usr/bin/time", ["-f", "%M", "-o", rss, BPM, "logs", ...args], {
    env: { ...process.env, BPM_BOSH_ROOT: rootPath },
    stdio: ["ignore", "pipe", "inherit"],
    detached: true,
  });
  let head = Buffer.alloc(0);
  let bytes = 0;
  child.stdout.on("data", (d: Buffer) => {
    bytes += d.length;
    if (head.length < 4096) head = Buffer.concat([head, d]).subarray(0, 4096);
  });
  const killer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), BOUND_MS);
  const [code, signal] = await new Promise<[number | null, string | null]>((res) => child.on("close", (c, s) => res([c, s])));
  clearTimeout(killer);
  assert.equal(signal, null, `bpm logs ${args.join(" ")} did not answer within ${BOUND_MS / 1000} s (printed ${bytes} bytes)`);
  const peakKiB = Number(readFileSync(rss, "utf8").trim().split("\n").pop());
  return { code, signal, head: head.toString("latin1"), bytes, peakKiB };
}

/** Well above what bpm holds to print a screenful (a Node runtime, about 50 MiB), far below any GiB. */
const PEAK_KIB = 200 * 1024;

describe("bpm logs on sparse logs of many GiB", { skip: skipUnlessRoot }, () => {
  const root = useRoot("logs-bounds");

  it("prints the end of each over-long line after the cut marker, in bounded time and memory", async () => {
    const r = root();
    // stdout: a hole of OUT_SIZE and then "last words", no newline anywhere.
    // stderr: two lines, a 3 GiB hole, a final line.
    r.job("sparse", bashJob("sparse", `truncate -s ${OUT_SIZE} /dev/stdout && printf 'last words' &&
      printf 'first\\nsecond\\n' >&2 && truncate -s ${ERR_SIZE} /dev/stderr && printf 'final line\\n' >&2 && exec sleep 1000`));
    assert.equal(r.bpm("start", "sparse").status, 0);
    const out = join(r.path, "sys/log/sparse/sparse.stdout.log");
    const err = join(r.path, "sys/log/sparse/sparse.stderr.log");
    const size = (f: string) => statSync(f, { throwIfNoEntry: false })?.size ?? 0;
    await eventually(() => size(out) === OUT_SIZE + 10 && size(err) === ERR_SIZE + 11, () => `sizes ${size(out)} ${size(err)}`);
    // The holes are holes: the job wrote no GiBs to disk.
    assert.ok(statSync(out).blocks * 512 < GiB, `${statSync(out).blocks} blocks`);

    const one = await logs(r.path, "sparse", "-n", "1");
    assert.equal(one.code, 0);
    assert.equal(one.head, "[line cut] last words");
    assert.equal(one.bytes, one.head.length);
    assert.ok(one.peakKiB < PEAK_KIB, `peak RSS ${one.peakKiB} KiB`);

    // Data, then a 3 GiB hole, then a final line: the final line, and
    // nothing before the line that was cut.
    const err25 = await logs(r.path, "sparse", "-e");
    assert.equal(err25.code, 0);
    assert.equal(err25.head, "[line cut] final line\n");
    assert.ok(err25.peakKiB < PEAK_KIB, `peak RSS ${err25.peakKiB} KiB`);

    const both = await logs(r.path, "sparse", "-a", "-n", "3");
    assert.equal(both.code, 0);
    assert.equal(both.head, `==> ${out} <==\n[line cut] last words\n==> ${err} <==\n[line cut] final line\n`);
    assert.equal(r.bpm("stop", "sparse").status, 0);
  });

  it("follows a log that grows by a hole of many GiB and still stops at once on Ctrl-C", async (t) => {
    const r = root();
    const dir = join(r.path, "sys/log/grows");
    mkdirSync(dir, { recursive: true });
    const log = join(dir, "grows.stdout.log");
    writeFileSync(log, "start\n");
    const f = spawn(BPM, ["logs", "grows", "-f"], { env: { ...process.env, BPM_BOSH_ROOT: r.path }, stdio: ["ignore", "pipe", "inherit"] });
    t.after(() => f.kill("SIGKILL"));
    let head = "";
    let bytes = 0;
    f.stdout.on("data", (d: Buffer) => {
      bytes += d.length;
      if (head.length < 6) head += d.subarray(0, 6).toString();
    });
    const closed = new Promise<[number | null, string | null]>((res) => f.on("close", (c, s) => res([c, s])));
    await eventually(() => head.startsWith("start\n"), () => head);
    truncateSync(log, OUT_SIZE);
    // tail -f prints what the hole reads as; bpm must hold no more of it
    // than the reader is behind by, and not stop listening while it prints.
    await eventually(() => bytes > 64 * 2 ** 20, () => `${bytes} bytes`, 60_000);
    const peakKiB = Number(/VmHWM:\s*(\d+)/.exec(readFileSync(`/proc/${f.pid}/status`, "utf8"))![1]);
    assert.ok(peakKiB < PEAK_KIB, `peak RSS ${peakKiB} KiB`);
    f.kill("SIGINT");
    const killer = setTimeout(() => f.kill("SIGKILL"), BOUND_MS);
    const [code, signal] = await closed;
    clearTimeout(killer);
    assert.equal(signal, null, `Ctrl-C did not end bpm logs -f within ${BOUND_MS / 1000} s (it printed ${bytes} bytes)`);
    assert.equal(code, 0);
    assert.ok(bytes < OUT_SIZE, "it printed the whole hole before it stopped");
  });
});
