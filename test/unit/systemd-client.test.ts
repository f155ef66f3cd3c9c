// helper-c/systemd.c, the helper's D-Bus client of systemd, against a fake
// systemd on a Unix socket: what the client sends (every call's header and
// body, read as strictly as D-Bus marshals them) and what it does with each
// answer. Only the VM suite has a real systemd; this catches a marshalling or
// protocol regression on any machine with a C compiler. The driver
// (test/fixtures/systemd-driver.c) is built with the helper's compiler and
// flags (build/build.mjs's helperToolchain), the fake's socket and shorter
// bounds compiled in (-DSYSTEMD_SOCKET..., which the helper's build never sets).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { cgroupLayout, jobCgroupIn, scopeUnit, type Placement } from "../../src/plan/cgroup.ts";

const top = resolve(import.meta.dirname, "../..");
const { helperToolchain } = (await import(join(top, "build", "build.mjs"))) as { helperToolchain(gen: string): { cc: string; flags: string[] } };
const { writeWireHeader } = (await import(join(top, "build", "gen-wire.mjs"))) as { writeWireHeader(top: string, out: string): Promise<string> };

const work = mkdtempSync(join(tmpdir(), "bpm-dbus-"));
// At the file's end, whether the suite ran or was skipped.
after(() => rmSync(work, { recursive: true, force: true }));
const SOCKET = join(work, "systemd.sock");
// The bounds of one conversation (60 s and 20 s in the helper): short enough
// that a client that waits in vain fails the test in seconds, far enough
// apart that a stop held to the start's bound shows.
const START_BOUND_MS = 10_000;
const STOP_BOUND_MS = 1000;
const toolchain = helperToolchain(join(work, "gen"));
const noCompiler = spawnSync(toolchain.cc, ["--version"]).status === 0 ? false : `no C compiler (${toolchain.cc}) to build the driver of helper-c/systemd.c`;
// The hostile answers go to a driver built with AddressSanitizer and UBSan, where gcc has
// them (a dynamic glibc build: they take neither -static nor musl); elsewhere, to the plain one.
const SANITIZE = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"];
const probe = join(work, "probe");
const sanitized = spawnSync("gcc", [...SANITIZE, "-x", "c", "-o", probe, "-"], { input: "int main(void) { return 0; }\n" }).status === 0 && spawnSync(probe).status === 0;

// ---- D-Bus, little-endian, as the spec marshals it ----

type Value = number | bigint | string | boolean | Value[] | Variant;
interface Variant { sig: string; value: Value }

const METHOD_CALL = 1, METHOD_RETURN = 2, ERROR = 3, SIGNAL = 4;
const PATH = 1, INTERFACE = 2, MEMBER = 3, ERROR_NAME = 4, REPLY_SERIAL = 5, DESTINATION = 6, SIGNATURE = 8;
const ALIGN: Record<string, number> = { y: 1, g: 1, v: 1, b: 4, u: 4, s: 4, o: 4, a: 4, t: 8, "(": 8 };

/** Where the one complete type that begins at sig[i] ends. */
function typeEnd(sig: string, i: number): number {
  const c = sig[i];
  if (c === "a") return typeEnd(sig, i + 1);
  if (c !== "(") {
    assert.ok(c !== undefined && c in ALIGN, `a type this test knows in "${sig}"`);
    return i + 1;
  }
  let j = i + 1;
  while (sig[j] !== ")") j = typeEnd(sig, j);
  return j + 1;
}
function types(sig: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < sig.length; i = typeEnd(sig, i)) out.push(sig.slice(i, typeEnd(sig, i)));
  return out;
}

/** Reads values between at and end, refusing what systemd's sd-bus would refuse:
 * non-zero padding, an array whose elements overrun its length, a boolean not 0 or 1,
 * a string without its NUL. */
