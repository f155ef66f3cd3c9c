// What an operator or an errand does: run in the foreground, open a shell
// inside a running job, trace it (attached, or from its first instruction).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import { containerId } from "../../src/bosh/paths.ts";
import { cgroupDirs, cgroupFsRoot, jobCgroup } from "../../src/runtime/cgroups.ts";
import { BPM, bashJob, eventually, skipUnlessRoot, useRoot, type Root } from "./harness.ts";

const PTY_DRIVER = resolve(import.meta.dirname, "pty-driver.py");

/** Runs bpm in a process group of its own, so a test can press Ctrl-C (signal the group) like a terminal. */
function bpmInGroup(r: Root, args: string[], stdin: "ignore" | "pipe" = "ignore") {
  const child = spawn(BPM, args, { env: { ...process.env, BPM_BOSH_ROOT: r.path }, stdio: [stdin, "pipe", "pipe"], detached: true });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const done = new Promise<number | null>((res) => child.on("close", (code) => res(code)));
  return { child, done, out: () => stdout, err: () => stderr, ctrlC: () => process.kill(-child.pid!, "SIGINT") };
}

const until = (what: () => string, pattern: RegExp) => eventually(() => pattern.test(what()), () => `${pattern} not in:\n${what()}`);

/** Nothing a run may leave: no pidfile, no state, no cgroup of the job. */
function assertNothingLeft(r: Root, job: string, proc = job) {
  const run = join(r.path, "sys/run/bpm", job);
  assert.ok(!existsSync(join(run, `${proc}.pid`)), "no pidfile");
  assert.ok(!existsSync(join(run, `${proc}.state`)), "no state");
  assert.deepEqual(cgroupDirs(jobCgroup(cgroupFsRoot(), r.path, containerId(job, proc))).filter(existsSync), [], "no cgroup left");
}

