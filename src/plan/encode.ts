// The plan on the wire to the helper: "BPMPLAN1 <length>\n", then records of
// NUL-terminated fields (a tag, then a fixed number of arguments per tag).
import { capabilityNumber } from "../config/capabilities.ts";
import { UserError } from "../lifecycle/errors.ts";
import { MAX_PLAN_BYTES, PLAN_VERSION, type PLAN_RECORDS, type PlanTag } from "./wire.ts";
import type { JobBook } from "./book.ts";
import type { CgroupLayout } from "./cgroup.ts";
import type { LaunchPlan, StartPlan } from "./plan.ts";
import { recordBody } from "./record.ts";
import type { EnterPlan } from "./enter.ts";

/** A record: its tag and exactly as many fields as src/plan/wire.ts says. */
type Fields<N extends number, Acc extends (string | number)[] = []> = Acc["length"] extends N ? Acc : Fields<N, [...Acc, string | number]>;
type Rec = <T extends PlanTag>(tag: T, ...args: Fields<(typeof PLAN_RECORDS)[T]>) => void;

/** Collects records and frames them. */
function records(fill: (rec: Rec) => void): Buffer {
  const fields: string[] = [];
  fill((tag, ...args: (string | number)[]) => {
    for (const f of [tag, ...args]) {
      const s = String(f);
      if (s.includes("\0")) throw new Error(`plan field for ${tag} contains a NUL byte`);
      fields.push(s);
    }
  });
  fields.push("end");
  const body = Buffer.from(fields.join("\0") + "\0");
  // The helper would refuse it, and its record could not be read back.
  if (body.length > MAX_PLAN_BYTES) {
    throw new UserError(`the process's environment and arguments are too large to run (${body.length} bytes with everything bpm passes; at most ${MAX_PLAN_BYTES})`);
  }
  return Buffer.concat([Buffer.from(`${PLAN_VERSION} ${body.length}\n`), body]);
}

function job(rec: Rec, j: JobBook): void {
  rec("lock", j.lock);
  rec("state", j.stateFile, j.pidfile);
  if (j.bpmLog) rec("bpmlog", j.bpmLog, j.logBase);
  rec("logowner", j.logOwner.uid, j.logOwner.gid);
  rec("event", j.event, j.errorPrefix);
  if (j.logs) rec("logs", j.logs.stdout, j.logs.stderr);
  rec("shutdown", j.shutdownSignal);
  rec("shutdowntimeout", j.shutdownTimeoutMs);
  if (j.stopTiming) rec("stoptiming", j.stopTiming.graceMs, j.stopTiming.quitMs, j.stopTiming.killMs);
}

/** The job's cgroup: to make, fill, kill and remove (with a job), and to join. */
function cgroup(rec: Rec, cg: CgroupLayout, make: boolean): void {
  for (const p of cg.procs) rec("cgroup", p);
  if (!make) return;
  for (const d of cg.dirs) rec("cgdir", d);
  for (const d of cg.leftovers) rec("cgleftover", d);
  for (const d of cg.enable) rec("cgenable", d, cg.controllers);
  for (const l of cg.limits) rec("cglimit", l.file, l.value, l.optional ? "optional" : "required");
  if (cg.killFile) rec("cgkill", cg.killFile);
  rec("cgoom", cg.oomFile);
  if (cg.scope) {
    rec("cgscope", cg.scope.unit);
    for (const [name, type, value] of cg.scope.properties) rec("cgprop", name, type, value);
  }
}

/** Who the job's program runs as: user, groups, capabilities, rlimits, no_new_privs. */
function identity(rec: Rec, p: Pick<LaunchPlan, "user" | "capabilities" | "rlimits" | "noNewPrivs">): void {
  rec("user", p.user.uid, p.user.gid);
  for (const g of p.user.groups) rec("group", g);
  let caps = 0n;
  for (const c of p.capabilities) caps |= 1n << BigInt(capabilityNumber(c)!);
  rec("caps", caps.toString());
  for (const r of p.rlimits) rec("rlimit", r.name, r.soft, r.hard);
  if (p.noNewPrivs) rec("nonewprivs");
}

/** What it runs, where, with what environment. */
function program(rec: Rec, p: Pick<LaunchPlan, "cwd" | "executable" | "args" | "env">): void {
  rec("cwd", p.cwd);
  rec("exe", p.executable);
  rec("arg", p.executable);
  for (const a of p.args) rec("arg", a);
  for (const [k, v] of Object.entries(p.env)) rec("env", `${k}=${v}`);
}

/** The plan for the helper's shell verb: join, enter, become the job, run the program. */
export function encodeEnterPlan(plan: EnterPlan): Buffer {
  return records((rec) => {
    rec("mode", "foreground");
    for (const p of plan.cgroupProcs) rec("cgroup", p);
    for (const ns of plan.namespaces) rec("ns", ns);
    identity(rec, plan);
    if (plan.seccomp) rec("seccomp", plan.seccomp);
    program(rec, plan);
    rec("target", plan.target);
  });
}

/** The plan for the helper's start and launch verbs: a launch, or a refusal of one. */
export function encodePlan(plan: StartPlan): Buffer {
  if (plan.kind === "refusal") {
    return records((rec) => {
      rec("mode", plan.mode);
      job(rec, plan.job);
      rec("refuse", plan.why);
    });
  }
  return records((rec) => {
    rec("mode", plan.mode);
    job(rec, plan.job);
    // What the helper records once the job runs (start, and run while it runs), for every later command.
    rec("record", recordBody(plan));
    cgroup(rec, plan.cgroup, true);
    for (const ns of plan.namespaces) rec("ns", ns);
    for (const d of plan.preps) rec("prep", d.path, d.mode, d.uid, d.gid, d.kind);
    if (plan.hook) {
      rec("hook", plan.hook.path);
      for (const [k, v] of Object.entries(plan.hook.env)) rec("hookenv", `${k}=${v}`);
    }
    rec("sharelock", plan.shareLock);
    rec("rootfs", plan.rootfs);
    for (const m of plan.mounts) {
      switch (m.kind) {
        case "bind": rec("bind", m.source, m.target, m.flags.join(",")); break;
        case "fs": rec("fs", m.fstype, m.source, m.target, m.flags.join(","), m.data); break;
        case "mknod": rec("mknod", m.target, m.major, m.minor, m.mode); break;
        // symlinkat() is relative to the new root: no leading slash.
        case "symlink": rec("symlink", m.linkTarget, m.target.replace(/^\/+/, "")); break;
        case "mask": rec("mask", m.target); break;
        case "readonly": rec("readonly", m.target); break;
        case "rootro": rec("rootro", m.flags.join(",")); break;
      }
    }
    identity(rec, plan);
    if (plan.subreaper) rec("subreaper");
    if (plan.seccomp) rec("seccomp", Buffer.from(plan.seccomp).toString("hex"));
    program(rec, plan);
    rec("status", plan.statusFile);
    if (plan.pause) rec("pause");
    if (plan.reaper) rec("reaper", plan.reaper);
  });
}

/** What the helper's stop verb needs: the job's bookkeeping and its cgroup. */
export interface StopPlan {
  job: JobBook;
  cgroup: CgroupLayout;
}

export function encodeStopPlan(plan: StopPlan): Buffer {
  return records((rec) => {
    job(rec, plan.job);
    cgroup(rec, plan.cgroup, true);
  });
}