class Reader {
  private buf: Buffer;
  at: number;
  private end: number;
  constructor(buf: Buffer, at: number, end: number) {
    this.buf = buf;
    this.at = at;
    this.end = end;
  }
  private take(n: number, what: string): number {
    assert.ok(this.at + n <= this.end, `${what} at byte ${this.at} runs past its end (${this.end})`);
    this.at += n;
    return this.at - n;
  }
  align(n: number) {
    while (this.at % n) {
      const at = this.take(1, "padding");
      assert.equal(this.buf[at], 0, `padding at byte ${at} is zero`);
    }
  }
  private text(n: number): string {
    const at = this.take(n + 1, "a string");
    assert.equal(this.buf[at + n], 0, "a string ends in NUL");
    const s = this.buf.toString("utf8", at, at + n);
    assert.ok(!s.includes("\0"), "no NUL inside a string");
    return s;
  }
  read(t: string): Value {
    this.align(ALIGN[t[0]!]!);
    switch (t[0]) {
      case "y": return this.buf[this.take(1, "a byte")]!;
      case "b": {
        const v = this.buf.readUInt32LE(this.take(4, "a boolean"));
        assert.ok(v === 0 || v === 1, `a boolean is 0 or 1, not ${v}`);
        return v === 1;
      }
      case "u": return this.buf.readUInt32LE(this.take(4, "a uint32"));
      case "t": return this.buf.readBigUInt64LE(this.take(8, "a uint64"));
      case "s": case "o": return this.text(this.buf.readUInt32LE(this.take(4, "a string's length")));
      case "g": return this.text(this.buf[this.take(1, "a signature's length")]!);
      case "v": {
        const sig = this.read("g") as string;
        assert.equal(types(sig).length, 1, `a variant holds one type, not "${sig}"`);
        return { sig, value: this.read(sig) };
      }
      case "(": return types(t.slice(1, -1)).map((m) => this.read(m));
      case "a": {
        const length = this.buf.readUInt32LE(this.take(4, "an array's length"));
        this.align(ALIGN[t[1]!]!);
        const end = this.at + length;
        assert.ok(end <= this.end, `array ${t} of ${length} bytes runs past its end`);
        const out: Value[] = [];
        while (this.at < end) out.push(this.read(t.slice(1)));
        assert.equal(this.at, end, `array ${t} ends where its length says`);
        return out;
      }
    }
    throw new Error(`type ${t}`);
  }
}

class Writer {
  bytes: number[] = [];
  align(n: number) {
    while (this.bytes.length % n) this.bytes.push(0);
  }
  private u32(v: number) {
    this.align(4);
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.bytes.push(...b);
  }
  private text(s: string, length: "u32" | "u8") {
    const b = Buffer.from(s);
    if (length === "u32") this.u32(b.length);
    else this.bytes.push(b.length);
    for (const byte of b) this.bytes.push(byte);
    this.bytes.push(0);
  }
  write(t: string, v: Value) {
    this.align(ALIGN[t[0]!]!);
    switch (t[0]) {
      case "y": this.bytes.push(v as number); return;
      case "b": this.u32(v ? 1 : 0); return;
      case "u": this.u32(v as number); return;
      case "t": {
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(v as bigint);
        this.bytes.push(...b);
        return;
      }
      case "s": case "o": this.text(v as string, "u32"); return;
      case "g": this.text(v as string, "u8"); return;
      case "v": {
        const { sig, value } = v as Variant;
        this.write("g", sig);
        this.write(sig, value);
        return;
      }
      case "(": types(t.slice(1, -1)).forEach((m, i) => this.write(m, (v as Value[])[i]!)); return;
      case "a": {
        this.u32(0);
        const lengthAt = this.bytes.length - 4;
        this.align(ALIGN[t[1]!]!);
        const start = this.bytes.length;
        for (const e of v as Value[]) this.write(t.slice(1), e);
        const b = Buffer.alloc(4);
        b.writeUInt32LE(this.bytes.length - start);
        this.bytes.splice(lengthAt, 4, ...b);
        return;
      }
    }
    throw new Error(`type ${t}`);
  }
}

