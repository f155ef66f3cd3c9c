// The executable as operators and release authors meet it.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { eventLine } from "../../src/plan/wire.ts";
import { BPM, bashJob, makeRoot, skipUnlessRoot, sleep, useRoot, type Root } from "./harness.ts";

describe("bpm command line", { skip: skipUnlessRoot }, () => {
  let root: Root;
  before(() => {
    root = makeRoot("cli");
    chmodSync(root.path, 0o755);
  });
  after(() => root.cleanup());
  const asVcap = (...args: string[]) =>
    spawnSync("setpriv", ["--reuid=vcap", "--regid=vcap", "--init-groups", BPM, ...args], { encoding: "utf8", env: { PATH: "/usr/bin:/bin", BPM_BOSH_ROOT: root.path } });

  it("prints its version without Node on PATH", () => {
    const r = spawnSync(BPM, ["version"], { encoding: "utf8", env: { PATH: "/nonexistent" } });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
    assert.equal(spawnSync(BPM, ["--version"], { encoding: "utf8" }).stdout, r.stdout);
  });
  it("takes --version in every command, before anything else, as root or not", () => {
    const version = root.bpm("version").stdout;
    root.job("untouched", bashJob("untouched", "exec sleep 1000"));
    for (const cmd of ["start", "stop", "run", "list", "pid", "logs", "shell", "trace", "validate", "version"]) {
      for (const r of [root.bpm(cmd, "untouched", "--version"), asVcap(cmd, "untouched", "--version")]) {
        assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
        assert.equal(r.stdout, version, cmd);
        assert.equal(r.stderr, "", cmd);
      }
    }
    assert.ok(!existsSync(`${root.path}/sys/log/untouched`), "nothing was started or logged");
    rmSync(`${root.path}/jobs/untouched`, { recursive: true });
  });
  it("prints the usage, beginning with `Usage:` as the original's, on stderr and fails for `bpm` alone and `bpm version extra`", () => {
    for (const args of [[], ["version", "extra"]]) {
      const r = root.bpm(...args);
      assert.equal(r.status, 1, args.join(" "));
      assert.equal(r.stdout, "", args.join(" "));
      assert.match(r.stderr, /^Usage:\n {2}bpm \S/, args.join(" "));
    }
    // The commands, then the flags; a command's own flags in its help.
    const usage = root.bpm().stderr;
    assert.match(usage, /\n\nCommands:\n(?: {2}\S+ +\S.*\n){10}\nFlags:\n {2}-h, --help +\S.*\n {6}--version +\S/);
    for (const cmd of ["start", "stop", "run", "list", "pid", "logs", "shell", "trace", "validate", "version"]) {
      assert.match(usage, new RegExp(`^ {2}${cmd} +\\S`, "m"), cmd);
    }
    const start = root.bpm("start", "--help");
    assert.equal(start.status, 0);
    assert.match(start.stdout, /^Start .*\n\nUsage:\n {2}bpm start JOB \[flags\]\n[^]*\nFlags:\n {2}-p, --process PROC +\S/);
    assert.match(root.bpm("--help").stdout, /^The BOSH process manager.*\n\nUsage:\n/);
  });
  it("requires root for job commands and for `bpm` alone, with the original's words", () => {
    for (const args of [["start", "web"], ["stop", "web"], ["list"], ["pid", "web"], ["logs", "web"], []]) {
      const cmd = args.join(" ");
      const r = asVcap(...args);
      assert.equal(r.status, 1, cmd);
      assert.equal(r.stderr, "Error: bpm must be run as root. Please run 'sudo -i' to become the root user.\n", cmd);
    }
    assert.equal(asVcap("version").status, 0);
  });
  it("says when a job is missing, a flag is unknown, or a command does not exist", () => {
    const r = root.bpm("start");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^Error: must specify a job\n\nUsage:\n {2}bpm start JOB \[flags\]\n/);
    // A name is one path component: nothing outside ROOT/jobs can be named.
    for (const [args, kind] of [[["stop", "../../etc"], "job"], [["start", "web", "-p", "a/b"], "process"], [["pid", ".."], "job"]] as const) {
      const bad = root.bpm(...args);
      assert.equal(bad.status, 1, args.join(" "));
      assert.match(bad.stderr, new RegExp(`^Error: invalid ${kind} name "[^"]*": a name may not be empty`), args.join(" "));
    }
    assert.match(root.bpm("stop", "web", "--force").stderr, /^Error: unknown flag: --force/);
    assert.match(root.bpm("frobnicate").stderr, /^Error: unknown command "frobnicate"/);
    assert.match(root.bpm("start", "--help").stdout, /-p, --process/);
  });
  it("reports an unknown process and a broken config with the original's prefixes", () => {
    root.job("web", bashJob("web", "exec sleep 1"));
    const p = root.bpm("start", "web", "-p", "nope");
    assert.equal(p.stderr, `Error: process "nope" not present in job configuration (${root.path}/jobs/web/config/bpm.yml)\n`);
    root.job("broken", "processes:\n- name: broken\n  executable: /bin/x\n  limits: {open_files: lots}\n");
    const b = root.bpm("start", "broken");
    assert.equal(b.status, 1);
    assert.equal(b.stderr, `Error: failed to parse job configuration: ${root.path}/jobs/broken/config/bpm.yml:4:24: processes[0].limits.open_files: expected a whole number, got "lots"\n`);
    assert.match(root.log("broken", "broken", "stdout"), /^$/);
  });
  it("validates without root and lists every problem with its position", () => {
    mkdirSync(`${root.path}/jobs/two/config`, { recursive: true });
    writeFileSync(`${root.path}/jobs/two/config/bpm.yml`, "processes:\n- name: two\n  executable: /bin/x\n  shutdown_signal: KILL\n  limits: {memory: lots}\n");
    chmodSync(`${root.path}/jobs`, 0o755);
    const r = asVcap("validate", `${root.path}/jobs/two/config/bpm.yml`);
    assert.equal(r.status, 1);
    assert.equal(r.stdout,
      `${root.path}/jobs/two/config/bpm.yml:4:20: processes[0].shutdown_signal: shutdown_signal must be TERM or INT, got "KILL"\n` +
      `${root.path}/jobs/two/config/bpm.yml:5:20: processes[0].limits.memory: expected a size such as 512M or 2G (units B, K, M, G, T), got "lots"\n`);
    assert.equal(r.stderr, "Error: 1 of 1 configuration is invalid\n");
    const all = root.bpm("validate");
    assert.equal(all.status, 1);
    assert.match(all.stdout, /ok: .*jobs\/web\/config\/bpm.yml/);
    assert.equal(root.bpm("validate", "web").status, 0);
  });
  it("lists invalid configs on stderr and skips them", () => {
    const r = root.bpm("list");
    assert.equal(r.status, 0);
    assert.match(r.stderr, /^invalid config for broken: /m);
    assert.match(r.stdout, /^Name +Pid +Status\nweb +- +stopped\n$/m);
  });
  it("shows the last lines of the logs like tail", () => {
    mkdirSync(`${root.path}/sys/log/logged`, { recursive: true });
    writeFileSync(`${root.path}/sys/log/logged/logged.stdout.log`, Array.from({ length: 40 }, (_, i) => `out ${i}`).join("\n") + "\n");
    writeFileSync(`${root.path}/sys/log/logged/logged.stderr.log`, "err 1\nerr 2\n");
    const tail = (...a: string[]) => spawnSync("tail", a, { encoding: "utf8" }).stdout;
    const out = `${root.path}/sys/log/logged/logged.stdout.log`;
    const err = `${root.path}/sys/log/logged/logged.stderr.log`;
    assert.equal(root.bpm("logs", "logged").stdout, tail("-n", "25", out));
    assert.equal(root.bpm("logs", "logged", "-n", "3").stdout, tail("-n", "3", out));
    assert.equal(root.bpm("logs", "logged", "-e").stdout, tail("-n", "25", err));
    assert.equal(root.bpm("logs", "logged", "-a", "-n", "2").stdout, tail("-n", "2", out, err));
    assert.equal(root.bpm("logs", "logged", "-a", "-q", "-n", "2").stdout, tail("-q", "-n", "2", out, err));
    assert.equal(root.bpm("logs", "nothing").stderr, "Error: logs not found\n");
  });
});