describe("bpm run", { skip: skipUnlessRoot }, () => {
  const root = useRoot("run");

  it("exits with the process's status, 128+signal when killed, with the contract's message", () => {
    const r = root();
    r.job("errand", bashJob("errand", 'echo "running as $(id -un) pid $$"; [ "$HOW" = kill ] && kill -9 $$; exit ${CODE:-0}'));
    const ok = r.bpm("run", "errand");
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, "running as vcap pid 2\n");
    assert.equal(ok.stderr, "");
    for (const code of [1, 42]) {
      const f = r.bpm("run", "errand", "-e", `CODE=${code}`);
      assert.equal(f.status, code);
      assert.equal(f.stderr, `Error: failed to run job-process: exited with code ${code} (exit status ${code})\n`);
    }
    const k = r.bpm("run", "errand", "-e", "HOW=kill");
    assert.equal(k.status, 137);
    assert.equal(k.stderr, "Error: failed to run job-process: killed by signal KILL (exit status 137)\n");
    assert.equal(r.log("errand"), "running as vcap pid 2\n".repeat(4));
    assertNothingLeft(r, "errand");
  });

  it("exits 127 for a missing executable and 126 for one that cannot be executed", () => {
    const r = root();
    r.job("noexec", "processes:\n- name: missing\n  executable: /var/vcap/packages/nothing/bin/x\n- name: plain\n  executable: /var/vcap/jobs/noexec/config/bpm.yml\n");
    const m = r.bpm("run", "noexec", "-p", "missing");
    assert.equal(m.status, 127);
    assert.equal(m.stderr, "Error: failed to run job-process: exec /var/vcap/packages/nothing/bin/x: No such file or directory (exit status 127)\n");
    const p = r.bpm("run", "noexec", "-p", "plain");
    assert.equal(p.status, 126);
    assert.match(p.stderr, /^Error: failed to run job-process: exec \/var\/vcap\/jobs\/noexec\/config\/bpm.yml: Permission denied \(exit status 126\)\n$/);
    assertNothingLeft(r, "noexec", "missing");
  });

  it("copies 10 MB of quick output to the terminal and the log, complete and in order", () => {
    const r = root();
    // Both streams at once: stdout a counted sequence, stderr every 100000th
    // number (one process writing both, which bash waits for: a process
    // substitution could still be writing when the job ends).
    r.job("chatty", bashJob("chatty", "seq 1 1500000 | awk '{ print } NR % 100000 == 0 { print > \"/dev/stderr\" }'"));
    const expected = spawnSync("seq", ["1", "1500000"], { encoding: "utf8", maxBuffer: 64 << 20 }).stdout;
    assert.ok(expected.length > 10_000_000);
    const res = spawnSync(BPM, ["run", "chatty"], { env: { ...process.env, BPM_BOSH_ROOT: r.path }, encoding: "utf8", maxBuffer: 64 << 20 });
    assert.equal(res.status, 0, res.stderr);
    assert.ok(res.stdout === expected, `terminal got ${res.stdout.length} bytes, expected ${expected.length}`);
    assert.ok(r.log("chatty") === expected, "the stdout log holds the same bytes");
    const errs = Array.from({ length: 15 }, (_, i) => `${(i + 1) * 100000}\n`).join("");
    assert.equal(res.stderr, errs);
    assert.equal(r.log("chatty", "chatty", "stderr"), errs);
  });

  it("logs the whole output and exits with the job's status when nobody reads the terminal any more (| head)", () => {
    const r = root();
    // More than any pipe holds, after how the job's signals are set: SIGPIPE
    // at its default (the helper copying the output does not let it die of one).
    r.job("headed", bashJob("headed", "grep -E '^Sig(Blk|Ign):' /proc/self/status; seq 1 300000; exit 3"));
    const res = spawnSync("bash", ["-c", '"$0" run headed | head -c 10; echo "bpm exited ${PIPESTATUS[0]}" >&2', BPM], {
      env: { ...process.env, BPM_BOSH_ROOT: r.path }, encoding: "utf8", timeout: 60_000,
    });
    assert.equal(res.signal, null, "bpm run hung once its stdout was closed");
    assert.equal(res.stdout, "SigBlk:\t00");
    assert.equal(res.stderr, "Error: failed to run job-process: exited with code 3 (exit status 3)\nbpm exited 3\n");
    const seq = spawnSync("seq", ["1", "300000"], { encoding: "utf8", maxBuffer: 16 << 20 }).stdout;
    assert.ok(r.log("headed") === `SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n${seq}`, `the log holds ${r.log("headed").length} bytes`);
  });

  it("copies what the pre_start hook writes, however much, to the log and the terminal before the job's", () => {
    const r = root();
    const hook = `${r.path}/jobs/hooked/bin/pre-start`;
    mkdirSync(`${r.path}/jobs/hooked/bin`, { recursive: true });
    // More than a pipe holds: the helper copies while it waits for the hook.
    writeFileSync(hook, "#!/bin/bash\nseq 1 100000\necho hook-err >&2\n", { mode: 0o755 });
    r.job("hooked", bashJob("hooked", "echo job", `  hooks: {pre_start: ${hook}}\n`));
    const res = spawnSync(BPM, ["run", "hooked"], { env: { ...process.env, BPM_BOSH_ROOT: r.path }, encoding: "utf8", maxBuffer: 16 << 20, timeout: 60_000 });
    assert.equal(res.status, 0, res.stderr);
    const expected = spawnSync("seq", ["1", "100000"], { encoding: "utf8", maxBuffer: 16 << 20 }).stdout + "job\n";
    assert.ok(res.stdout === expected, `the terminal got ${res.stdout.length} bytes of ${expected.length}`);
    assert.ok(r.log("hooked") === expected, "the log holds the same");
    assert.equal(res.stderr, "hook-err\n");
    assert.equal(r.log("hooked", "hooked", "stderr"), "hook-err\n");
  });

  it("returns with the job's status though a pre_start hook's child still holds the output pipes, and leaves the job's lock free", () => {
    const r = root();
    const hook = `${r.path}/jobs/lingering/bin/pre-start`;
    const child = `${r.path}/hook-child.pid`;
    mkdirSync(`${r.path}/jobs/lingering/bin`, { recursive: true });
    // The hook leaves a process on the host, outside the job's cgroup, holding what the hook wrote to.
    writeFileSync(hook, `#!/bin/bash\nsleep 300 &\necho $! > ${child}\necho hook done\n`, { mode: 0o755 });
    r.job("lingering", bashJob("lingering", "echo job; exit 4", `  hooks: {pre_start: ${hook}}\n`));
    try {
      const res = spawnSync(BPM, ["run", "lingering"], { env: { ...process.env, BPM_BOSH_ROOT: r.path }, encoding: "utf8", timeout: 60_000 });
      assert.equal(res.signal, null, "bpm run waited for the hook's child to close its output");
      assert.equal(res.status, 4, res.stderr);
      assert.equal(res.stdout, "hook done\njob\n");
      const stop = r.bpm("stop", "lingering");
      assert.equal(stop.status, 0, stop.stderr);
    } finally {
      if (existsSync(child)) process.kill(Number(readFileSync(child, "utf8")), "SIGKILL");
    }
  });

  it("shows output as it comes, not at exit", async () => {
    const r = root();
    r.job("slow", bashJob("slow", "echo first; exec sleep 30"));
    const run = bpmInGroup(r, ["run", "slow"]);
    await until(run.out, /^first\n$/);
    run.ctrlC();
    assert.equal(await run.done, 130);
  });

  it("passes Ctrl-C and TERM to the job, once each", async () => {
    const r = root();
    r.job("trapper", bashJob("trapper", "trap 'echo got INT; exit 3' INT; trap 'echo got TERM; exit 4' TERM; echo ready; while :; do sleep 0.05; done"));
    const a = bpmInGroup(r, ["run", "trapper"]);
    await until(a.out, /ready/);
    a.ctrlC();
    assert.equal(await a.done, 3);
    assert.equal(a.out(), "ready\ngot INT\n");
    const b = bpmInGroup(r, ["run", "trapper"]);
    await until(b.out, /ready/);
    b.child.kill("SIGTERM");
    assert.equal(await b.done, 4);
    assert.equal(b.out(), "ready\ngot TERM\n");
    assertNothingLeft(r, "trapper");
  });

  it("applies -v and -e, seen from inside, with the last -e of a name winning", () => {
    const r = root();
    r.job("vols", bashJob("vols", [
      'echo "A=$A B=$B HOME=$HOME"',
      "touch /var/vcap/data/errand-rw/made && echo rw-ok",
      "touch /var/vcap/data/errand-ro/made 2>/dev/null || echo ro-refused",
      "grep -q ' /var/vcap/data/errand-ro .*noexec' /proc/self/mountinfo && echo ro-noexec",
    ].join("; ")));
    const res = r.bpm("run", "vols", "-v", "/var/vcap/data/errand-rw:writable,allow_executions", "--volume=/var/vcap/data/errand-ro",
      "-e", "A=1", "-e", "A=2", "--env", "B=x=y");
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.stdout, "A=2 B=x=y HOME=/var/vcap/data/vols\nrw-ok\nro-refused\nro-noexec\n");
    assert.ok(existsSync(join(r.path, "data/errand-rw/made")), "the write landed in ROOT/data/errand-rw");
    assert.equal(statSync(join(r.path, "data/errand-rw")).uid, Number(spawnSync("id", ["-u", "vcap"], { encoding: "utf8" }).stdout));
  });

  it("refuses bad -v and -e before starting anything", () => {
    const r = root();
    r.job("picky", bashJob("picky", "echo should-not-run"));
    const cases: [string[], string][] = [
      [["-v", "/var/vcap/data/x:writeable"], 'invalid volume "/var/vcap/data/x:writeable": unknown option "writeable" (options: writable, mount_only, allow_executions, shared)'],
      [["-v", "/etc/passwd"], 'invalid volume "/etc/passwd": volume path must be inside /var/vcap, got "/etc/passwd"'],
      [["-v", "/var/vcap/data/../../etc"], 'invalid volume "/var/vcap/data/../../etc": volume path must be absolute and canonical (no "..", "//" or trailing "/"), got "/var/vcap/data/../../etc"'],
      [["-v", "/var/vcap/data/picky"], 'invalid volume "/var/vcap/data/picky": volume path "/var/vcap/data/picky" is the job\'s own data or store directory: use ephemeral_disk or persistent_disk'],
      [["-v", "/var/vcap/data/x:"], 'invalid volume "/var/vcap/data/x:": unknown option "" (options: writable, mount_only, allow_executions, shared)'],
      [["-e", "NOEQUALS"], 'invalid environment variable "NOEQUALS": expected KEY=VALUE'],
      [["-e", "=value"], 'invalid environment variable "=value": the name is empty'],
      [["-v"], "flag -v needs a value"],
    ];
    for (const [flags, message] of cases) {
      const res = r.bpm("run", "picky", ...flags);
      assert.equal(res.status, 1, flags.join(" "));
      assert.equal(res.stderr.split("\n")[0], `Error: ${message}`, flags.join(" "));
      assert.equal(res.stdout, "");
    }
    assert.ok(!existsSync(join(r.path, "sys/log/picky/picky.stdout.log")), "nothing ran");
    assert.ok(!existsSync(join(r.path, "data/x")), "no volume directory made");
    assertNothingLeft(r, "picky");
  });

  it("does nothing when the process already runs, and hands piped input to the job", async () => {
    const r = root();
    r.job("busy", bashJob("busy", "if read -r line; then echo \"read: $line\"; else echo no-input; exec sleep 1000; fi"));
    assert.equal(r.bpm("start", "busy").status, 0);
    const pid = r.bpm("pid", "busy").stdout;
    await r.waitForLog("busy", "no-input");
    const again = r.bpm("run", "busy");
    assert.equal(again.status, 0);
    assert.equal(again.stdout, "");
    assert.equal(r.bpm("pid", "busy").stdout, pid, "the running process is untouched");
    assert.equal(r.bpm("stop", "busy").status, 0);
    const piped = spawnSync(BPM, ["run", "busy"], { input: "hello errand\n", env: { ...process.env, BPM_BOSH_ROOT: r.path }, encoding: "utf8" });
    assert.equal(piped.stdout, "read: hello errand\n");
  });
});