interface Message {
  type: number;
  flags: number;
  serial: number;
  /** The header fields by code, each the variant it was sent as. */
  fields: Record<number, Variant>;
  member: string | undefined;
  body: Value[];
  /** When the fake had all of it (performance.now()). */
  received: number;
}

/** The message at the start of buf and its length, or null while it is incomplete. */
function parseMessage(buf: Buffer): { message: Message; length: number } | null {
  if (buf.length < 16) return null;
  assert.equal(String.fromCharCode(buf[0]!), "l", "the client writes in this machine's (little-endian) byte order");
  const bodyAt = Math.ceil((16 + buf.readUInt32LE(12)) / 8) * 8;
  const length = bodyAt + buf.readUInt32LE(4);
  if (buf.length < length) return null;
  assert.equal(buf[3], 1, "D-Bus protocol version 1");
  const head = new Reader(buf, 12, bodyAt);
  const fields = Object.fromEntries((head.read("a(yv)") as [number, Variant][]).map(([code, v]) => [code, v])) as Record<number, Variant>;
  head.align(8);
  assert.equal(head.at, bodyAt, "the body starts right after the header fields, 8-aligned");
  const signature = fields[SIGNATURE];
  assert.ok(!signature || signature.sig === "g", "the body's signature is a signature");
  const body = new Reader(buf, bodyAt, length);
  const values = types((signature?.value as string | undefined) ?? "").map((t) => body.read(t));
  assert.equal(body.at, length, "the body is as long as the header says");
  const member = fields[MEMBER]?.value as string | undefined;
  return { message: { type: buf[1]!, flags: buf[2]!, serial: buf.readUInt32LE(8), fields, member, body: values, received: performance.now() }, length };
}

let fakeSerial = 1000;
function message(type: number, fields: [number, string, Value][], signature = "", body: Value[] = []): Buffer {
  const b = new Writer();
  types(signature).forEach((t, i) => b.write(t, body[i]!));
  const w = new Writer();
  for (const v of ["l".charCodeAt(0), type, 0, 1]) w.write("y", v);
  w.write("u", b.bytes.length);
  w.write("u", fakeSerial++);
  w.write("a(yv)", [...fields, ...(signature ? [[SIGNATURE, "g", signature] as [number, string, Value]] : [])].map(([code, sig, value]) => [code, { sig, value }]));
  w.align(8);
  return Buffer.from([...w.bytes, ...b.bytes]);
}
const methodReturn = (call: Message, signature = "", body: Value[] = []) => message(METHOD_RETURN, [[REPLY_SERIAL, "u", call.serial]], signature, body);
const errorReply = (call: Message, name: string, text: string) => message(ERROR, [[ERROR_NAME, "s", name], [REPLY_SERIAL, "u", call.serial]], "s", [text]);
const MANAGER = "org.freedesktop.systemd1.Manager";
/** The signal systemd's manager sends every client on its private socket when a job of its ends. */
const jobRemoved = (id: number, job: string, unit: string, result: string) =>
  message(SIGNAL, [[PATH, "o", "/org/freedesktop/systemd1"], [INTERFACE, "s", MANAGER], [MEMBER, "s", "JobRemoved"]], "uoss", [id, job, unit, result]);

/** A call of systemd's manager object: its header fields, that it wants a reply, and its arguments. */
function assertCall(m: Message, iface: string, member: string, signature: string, body: Value[]) {
  assert.equal(m.type, METHOD_CALL, `${member}: a method call`);
  assert.equal(m.flags, 0, `${member}: one that wants its reply`);
  assert.deepEqual(m.fields, {
    [PATH]: { sig: "o", value: "/org/freedesktop/systemd1" },
    [INTERFACE]: { sig: "s", value: iface },
    [MEMBER]: { sig: "s", value: member },
    [DESTINATION]: { sig: "s", value: "org.freedesktop.systemd1" },
    ...(signature ? { [SIGNATURE]: { sig: "g", value: signature } } : {}),
  }, `${member}'s header`);
  assert.deepEqual(m.body, body, `${member}'s arguments`);
}
/** The nudge: a Ping (org.freedesktop.DBus.Peer, which systemd answers), no arguments. */
const assertPing = (m: Message) => assertCall(m, "org.freedesktop.DBus.Peer", "Ping", "", []);

