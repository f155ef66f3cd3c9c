// The helper is the one opener of the files a job can write (its log dir,
// bpm.log, the process's logs), seen from outside: each command runs under
// strace -f, and every open for writing and every mkdir of a path under
// ROOT/sys/log must be made by a process whose last execve was the helper
// (bpm runs it from its verified descriptor, /proc/self/fd/N), never by
// Node. start and stop execve the helper in the CLI's own pid: a pid is
// judged by what it last exec'd, and a new process by what its parent had
// when it forked it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { bashJob, BPM, skipUnlessRoot, useRoot, type Root } from "./harness.ts";

const skipStrace = existsSync("/usr/bin/strace") ? false : "needs strace";

/** A write to the filesystem under the directory watched, and what its process had last exec'd. */
interface Write {
  path: string;
  call: string;
  exe: string;
}

/** Every open for writing (O_WRONLY, O_RDWR, O_CREAT) and every mkdir under `under` in strace -f -y
 * output, each with the program its process had last exec'd. */
function writesUnder(trace: string, under: string): Write[] {
  const execs = new Map<number, { at: number; exe: string }[]>();
  const forked = new Map<number, { parent: number; at: number }>();
  const pendingExec = new Map<number, string>();
  const found: { pid: number; at: number; path: string; call: string }[] = [];
  trace.split("\n").forEach((line, at) => {
    const m = /^(\d+) +(.*)$/.exec(line);
    if (!m) return;
    const pid = Number(m[1]);
    const call = m[2]!;
    // execve("/proc/self/fd/21", [...], ...) = 0; execveat(22</path>, "", ...); either may come in two pieces.
    const exec = /^execve(?:at)?\((?:\d+<([^>]*)>, "")?(?:"([^"]*)")?/.exec(call);
    if (exec && !call.startsWith("<...")) pendingExec.set(pid, exec[1] ?? exec[2] ?? "?");
    if (/^(?:<\.\.\. )?execve(?:at)?\b/.test(call) && /\) += 0$/.test(call)) {
      execs.set(pid, [...(execs.get(pid) ?? []), { at, exe: pendingExec.get(pid)! }]);
    }
    const child = /^(?:<\.\.\. )?(?:clone3?|fork|vfork)\b.*\) += (\d+)$/.exec(call);
    if (child) forked.set(Number(child[1]), { parent: pid, at });
    // open("/abs", FLAGS...), openat(DIRFD<dir>|AT_FDCWD, "name", FLAGS...), mkdir("/abs", ...), mkdirat(DIRFD<dir>, "name", ...)
    const op = /^(open|openat|mkdir|mkdirat)\((?:(?:AT_FDCWD|\d+)(?:<([^>]*)>)?, )?"([^"]*)"(?:, ([A-Z_|]+))?/.exec(call);
    if (!op) return;
    const [, name, dir, file, flags] = op;
    const path = file!.startsWith("/") ? file! : `${dir}/${file}`;
    const writes = name!.startsWith("mkdir") || /\bO_(WRONLY|RDWR|CREAT)\b/.test(flags ?? "");
    if (writes && (path === under || path.startsWith(`${under}/`))) found.push({ pid, at, path, call: name! });
  });
  const exeAt = (pid: number, at: number): string => {
    const last = (execs.get(pid) ?? []).filter((e) => e.at < at).at(-1);
    if (last) return last.exe;
    const f = forked.get(pid);
    return f ? exeAt(f.parent, f.at) : "?";
  };
  return found.map(({ pid, at, path, call }) => ({ path, call, exe: exeAt(pid, at) }));
}

describe("the helper alone opens what a job can write", { skip: skipUnlessRoot || skipStrace }, () => {
  const root = useRoot("opener");

  /** Runs bpm under strace -f; returns its result and its writes under ROOT/sys/log. */
  function traced(r: Root, args: string[], input?: string) {
    const out = join(r.path, "strace.out");
    rmSync(out, { force: true });
    const calls = "open,openat,mkdir,mkdirat,execve,execveat,clone,clone3,fork,vfork";
    const res = spawnSync("strace", ["-f", "-qq", "-y", "-s", "4096", "-e", `trace=${calls}`, "-o", out, BPM, ...args], {
      env: { ...process.env, BPM_BOSH_ROOT: r.path }, input, encoding: "utf8", timeout: 120_000,
    });
    return { res, writes: writesUnder(readFileSync(out, "utf8"), join(r.path, "sys", "log")) };
  }

  /** Every write is the helper's, and these paths (relative to ROOT/sys/log) were written. */
  function assertHelperWrote({ writes }: ReturnType<typeof traced>, r: Root, expected: string[]) {
    for (const w of writes) assert.match(w.exe, /^\/proc\/self\/fd\/\d+$/, `${w.call} ${w.path} by ${w.exe}, not by the helper`);
    const written = new Set(writes.map((w) => w.path.slice(join(r.path, "sys", "log").length + 1)));
    for (const p of expected) assert.ok(written.has(p), `${p} was not written under strace (written: ${[...written].join(", ")})`);
  }

  it("run makes the log dir and opens bpm.log and the process's logs in the helper", () => {
    const r = root();
    r.job("ran", bashJob("ran", "echo out; echo err >&2"));
    const t = traced(r, ["run", "ran"]);
    assert.equal(t.res.status, 0, t.res.stderr);
    assert.equal(t.res.stdout, "out\n");
    assertHelperWrote(t, r, ["ran", "ran/bpm.log", "ran/ran.stdout.log", "ran/ran.stderr.log"]);
    assert.equal(r.log("ran"), "out\n");
  });

  it("start, stop and a start that fails before its hand-over write only through the helper", () => {
    const r = root();
    // A job that ends at once: strace follows the detached container until it is gone.
    r.job("started", bashJob("started", "echo up"));
    const start = traced(r, ["start", "started"]);
    assert.equal(start.res.status, 0, start.res.stderr);
    assertHelperWrote(start, r, ["started", "started/bpm.log", "started/started.stdout.log", "started/started.stderr.log"]);
    const stop = traced(r, ["stop", "started"]);
    assert.equal(stop.res.status, 0, stop.res.stderr);
    assertHelperWrote(stop, r, ["started/bpm.log"]);
    r.job("started", "processes: [this is: not yaml\n");
    const broken = traced(r, ["start", "started"]);
    assert.equal(broken.res.status, 1);
    assert.match(broken.res.stderr, /^Error: failed to parse job configuration: /);
    assertHelperWrote(broken, r, ["started/bpm.log"]);
    assert.match(readFileSync(join(r.path, "sys/log/started/bpm.log"), "utf8"), /"message":"bpm\.start\.failed-to-parse-config"/);
  });

  it("shell writes bpm.log through the helper", () => {
    const r = root();
    r.job("entered", bashJob("entered", "exec sleep 1000"));
    assert.equal(r.bpm("start", "entered").status, 0);
    const shell = traced(r, ["shell", "entered"], "exit 3\n");
    assert.equal(shell.res.status, 3, shell.res.stderr);
    assertHelperWrote(shell, r, ["entered/bpm.log"]);
    assert.equal(r.bpm("stop", "entered").status, 0);
  });
});