describe("bpm shell", { skip: skipUnlessRoot }, () => {
  const root = useRoot("shell");
  const drive = (r: Root, steps: unknown[], ...args: string[]) =>
    spawnSync("python3", [PTY_DRIVER, JSON.stringify(steps), "--", BPM, "shell", ...args], {
      env: { ...process.env, BPM_BOSH_ROOT: r.path, TERM: "xterm-bpmtest" }, encoding: "utf8", timeout: 60_000,
    });

  it("opens bash inside the container, as the job, on a pty of the container's own", () => {
    const r = root();
    // The job tries, round after round, to write into every terminal it can
    // find, the shell's included, and logs each place it was refused (once)
    // and each it wrote to. Only terminals (character devices): the pipes of
    // the shell's `$(...)` and `|` are the job's user's too, open to it
    // through /proc, and what it writes there the shell prints as a command's
    // output (docs/security.md: `bpm shell` shares the job's uid).
    const injector = [
      "declare -A denied",
      "while :; do for t in /dev/pts/[0-9]* /proc/[0-9]*/fd/[012]; do",
      '  [ -c "$t" ] || continue',
      '  if { exec 9>"$t"; } 2>/dev/null; then [ -t 9 ] && echo INJECTED-BY-JOB >&9 && echo "WROTE $t"; exec 9>&-',
      '  elif [ -z "${denied[$t]}" ]; then denied[$t]=1; echo "DENIED $t"; fi',
      "done; sleep 0.02; done",
    ].join("\n");
    r.job("box", bashJob("box", injector, "  limits: {open_files: 777, processes: 50}\n"));
    r.job("other", bashJob("other", "exec sleep 1000"));
    assert.equal(r.bpm("start", "box").status, 0);
    assert.equal(r.bpm("start", "other").status, 0);
    // The host terminal's devpts, to tell it from the container's.
    const hostPts = statSync("/dev/pts/ptmx").dev;
    const log = "/var/vcap/sys/log/box/box.stdout.log";
    const res = drive(r, [
      ["size", 30, 100],
      ["send", "echo ID=$(id -un):$(id -u) TERM=$TERM PWD=$PWD\n"], ["expect", "ID=vcap"],
      ["send", "ps -eo pid=,comm=; echo PS-END\n"], ["expect", "\nPS-END"],
      ["send", "echo JOBS $(ls /var/vcap/jobs)\n"], ["expect", "JOBS \\w"],
      ["send", "echo CAPS $(grep CapEff /proc/self/status)\n"], ["expect", "CAPS C"],
      ["send", "echo LIMITS $(ulimit -n) $(grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\\t' | tr '\\n' ' ')\n"], ["expect", "LIMITS \\d"],
      ["send", "echo CGROUP $(grep -E ':(pids|memory):' /proc/self/cgroup | cut -d: -f3 | sort -u)\n"], ["expect", "CGROUP /"],
      ["send", "echo TTYDEV $(stat -L -c %d /proc/self/fd/0); ls -l /proc/$$/fd; echo FD-END\n"], ["expect", "\nFD-END"],
      ["send", "echo SIZE1 $(stty size)\n"], ["expect", "SIZE1 \\d"],
      ["size", 40, 120], ["sleep", 0.3],
      ["send", "echo SIZE2 $(stty size)\n"], ["expect", "SIZE2 \\d"],
      ["send", "tty; sleep 0.5; echo TTY-END\n"], ["expect", "\nTTY-END"],
      // Not over before the job has tried this shell's terminal, by name and through /proc.
      ["send", `until grep -qx "DENIED /proc/$$/fd/0" ${log} && grep -qx "DENIED /dev/pts/0" ${log}; do sleep 0.1; done; echo TRIED-END\n`],
      ["expect", "\nTRIED-END"],
      ["send", "exit 5\n"],
    ], "box");
    const out = res.stdout.replace(/\r/g, "");
    assert.doesNotMatch(out, /INJECTED-BY-JOB/, "the job wrote into the operator's terminal");
    assert.doesNotMatch(readFileSync(join(r.path, "sys/log/box/box.stdout.log"), "utf8"), /^WROTE /m, "the job opened a terminal");
    assert.equal(res.status, 5, `${out}\n${res.stderr}`);
    assert.match(out, /^\/dev\/pts\/0$/m);
    assert.match(out, /^ID=vcap:\d+ TERM=xterm-bpmtest PWD=\/var\/vcap\/jobs\/box$/m);
    // The container's pid namespace: its init, the job, the shell and ps; nothing of the host.
    const ps = [...out.matchAll(/^ *(\d+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
    assert.deepEqual(ps.slice(0, 2), ["1 bpm-init", "2 bash"], ps.join("; "));
    // The rest: the shell and ps, and whatever the job's loop runs at that instant.
    const rest = ps.slice(2).map((p) => p.split(" ")[1]);
    assert.ok(rest.includes("bash") && rest.includes("ps") && rest.every((c) => ["bash", "ps", "sleep"].includes(c!)), ps.join("; "));
    assert.match(out, /^JOBS box$/m);
    assert.match(out, /^CAPS CapEff: 0000000000000000$/m);
    assert.match(out, /^LIMITS 777 NoNewPrivs:1 Seccomp:2$/m, "the job's rlimits, no_new_privs and seccomp filter");
    // The same cgroup as the job's (as the container sees it, or the host path).
    const jobCg = readFileSync(`/proc/${Number(r.bpm("pid", "box").stdout)}/cgroup`, "utf8").split("\n").find((l) => /:pids:/.test(l))!.split(":")[2]!;
    assert.match(out, new RegExp(`^CGROUP ${jobCg.replace(/[.]/g, "\\.")}$`, "m"));
    assert.notEqual(Number(/^TTYDEV (\d+)$/m.exec(out)![1]), hostPts, "the shell's terminal is not on the host's devpts");
    const fds = [...out.matchAll(/ (\d+) -> (.*)$/gm)].map((m) => `${m[1]} ${m[2]}`);
    assert.deepEqual(fds, ["0 /dev/pts/0", "1 /dev/pts/0", "2 /dev/pts/0", "255 /dev/pts/0"], "the shell holds the container's pty and nothing else");
    assert.match(out, /^SIZE1 30 100$/m);
    assert.match(out, /^SIZE2 40 120$/m);
    assert.equal(r.bpm("stop", "box").status, 0);
    assert.equal(r.bpm("stop", "other").status, 0);
  });

  it("refuses a process that is not running", () => {
    const r = root();
    r.job("idle", bashJob("idle", "exec sleep 1000"));
    const res = r.bpm("shell", "idle");
    assert.equal(res.status, 1);
    assert.equal(res.stderr, "Error: process is not running or could not be found\n");
  });
});

describe("bpm trace", { skip: skipUnlessRoot }, () => {
  const root = useRoot("trace");

  it("attaches strace to the running process and exits 0 on Ctrl-C", async () => {
    const r = root();
    r.job("traced", bashJob("traced", "while :; do echo tick > /dev/null; sleep 0.1; done"));
    assert.equal(r.bpm("start", "traced").status, 0);
    const t = bpmInGroup(r, ["trace", "traced"]);
    // bash's own work: writing to /dev/null (shown with -y) and waiting for sleep.
    await until(t.err, /write\(1<\/dev\/null.*, "tick\\n", 5\) = 5/);
    await until(t.err, /wait4\(/);
    t.ctrlC();
    assert.equal(await t.done, 0);
    assert.equal(r.bpm("stop", "traced").status, 0);
  });

  it("ends on a SIGINT sent to bpm alone: exit 0, strace gone, the job untraced", async () => {
    const r = root();
    r.job("traced2", bashJob("traced2", "while :; do echo tick > /dev/null; sleep 0.1; done"));
    assert.equal(r.bpm("start", "traced2").status, 0);
    const t = bpmInGroup(r, ["trace", "traced2"]);
    await until(t.err, /wait4\(/);
    const status = (pid: string, field: string) => {
      try {
        return new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
      } catch {
        return undefined;
      }
    };
    const pids = () => readdirSync("/proc").filter((p) => /^\d+$/.test(p));
    const strace = pids().find((p) => status(p, "PPid") === String(t.child.pid));
    assert.ok(strace, "strace runs as bpm's child");
    process.kill(t.child.pid!, "SIGINT");
    assert.equal(await t.done, 0, t.err());
    await eventually(() => !existsSync(`/proc/${strace}`), () => `strace ${strace} still there`);
    assert.deepEqual(pids().filter((p) => status(p, "TracerPid") === strace), [], "a process is still traced");
    assert.equal(r.bpm("stop", "traced2").status, 0);
  });

  it("traces from before the first instruction a job that exits at once", () => {
    const r = root();
    r.job("crashy", bashJob("crashy", "exit 3"));
    const out = join(r.path, "crashy.trace");
    const res = r.bpm("trace", "crashy", "--startup", "-o", out);
    assert.equal(res.status, 3, res.stderr);
    assert.match(res.stderr, /Error: failed to run job-process: exited with code 3 \(exit status 3\)\n$/);
    const trace = readFileSync(out, "utf8");
    assert.match(trace, /^\d+ +execve\("\/bin\/bash", \["\/bin\/bash", "-c", "exit 3"\]/m);
    assert.match(trace, /exit_group\(3\)/);
    assertNothingLeft(r, "crashy");
  });

  it("follows the children of a traced start, to the terminal", () => {
    const r = root();
    r.job("forky", bashJob("forky", "/bin/true; echo done"));
    const res = r.bpm("trace", "forky", "--startup");
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.stdout, "done\n");
    assert.match(res.stderr, /execve\("\/bin\/true"/);
  });

  it("says so when strace is missing or the process is not running", () => {
    const r = root();
    r.job("quiet", bashJob("quiet", "exec sleep 1000"));
    const missing = spawnSync(BPM, ["trace", "quiet"], { env: { BPM_BOSH_ROOT: r.path, PATH: "/nonexistent" }, encoding: "utf8" });
    assert.equal(missing.status, 1);
    assert.equal(missing.stderr, "Error: strace is not installed (or not in PATH): install it with `apt-get install strace`\n");
    const stopped = r.bpm("trace", "quiet");
    assert.equal(stopped.status, 1);
    assert.equal(stopped.stderr, "Error: process is not running or could not be found\n");
  });
});
