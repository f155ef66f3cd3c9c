// What a job can leave where root or the operator will look: a job named
// like a BOSH directory, and what it plants in its HOME for `bpm shell`.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { alive, bashJob, BPM, makeRoot, skipUnlessRoot, useRoot } from "./harness.ts";

const PTY_DRIVER = resolve(import.meta.dirname, "pty-driver.py");

describe("a job whose data dir would be a BOSH directory", { skip: skipUnlessRoot }, () => {
  // On a BOSH VM /var/vcap/sys is a symlink to /var/vcap/data/sys: a job named
  // "sys" is given ROOT/data/sys (chowned to vcap, mounted writable), the parent
  // of every job's state in sys/run/bpm, as a job named "bpm" would be given bpm's own.
  it("refuses a job named sys (or: the job cannot make `bpm stop` kill a host process)", async () => {
    const r = makeRoot("steer-sys");
    const canary = spawn("sleep", ["1000"], { stdio: "ignore", detached: true });
    try {
      // The BOSH layout: sys lives on the ephemeral disk.
      mkdirSync(`${r.path}/data/sys/run`, { recursive: true });
      mkdirSync(`${r.path}/data/sys/log`, { recursive: true });
      symlinkSync(`${r.path}/data/sys`, `${r.path}/sys`);
      r.job("sys", bashJob("sys", "echo up; exec sleep 1000", "  ephemeral_disk: true\n"));
      r.job("other", bashJob("other", "exec sleep 1000"));
      const started = r.bpm("start", "sys");
      if (started.status !== 0) {
        assert.match(started.stderr, /reserved/, "refused with a clear error");
        return;
      }
      // What the job can do to the directory it was given: move bpm's run dir
      // aside (same-parent rename of a root-owned dir in a dir it owns) and forge
      // another job's state, naming a host process of root's.
      const pid = canary.pid!;
      const startTime = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ")[19];
      const forge = `cd ${r.path}/data/sys && mv run run.old && mkdir -p run/bpm/other && printf 'bpm-state 2\\npid ${pid}\\nstart-time ${startTime}\\nshutdown-signal TERM\\n' > run/bpm/other/other.state`;
      assert.equal(spawnSync("runuser", ["-u", "vcap", "--", "bash", "-c", forge]).status, 0);
      r.bpm("stop", "other");
      assert.ok(alive(pid), "bpm stop killed a host process the job named");
    } finally {
      canary.kill("SIGKILL");
      spawnSync("rm", ["-rf", `${r.path}/data/sys/run`]);
      spawnSync("mv", [`${r.path}/data/sys/run.old`, `${r.path}/data/sys/run`]);
      await r.cleanup();
    }
  });
});

describe("bpm shell and what the job left in its HOME", { skip: skipUnlessRoot }, () => {
  const root = useRoot("steer-shell");

  it("reads no terminfo, and neither loads nor saves history, in the job's HOME", () => {
    const r = root();
    r.job("histrc", bashJob("histrc", "echo up; exec sleep 1000", "  ephemeral_disk: true\n"));
    assert.equal(r.bpm("start", "histrc").status, 0);
    const home = `${r.path}/data/histrc`;
    // A terminal description whose "clear" writes what the job wants to the operator's terminal.
    const src = spawnSync("infocmp", ["-x", "xterm"], { encoding: "utf8" }).stdout.replace(/clear=[^,]*,/, "clear=JOB-PLANTED-CLEAR,");
    writeFileSync(`${r.path}/xterm.src`, src);
    assert.equal(spawnSync("tic", ["-x", "-o", `${home}/.terminfo`, `${r.path}/xterm.src`]).status, 0);
    writeFileSync(`${home}/.bash_history`, "echo JOB-PLANTED-HISTORY\n");
    spawnSync("chown", ["-R", "vcap:vcap", `${home}/.terminfo`, `${home}/.bash_history`]);
    const steps = [["send", "echo SHELL-UP\n"], ["expect", "SHELL-UP"], ["send", "\u000c"], ["send", "history\n"], ["send", "echo OPERATOR-TYPED\n"], ["expect", "OPERATOR-TYPED\r?\n"], ["send", "exit 3\n"]];
    const res = spawnSync("python3", [PTY_DRIVER, JSON.stringify(steps), "--", BPM, "shell", "histrc"], {
      env: { ...process.env, BPM_BOSH_ROOT: r.path, TERM: "xterm" }, encoding: "utf8", timeout: 60_000,
    });
    assert.equal(res.status, 3, res.stdout + res.stderr);
    assert.doesNotMatch(res.stdout, /JOB-PLANTED-CLEAR/, "the job's terminfo reached the operator's terminal");
    assert.doesNotMatch(res.stdout, /JOB-PLANTED-HISTORY/, "the job's history was loaded");
    assert.doesNotMatch(readFileSync(`${home}/.bash_history`, "utf8"), /OPERATOR-TYPED/, "the operator's commands were saved where the job reads them");
    assert.equal(r.bpm("stop", "histrc").status, 0);
  });
});