describe("bpm list and logs while jobs run", { skip: skipUnlessRoot }, () => {
  const root = useRoot("cli-running");

  it("warns about a running process that no config mentions", () => {
    const r = root();
    r.job("ghost", bashJob("ghost", "exec sleep 1000"));
    assert.equal(r.bpm("start", "ghost").status, 0);
    r.job("ghost", bashJob("renamed", "exec sleep 1000"));
    const l = r.bpm("list");
    assert.equal(l.stderr, "extra process running: process (ghost) not defined\n");
    assert.match(l.stdout, /ghost\.renamed +- +stopped/);
    r.job("ghost", bashJob("ghost", "exec sleep 1000"));
    assert.equal(r.bpm("stop", "ghost").status, 0);
  });

  it("follows the log across rotation by rename and by copytruncate, and exits 0 on Ctrl-C", async (t) => {
    const r = root();
    const dir = `${r.path}/sys/log/rotating`;
    mkdirSync(dir, { recursive: true });
    const log = `${dir}/rotating.stdout.log`;
    writeFileSync(log, "old line\n");
    const f = spawn(BPM, ["logs", "rotating", "-f"], { env: { ...process.env, BPM_BOSH_ROOT: r.path } });
    let out = "";
    f.stdout.on("data", (d) => (out += d));
    const until = async (text: string) => {
      for (let i = 0; i < 600 && !out.includes(text); i++) await sleep(25);
      assert.ok(out.includes(text), `expected ${text} in ${JSON.stringify(out)}`);
    };
    const exited = new Promise((res) => f.on("exit", (c) => res(c)));
    t.after(() => f.kill("SIGKILL")); // a failed assertion must not leave the follower running
    await until("old line");
    appendFileSync(log, "before rotation\n");
    await until("before rotation");
    renameSync(log, `${log}.1`);
    writeFileSync(log, "after rename\n");
    await until("after rename");
    copyFileSync(log, `${log}.2`);
    truncateSync(log, 0);
    await sleep(300);
    appendFileSync(log, "after copytruncate\n");
    await until("after copytruncate");
    f.kill("SIGINT");
    assert.equal(await exited, 0);
    assert.equal(out, "old line\nbefore rotation\nafter rename\nafter copytruncate\n");
  });
});

