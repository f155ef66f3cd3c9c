// The plan on the wire to the helper: "BPMPLAN3 <kind> <length>\n", then
// records of NUL-terminated fields (a tag, then a fixed number of arguments
// per tag). src/plan/wire.ts says which kinds of plan carry each record: the
// helper refuses any other, and each function below is typed to write only
// the records of the kinds it serves.
import { capabilityNumber } from "../config/capabilities.ts";
import { UserError } from "../lifecycle/errors.ts";
import { MAX_PLAN_BYTES, PLAN_RECORDS, PLAN_VERSION, type PlanKind, type PlanTag, type TagsOf } from "./wire.ts";
import type { JobBook, LogBook, LogNeed } from "./book.ts";
import type { CgroupLayout } from "./cgroup.ts";
import type { StartPlan } from "./plan.ts";
import { recordBody } from "./record.ts";
import type { EnterPlan } from "./enter.ts";

/** Exactly N fields. */
type Fields<N extends number, Acc extends (string | number)[] = []> = Acc["length"] extends N ? Acc : Fields<N, [...Acc, string | number]>;
/** The records that plans of every kind in K carry, one writer per tag, each taking as many fields as
 * src/plan/wire.ts says ("end" is written by records()). */
type Rec<K extends PlanKind> = { readonly [T in Exclude<TagsOf<K>, "end">]: (...fields: Fields<(typeof PLAN_RECORDS)[T]["fields"]>) => void };

/** Collects a plan's records and frames them; only the records of its kind can be written. */
function records<K extends PlanKind>(kind: K, fill: (rec: Rec<K>) => void): Buffer {
  const fields: string[] = [];
  const write = (tag: string, args: (string | number)[]) => {
    for (const f of [tag, ...args]) {
      const s = String(f);
      if (s.includes("\0")) throw new Error(`plan field for ${tag} contains a NUL byte`);
      fields.push(s);
    }
  };
  const tags = (Object.keys(PLAN_RECORDS) as PlanTag[]).filter((t) => t !== "end" && (PLAN_RECORDS[t].kinds as readonly PlanKind[]).includes(kind));
  fill(Object.fromEntries(tags.map((t) => [t, (...args: (string | number)[]) => write(t, args)])) as Rec<K>);
  fields.push("end");
  const body = Buffer.from(fields.join("\0") + "\0");
  // The helper would refuse it, and its record could not be read back.
  if (body.length > MAX_PLAN_BYTES) {
    throw new UserError(`the process's environment and arguments are too large to run (${body.length} bytes with everything bpm passes; at most ${MAX_PLAN_BYTES})`);
  }
  return Buffer.concat([Buffer.from(`${PLAN_VERSION} ${kind} ${body.length}\n`), body]);
}

/** bpm.log, and the lines the CLI has waiting (src/runtime/bpmlog.ts), which the helper writes first. */
function bpmLog(rec: Rec<"launch" | "refusal" | "stop" | "log">, j: LogBook, logLines: readonly string[]): void {
  rec.bpmlog(j.bpmLog, j.logBase);
  rec.logowner(j.logOwner.uid, j.logOwner.gid);
  if (logLines.length > 0) rec.loglines(logLines.join(""));
}

/** The job's bookkeeping, for every command that takes its lock and reads its state. */
function book(rec: Rec<"launch" | "refusal" | "stop">, j: JobBook, logLines: readonly string[]): void {
  rec.lock(j.lock);
  rec.state(j.stateFile, j.pidfile);
  bpmLog(rec, j, logLines);
  rec.event(j.event, j.errorPrefix);
}

/** The job's cgroup as it is removed (by a stop, or a launch undoing itself): directories, kill file, scope. */
function cgroupToRemove(rec: Rec<"launch" | "stop">, cg: CgroupLayout): void {
  for (const d of cg.dirs) rec.cgdir(d);
  for (const d of cg.leftovers) rec.cgleftover(d);
  if (cg.killFile) rec.cgkill(cg.killFile);
  if (cg.scope) rec.cgscope(cg.scope.unit);
}

/** What a launch makes of it besides: the controllers, limits and scope properties, where it counts OOM kills, and what the init joins. */
function cgroupToMake(rec: Rec<"launch">, cg: CgroupLayout): void {
  for (const d of cg.enable) rec.cgenable(d, cg.controllers);
  for (const l of cg.limits) rec.cglimit(l.file, l.value, l.optional ? "optional" : "required");
  rec.cgoom(cg.oomFile);
  if (cg.parentOomFile) rec.cgparentoom(cg.parentOomFile);
  for (const [name, type, value] of cg.scope?.properties ?? []) rec.cgprop(name, type, value);
  for (const p of cg.procs) rec.cgroup(p);
}