// ---- the fake systemd ----

/** The fake's end of one connection: systemd's private socket as the client meets it. */
class Peer {
  private buf = Buffer.alloc(0);
  private closed = false;
  private wake = () => {};
  private serials = new Set<number>();
  private sock: Socket;
  constructor(sock: Socket) {
    this.sock = sock;
    sock.on("data", (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    sock.on("close", () => {
      this.closed = true;
      this.wake();
    });
    sock.on("error", () => {}); // the client's hang-up: seen as close
  }
  /** take()'s first answer as bytes arrive; closed() once the client has hung up. */
  private async until<T>(what: string, take: () => T | null, closed = (): T => assert.fail(`the client hung up while the fake systemd waited for ${what}`)): Promise<T> {
    for (;;) {
      const v = take();
      if (v !== null) return v;
      if (this.closed) return closed();
      await new Promise<void>((r) => (this.wake = r));
    }
  }
  private line(what: string): Promise<string> {
    return this.until(what, () => {
      const i = this.buf.indexOf("\r\n");
      if (i < 0) return null;
      const line = this.buf.toString("latin1", 0, i);
      this.buf = this.buf.subarray(i + 2);
      return line;
    });
  }
  private take(): Message | null {
    const p = parseMessage(this.buf);
    if (!p) return null;
    this.buf = this.buf.subarray(p.length);
    assert.ok(p.message.serial > 0 && !this.serials.has(p.message.serial), `each message has a serial of its own (${p.message.serial})`);
    this.serials.add(p.message.serial);
    return p.message;
  }
  /** SASL as systemd's private socket does it: a NUL, AUTH EXTERNAL with the client's uid in hex, OK, BEGIN. */
  async auth() {
    const uid = Buffer.from(String(process.getuid!())).toString("hex");
    assert.equal(await this.line("AUTH"), `\0AUTH EXTERNAL ${uid}`, "a NUL, then AUTH EXTERNAL with our uid");
    this.send(Buffer.from("OK 0123456789abcdef0123456789abcdef\r\n"));
    assert.equal(await this.line("BEGIN"), "BEGIN");
  }
  /** The next message as it came, Pings included. */
  next(what: string): Promise<Message> {
    return this.until(what, () => this.take());
  }
  /** The next call other than a Ping; a Ping on the way is answered, as systemd answers one. */
  async call(member: string): Promise<Message> {
    for (;;) {
      const m = await this.next(member);
      if (m.member !== "Ping") {
        assert.equal(m.member, member, `the client's next call`);
        return m;
      }
      assertPing(m);
      this.send(methodReturn(m));
    }
  }
  send(...messages: Buffer[]) {
    if (!this.sock.destroyed) this.sock.write(Buffer.concat(messages));
  }
  end() {
    this.sock.end();
  }
  /** Waits for the client to hang up, refusing any call but a Ping meanwhile (answered only if answerPings). */
  async hungUp(answerPings = true) {
    for (;;) {
      const m = await this.until("the client to hang up", () => this.take(), () => null);
      if (!m) {
        assert.equal(this.buf.length, 0, "the client hung up between messages");
        return;
      }
      assert.equal(m.member, "Ping", `no call after the conversation's last (${m.member})`);
      if (answerPings) this.send(methodReturn(m));
    }
  }
}

interface Run {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** scope_start's return value and reason. */
  r: number | undefined;
  why: string | undefined;
  ms: number;
}

function runDriver(exe: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const began = performance.now();
    // A sanitizer's report goes to stderr, which the driver otherwise leaves empty. Leaks
    // too: every path out of scope_start frees what the conversation took.
    const env = { ...process.env, ASAN_OPTIONS: "detect_leaks=1", UBSAN_OPTIONS: "print_stacktrace=1" };
    const child = spawn(exe, args, { stdio: ["ignore", "pipe", "pipe"], env, timeout: 30_000 });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const r = /^r=(-?\d+)$/m.exec(stdout)?.[1];
      resolve({ code, signal, stdout, stderr, r: r === undefined ? undefined : Number(r), why: /^why=(.*)$/m.exec(stdout)?.[1], ms: performance.now() - began });
    });
  });
}