describe("bpm.log events", { skip: skipUnlessRoot }, () => {
  const root = useRoot("events");
  /** The messages bpm.log got since the last call. */
  const reader = (r: Root, job: string) => {
    let seen = 0;
    return () => {
      const text = readFileSync(`${r.path}/sys/log/${job}/bpm.log`, "utf8").trim().split("\n");
      const lines = text.map((l) => JSON.parse(l));
      const fresh = lines.slice(seen);
      for (const [i, l] of fresh.entries()) {
        assert.deepEqual([l.source, l.data.job, l.data.process], ["bpm", job, job], JSON.stringify(l));
        // The CLI's lines and the helper's are the one shape (wire.ts's eventLine), byte for byte.
        assert.equal(text[seen + i] + "\n", eventLine(l.timestamp, l.level, l.message, l.data));
        assert.match(l.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      }
      seen = lines.length;
      return fresh.map((l) => l.message as string);
    };
  };

  it("has every job command log bpm.<command>.starting and .complete, as the original's sessions did", () => {
    const r = root();
    r.job("evt", bashJob("evt", "[ \"$MODE\" = fail ] && exit 3; exec sleep 1000"));
    assert.equal(r.bpm("start", "evt").status, 0);
    const events = reader(r, "evt");
    assert.deepEqual(events(), ["bpm.start.starting", "bpm.start.complete"]);
    assert.equal(r.bpm("start", "evt").status, 0);
    assert.deepEqual(events(), ["bpm.start.starting", "bpm.start.process-already-running", "bpm.start.complete"]);
    const shell = spawnSync(BPM, ["shell", "evt"], { env: { ...process.env, BPM_BOSH_ROOT: r.path }, input: "exit 4\n", encoding: "utf8", timeout: 30_000 });
    assert.equal(shell.status, 4, shell.stderr);
    assert.deepEqual(events(), ["bpm.shell.starting", "bpm.shell.complete"]);
    assert.equal(r.bpm("stop", "evt").status, 0);
    assert.deepEqual(events(), ["bpm.stop.starting", "bpm.stop.stopping", "bpm.stop.complete"]);
    assert.equal(r.bpm("stop", "evt").status, 0);
    assert.deepEqual(events(), ["bpm.stop.starting", "bpm.stop.job-already-stopped", "bpm.stop.complete"]);
    assert.equal(r.bpm("run", "evt", "-e", "MODE=fail").status, 3);
    assert.deepEqual(events(), ["bpm.run.starting", "bpm.run.complete"]);
    r.job("evt", bashJob("evt", "exit 0"));
    assert.equal(r.bpm("trace", "evt", "--startup", "-o", `${r.path}/t.out`).status, 0);
    assert.deepEqual(events(), ["bpm.trace.starting", "bpm.trace.complete"]);
    // Failing: the error, then complete all the same.
    r.job("evt", "processes:\n- name: evt\n  executable: /bin/x\n  limits: {open_files: lots}\n");
    assert.equal(r.bpm("start", "evt").status, 1);
    assert.deepEqual(events(), ["bpm.start.starting", "bpm.start.failed-to-parse-config", "bpm.start.complete"]);
  });
});

describe("bpm.yml as ERB-rendered releases write it", { skip: skipUnlessRoot }, () => {
  const root = useRoot("merge");
  it("starts a config with every field written, the empty ones as \"\" or null, in /var/vcap/jobs/JOB; validate agrees", async () => {
    const r = root();
    const script = 'echo "cwd=$(pwd) caps=$(grep CapEff /proc/self/status | cut -f2)"; exec sleep 1000';
    // As Go's YAML marshaller writes the original's structs (the original's own suite does this)...
    r.job("gomarshalled", [
      "processes:", "    - name: gomarshalled", "      executable: /bin/bash", "      args:", "        - -c", `        - ${JSON.stringify(script)}`,
      "      env: {}", "      additional_volumes: []", "      capabilities: []", "      ephemeral_disk: false", "      limits: null",
      "      persistent_disk: false", '      workdir: ""', "      unsafe: null", '      shutdown_signal: ""', "",
    ].join("\n"));
    // ...and as an ERB template renders empty defaults.
    r.job("erbrendered", [
      "processes:", "- name: erbrendered", "  executable: /bin/bash", `  args: [-c, ${JSON.stringify(script)}]`, "  env:", "  workdir:",
      "  hooks: null", '  shutdown_signal: ""', "  limits:", "    memory:", "    open_files:", '    core_file_size: ""',
      "  unsafe:", "    privileged:", "    unrestricted_volumes:", "  capabilities: []", "  additional_volumes:", "",
    ].join("\n"));
    for (const job of ["gomarshalled", "erbrendered"]) {
      const checked = r.bpm("validate", job);
      assert.equal(checked.status, 0, checked.stdout + checked.stderr);
      assert.equal(checked.stdout, `ok: ${r.path}/jobs/${job}/config/bpm.yml\n`);
      const started = r.bpm("start", job);
      assert.equal(started.status, 0, started.stderr);
      await r.waitForLog(job, "cwd=");
      assert.equal(r.log(job), `cwd=/var/vcap/jobs/${job} caps=0000000000000000\n`, job);
      // shutdown_signal "" is TERM, which ends the sleep at once.
      const stopped = r.bpm("stop", job);
      assert.equal(stopped.status, 0, stopped.stderr);
      const events = readFileSync(`${r.path}/sys/log/${job}/bpm.log`, "utf8");
      assert.match(events, /"message":"bpm\.stop\.stopping".*"signal":"TERM"/, job);
      assert.doesNotMatch(events, /forceful-shutdown/, job);
    }
  });
  it("takes YAML merge keys as the original's decoder did: the job gets the merged env, its own keys winning", () => {
    const r = root();
    r.job("merged", `common: &common {SHARED: from-common, OVERRIDDEN: from-common}
more: &more {SECOND: from-more, SHARED: from-more}
processes:
- name: merged
  executable: /bin/bash
  args: [-c, 'echo "SHARED=$SHARED OVERRIDDEN=$OVERRIDDEN SECOND=$SECOND"']
  env:
    <<: [*common, *more]
    OVERRIDDEN: explicit
`);
    const checked = r.bpm("validate", "merged");
    assert.equal(checked.status, 0, checked.stdout + checked.stderr);
    const run = r.bpm("run", "merged");
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, "SHARED=from-common OVERRIDDEN=explicit SECOND=from-more\n");
  });
});