/** Who the job's program runs as: user, groups, capabilities, rlimits, no_new_privs, the seccomp program (hex). */
function identity(rec: Rec<"launch" | "enter">, p: Pick<EnterPlan, "user" | "capabilities" | "rlimits" | "noNewPrivs" | "seccomp">): void {
  rec.user(p.user.uid, p.user.gid);
  for (const g of p.user.groups) rec.group(g);
  let caps = 0n;
  for (const c of p.capabilities) caps |= 1n << BigInt(capabilityNumber(c)!);
  rec.caps(caps.toString());
  for (const r of p.rlimits) rec.rlimit(r.name, r.soft, r.hard);
  if (p.noNewPrivs) rec.nonewprivs();
  if (p.seccomp) rec.seccomp(p.seccomp);
}

/** What it runs, where, with what environment. */
function program(rec: Rec<"launch" | "enter">, p: Pick<EnterPlan, "cwd" | "executable" | "args" | "env">): void {
  rec.cwd(p.cwd);
  rec.exe(p.executable);
  rec.arg(p.executable);
  for (const a of p.args) rec.arg(a);
  for (const [k, v] of Object.entries(p.env)) rec.env(`${k}=${v}`);
}

/** The plan for the helper's shell verb: join, enter, become the job, run the program. */
export function encodeEnterPlan(plan: EnterPlan): Buffer {
  return records("enter", (rec) => {
    for (const p of plan.cgroupProcs) rec.cgroup(p);
    for (const ns of plan.namespaces) rec.ns(ns);
    identity(rec, plan);
    program(rec, plan);
    rec.target(plan.target);
  });
}

/** The plan for the helper's start and launch verbs: a launch, or a refusal of one. */
export function encodePlan(plan: StartPlan, logLines: readonly string[]): Buffer {
  if (plan.kind === "refusal") {
    return records("refusal", (rec) => {
      book(rec, plan.job, logLines);
      rec.refuse(plan.why);
    });
  }
  return records("launch", (rec) => {
    rec.mode(plan.mode);
    book(rec, plan.job, logLines);
    if (plan.job.logs) rec.logs(plan.job.logs.stdout, plan.job.logs.stderr);
    // What the helper records once the job runs (start, and run while it runs), for every later command.
    rec.record(recordBody(plan));
    cgroupToRemove(rec, plan.cgroup);
    cgroupToMake(rec, plan.cgroup);
    for (const ns of plan.namespaces) rec.ns(ns);
    for (const d of plan.preps) rec.prep(d.path, d.mode, d.uid, d.gid, d.kind);
    if (plan.hook) {
      rec.hook(plan.hook.path);
      for (const [k, v] of Object.entries(plan.hook.env)) rec.hookenv(`${k}=${v}`);
    }
    rec.sharelock(plan.shareLock);
    rec.rootfs(plan.rootfs);
    for (const m of plan.mounts) {
      switch (m.kind) {
        case "bind": rec.bind(m.source, m.target, m.flags.join(",")); break;
        case "fs": rec.fs(m.fstype, m.source, m.target, m.flags.join(","), m.data); break;
        case "mknod": rec.mknod(m.target, m.major, m.minor, m.mode); break;
        // symlinkat() is relative to the new root: no leading slash.
        case "symlink": rec.symlink(m.linkTarget, m.target.replace(/^\/+/, "")); break;
        case "mask": rec.mask(m.target); break;
        case "readonly": rec.readonly(m.target); break;
        case "rootro": rec.rootro(m.flags.join(",")); break;
      }
    }
    identity(rec, { ...plan, seccomp: plan.seccomp ? Buffer.from(plan.seccomp).toString("hex") : null });
    program(rec, plan);
    if (plan.subreaper) rec.subreaper();
    rec.status(plan.statusFile);
    if (plan.pause) rec.pause();
    if (plan.reaper) rec.reaper(plan.reaper);
  });
}

/** What the helper's stop verb needs: the job's bookkeeping and its cgroup. */
export interface StopPlan {
  job: JobBook;
  cgroup: CgroupLayout;
}

export function encodeStopPlan(plan: StopPlan, logLines: readonly string[]): Buffer {
  return records("stop", (rec) => {
    book(rec, plan.job, logLines);
    if (plan.job.stopTiming) rec.stoptiming(plan.job.stopTiming.graceMs, plan.job.stopTiming.quitMs, plan.job.stopTiming.killMs);
    cgroupToRemove(rec, plan.cgroup);
  });
}

/** The plan for the helper's log verb: bpm.log, whether the command needs it, and the lines. */
export function encodeLogPlan(book: LogBook, need: LogNeed, logLines: readonly string[]): Buffer {
  return records("log", (rec) => {
    bpmLog(rec, book, logLines);
    rec.logneed(need);
  });
}