/** Runs the driver while the fake systemd serves its one connection with script; the script's
 * assertions fail the test, with what the driver said. */
async function converse(script: (peer: Peer) => Promise<void>, args: string[], exe = driver): Promise<Run> {
  rmSync(SOCKET, { force: true });
  const server = createServer({ allowHalfOpen: false });
  const scripts: Promise<void>[] = [];
  const sockets: Socket[] = [];
  server.on("connection", (sock) => {
    sockets.push(sock);
    const done = script(new Peer(sock));
    done.catch(() => sock.destroy()); // a failed script hangs up at once (the client need not wait out its bound); awaited below
    scripts.push(done);
  });
  await new Promise<void>((res, rej) => server.once("error", rej).listen(SOCKET, res));
  try {
    const run = await runDriver(exe, args);
    const said = `the driver exited ${run.code ?? run.signal} after ${Math.round(run.ms)} ms, saying: ${run.stdout}${run.stderr}`;
    assert.equal(scripts.length, 1, `one connection to systemd; ${said}`);
    await scripts[0]!.catch((e: Error) => assert.fail(`fake systemd: ${e.message}\n${said}`));
    return run;
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
}

// ---- what bpm asks for ----

const unit = scopeUnit("/var/vcap", "bpm-web");
const placement: Placement = {
  version: 2, manager: "systemd", delegable: null, why: null,
  base: { memory: "/sys/fs/cgroup", pids: "/sys/fs/cgroup", cpu: "/sys/fs/cgroup", cpuacct: "/sys/fs/cgroup" },
};
// Limits whose properties need all 64 bits of a 't': 5 GiB of memory, and TasksMax
// infinity (no pids limit).
const properties = cgroupLayout("/sys/fs/cgroup", jobCgroupIn(placement, "/var/vcap", "bpm-web"), { memoryBytes: 5 * 2 ** 30, cpus: 0.5, cpuWeight: 50 }).scope!.properties;
const PID = 4242;
const startArgs = ["start", unit, String(PID), ...properties.flat()];
/** StartTransientUnit(name, mode, properties a(sv), auxiliary units a(sa(sv))) as bpm asks for its scope:
 * every property with its type, and the job's init as PIDs. */
const startBody: Value[] = [
  unit,
  "fail",
  [
    ...properties.map(([name, type, value]): Value => [name, { sig: type, value: type === "b" ? value === "true" : type === "t" ? BigInt(value) : value }]),
    ["PIDs", { sig: "au", value: [PID] }],
  ],
  [],
];
const assertStart = (m: Message) => assertCall(m, MANAGER, "StartTransientUnit", "ssa(sv)a(sa(sv))", startBody);
const JOB = "/org/freedesktop/systemd1/job/77";
const STOP_JOB = "/org/freedesktop/systemd1/job/78";

let driver = "", sanitizedDriver = "";

describe("systemd's D-Bus client (helper-c/systemd.c) against a fake systemd", { skip: noCompiler, timeout: 120_000 }, () => {
  before(async () => {
    await writeWireHeader(top, join(work, "gen"));
    const sources = [join(top, "test", "fixtures", "systemd-driver.c"), join(top, "helper-c", "systemd.c"), join(top, "helper-c", "util.c")];
    const defines = [`-I${join(top, "helper-c")}`, `-DSYSTEMD_SOCKET=${JSON.stringify(SOCKET)}`, `-DSTART_TIMEOUT_MS=${START_BOUND_MS}ULL`, `-DSTOP_TIMEOUT_MS=${STOP_BOUND_MS}ULL`];
    driver = join(work, "driver");
    spawnOrThrow(toolchain.cc, [...toolchain.flags, ...defines, "-o", driver, ...sources]);
    sanitizedDriver = sanitized ? join(work, "driver-sanitized") : driver;
    if (sanitized) spawnOrThrow("gcc", [...SANITIZE, `-I${join(work, "gen")}`, ...defines, "-o", sanitizedDriver, ...sources]);
  });

  it("bpm's scope properties span every type the client marshals (s, b, t)", () => {
    assert.deepEqual([...new Set(properties.map(([, type]) => type))].sort(), ["b", "s", "t"]);
  });

  it("starts a scope: StartTransientUnit with bpm's properties and the job's pid, then waits for its own job's JobRemoved", async () => {
    const run = await converse(async (peer) => {
      await peer.auth();
      const start = await peer.call("StartTransientUnit");
      assertStart(start);
      // Another job of systemd's ends first, failed: the client waits for its own.
      peer.send(methodReturn(start, "o", [JOB]), jobRemoved(76, "/org/freedesktop/systemd1/job/76", "other.service", "failed"), jobRemoved(77, JOB, unit, "done"));
      await peer.hungUp();
    }, startArgs);
    assert.deepEqual([run.code, run.r, run.why], [0, 0, ""]);
  });

  it("takes its job's JobRemoved that came before the reply naming the job", async () => {
    const run = await converse(async (peer) => {
      await peer.auth();
      const start = await peer.call("StartTransientUnit");
      peer.send(jobRemoved(77, JOB, unit, "done"), methodReturn(start, "o", [JOB]));
      await peer.hungUp();
    }, startArgs);
    assert.deepEqual([run.code, run.r, run.why], [0, 0, ""]);
  });

  for (const result of ["failed", "timeout"]) {
    it(`fails a start whose job ends "${result}", naming the scope`, async () => {
      const run = await converse(async (peer) => {
        await peer.auth();
        const start = await peer.call("StartTransientUnit");
        peer.send(methodReturn(start, "o", [JOB]), jobRemoved(77, JOB, unit, result));
        await peer.hungUp();
      }, startArgs);
      assert.deepEqual([run.code, run.r], [1, -1]);
      assert.equal(run.why, `systemd could not start scope ${unit} (job ${result})`);
    });
  }

  it("fails a start systemd refuses, with systemd's error and the scope's name, asking once", async () => {
    const run = await converse(async (peer) => {
      await peer.auth();
      const start = await peer.call("StartTransientUnit");
      peer.send(errorReply(start, "org.freedesktop.DBus.Error.AccessDenied", "Access denied"));
      await peer.hungUp();
    }, startArgs);
    assert.deepEqual([run.code, run.r], [1, -1]);
    assert.equal(run.why, `systemd did not start scope ${unit}: org.freedesktop.DBus.Error.AccessDenied: Access denied`);
  });

  it("stops a scope of its name left by an earlier start (UnitExists), forgets its failure, and asks again", async () => {
    const run = await converse(async (peer) => {
      await peer.auth();
      const first = await peer.call("StartTransientUnit");
      assertStart(first);
      peer.send(errorReply(first, "org.freedesktop.systemd1.UnitExists", `Unit ${unit} was already loaded or has a fragment file.`));
      const stop = await peer.call("StopUnit");
      assertCall(stop, MANAGER, "StopUnit", "ss", [unit, "replace"]);
      peer.send(methodReturn(stop, "o", [STOP_JOB]), jobRemoved(78, STOP_JOB, unit, "done"));
      const reset = await peer.call("ResetFailedUnit");
      assertCall(reset, MANAGER, "ResetFailedUnit", "s", [unit]);
      peer.send(methodReturn(reset));
      const again = await peer.call("StartTransientUnit");
      assertStart(again);
      peer.send(methodReturn(again, "o", [JOB]), jobRemoved(79, JOB, unit, "done"));
      await peer.hungUp();
    }, startArgs);
    assert.deepEqual([run.code, run.r, run.why], [0, 0, ""]);
  });

  it("nudges a systemd that leaves its first call unanswered: a Ping after 100 ms", async () => {
    let waited = 0;
    const run = await converse(async (peer) => {
      await peer.auth();
      const start = await peer.call("StartTransientUnit");
      // As systemd was seen doing: the call read with the BEGIN, and left until more bytes come.
      const ping = await peer.next("the client's nudge (a Ping)");
      assertPing(ping);
      waited = ping.received - start.received;
      peer.send(methodReturn(start, "o", [JOB]), methodReturn(ping), jobRemoved(77, JOB, unit, "done"));
      await peer.hungUp();
    }, startArgs);
    assert.deepEqual([run.code, run.r, run.why], [0, 0, ""]);
    assert.ok(waited >= 80, `the Ping came ${Math.round(waited)} ms after the call, not before 100 ms of silence`);
  });

  it("stops a scope: StopUnit, waits for its job's JobRemoved, then ResetFailedUnit", async () => {
    const run = await converse(async (peer) => {
      await peer.auth();
      const stop = await peer.call("StopUnit");
      assertCall(stop, MANAGER, "StopUnit", "ss", [unit, "replace"]);
      peer.send(methodReturn(stop, "o", [STOP_JOB]));
      // The job has not ended: a client that waits for it says nothing but a nudge meanwhile.
      const ping = await peer.next("the client waiting for StopUnit's job");
      assert.equal(ping.member, "Ping", "nothing but a Ping before the stop's job has ended");
      peer.send(methodReturn(ping), jobRemoved(78, STOP_JOB, unit, "done"));
      const reset = await peer.call("ResetFailedUnit");
      assertCall(reset, MANAGER, "ResetFailedUnit", "s", [unit]);
      peer.send(methodReturn(reset));
      await peer.hungUp();
    }, ["stop", unit]);
    assert.deepEqual([run.code, run.stdout], [0, "stopped\n"]);
  });

  it("gives up a stop that systemd never answers once its bound has passed", async () => {
    const run = await converse(async (peer) => {
      await peer.auth();
      await peer.call("StopUnit");
      await peer.hungUp(false);
    }, ["stop", unit]);
    assert.deepEqual([run.code, run.stdout], [0, "stopped\n"]);
    assert.ok(run.ms >= STOP_BOUND_MS * 0.95 && run.ms < STOP_BOUND_MS + 4000, `waited its bound of ${STOP_BOUND_MS} ms, no longer: ${Math.round(run.ms)} ms`);
  });

  it("reports a systemd that is not there, and stops nothing", async () => {
    rmSync(SOCKET, { force: true });
    const start = await runDriver(driver, startArgs);
    assert.deepEqual([start.code, start.r, start.why], [1, -1, `connect to systemd at ${SOCKET}: No such file or directory`]);
    const stop = await runDriver(driver, ["stop", unit]);
    assert.deepEqual([stop.code, stop.stdout], [0, "stopped\n"]);
  });

  it("acts only on the names bpm gives a job's scope (scope_name_ok)", async () => {
    const ours = [unit, scopeUnit("/srv/test", "bpm-a.2ename.worker"), scopeUnit("/var/vcap", `bpm-${"x".repeat(300)}`)];
    const others = ["sshd.service", "runc-bpm-web.service", "runc-bpm-a/b.scope", "../runc-bpm-web.scope", "runc-web.scope", `runc-bpm-${"x".repeat(250)}.scope`];
    const run = await runDriver(driver, ["names", ...ours, ...others]);
    assert.equal(run.stdout, [...ours.map((u) => `1 ${u}`), ...others.map((u) => `0 ${u}`)].join("\n") + "\n");
  });

  describe("hostile answers: refused with a reason, no crash", () => {
    const plain = sanitized ? "" : " (no sanitizer here: a plain build)";
    /** A copy of message m with the u32 at byte `at` replaced by v. */
    const patched = (m: Buffer, at: number, v: number) => {
      const b = Buffer.from(m);
      b.writeUInt32LE(v, at);
      return b;
    };
    const protocolError = /^systemd did not start scope runc-bpm-web\.scope: reading systemd's answer: Protocol error$/;
    const cases: { name: string; answer: (call: Message) => Buffer; hangUp?: boolean; why: RegExp }[] = [
      // Its first field (code, signature "s") fills bytes 16-19; its string's length is at 20:
      // one that reaches far past the client's buffer, where an unchecked read would fault.
      { name: "a header field's string longer than the header", answer: (c) => patched(message(METHOD_RETURN, [[MEMBER, "s", "x"], [REPLY_SERIAL, "u", c.serial]]), 20, 0xfffffff0), why: protocolError },
      { name: "a huge header-field array", answer: (c) => patched(methodReturn(c, "o", [JOB]), 12, 0xfffffff0), why: protocolError },
      { name: "a body length beyond D-Bus's bound", answer: (c) => patched(methodReturn(c, "o", [JOB]), 4, 0xffffffff), why: protocolError },
      { name: "the wrong byte order", answer: (c) => Buffer.concat([Buffer.from("B"), methodReturn(c, "o", [JOB]).subarray(1)]), why: protocolError },
      { name: "a message cut short by the end of the connection", answer: (c) => methodReturn(c, "o", [JOB]).subarray(0, 24), hangUp: true, why: /: reading systemd's answer: Connection reset by peer$/ },
      {
        name: "a job path longer than the body",
        answer: (c) => {
          const m = methodReturn(c, "o", [JOB]);
          return patched(m, m.length - Buffer.byteLength(JOB) - 5, 1000); // the body: the path's length, the path, its NUL
        },
        why: /: systemd's answer names no job it queued$/,
      },
      { name: "a reply without the job", answer: (c) => methodReturn(c), why: /: systemd's answer names no job it queued$/ },
    ];
    for (const c of cases) {
      it(c.name + plain, async () => {
        const run = await converse(async (peer) => {
          await peer.auth();
          peer.send(c.answer(await peer.call("StartTransientUnit")));
          // Left open (unless cut short): the client refuses the answer itself, not the hang-up.
          if (c.hangUp) peer.end();
          await peer.hungUp(false);
        }, startArgs, sanitizedDriver);
        assert.equal(run.stderr, "", "no sanitizer report");
        assert.deepEqual([run.code, run.r], [1, -1]);
        assert.match(run.why ?? "", c.why);
      });
    }

    it("a message larger than the client keeps (a 300 KiB signal) is read past" + plain, async () => {
      const run = await converse(async (peer) => {
        await peer.auth();
        const start = await peer.call("StartTransientUnit");
        const big = message(SIGNAL, [[PATH, "o", "/org/freedesktop/systemd1"], [INTERFACE, "s", MANAGER], [MEMBER, "s", "UnitNew"]], "s", ["x".repeat(300 << 10)]);
        peer.send(big, methodReturn(start, "o", [JOB]), jobRemoved(77, JOB, unit, "done"));
        await peer.hungUp();
      }, startArgs, sanitizedDriver);
      assert.equal(run.stderr, "", "no sanitizer report");
      assert.deepEqual([run.code, run.r, run.why], [0, 0, ""]);
    });
  });
});

function spawnOrThrow(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.error?.message ?? r.stderr}`);
}
