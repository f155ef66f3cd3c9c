// Reads bpm.yml the way the original's YAML 1.1 decoder did, keeping the
// position of every value so that each problem names file:line:column.
import { readFileSync, statSync } from "node:fs";
import * as v from "valibot";
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { configSchema, KNOWN_KEYS, type JobConfig, type SchemaContext } from "./schema.ts";

/** How long monit lets a stop program run unless its control file says `with timeout N seconds`. */
export const MONIT_PROGRAM_TIMEOUT_MS = 30_000;
/** What a stop waits after QUIT before it kills (src/plan/book.ts STOP_TIMING.quitMs). */
const QUIT_WAIT_MS = 2_000;

export interface Problem {
  file: string;
  line: number;
  col: number;
  field: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.field ? p.field + ": " : ""}${p.message}`;
}

export class ConfigError extends Error {
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    super(problems.map(formatProblem).join("; "));
    this.problems = problems;
  }
}

export interface LoadedConfig {
  config: JobConfig;
  /** Unknown keys: ignored like the original did, but worth telling the author. */
  warnings: Problem[];
  /** Valid settings that need something outside bpm.yml (`bpm validate` prints them). */
  advice: Problem[];
}

// What each place in the document holds: text fields take the written text
// even when YAML reads it as a number or boolean (`args: [8080]`, `FOO: yes`).
type Spec = "text" | "value" | { map: Record<string, Spec>; known: string } | { list: Spec } | { values: Spec };
const VOLUME: Spec = { map: { path: "text" }, known: "volume" };
const PROCESS: Spec = {
  known: "process",
  map: {
    name: "text", executable: "text", workdir: "text", shutdown_signal: "text", shutdown_timeout: "text",
    args: { list: "text" }, env: { values: "text" }, capabilities: { list: "text" },
    hooks: { map: { pre_start: "text" }, known: "hooks" },
    limits: { map: { memory: "text" }, known: "limits" },
    additional_volumes: { list: VOLUME },
    unsafe: { map: { unrestricted_volumes: { list: VOLUME } }, known: "unsafe" },
  },
};
const TOP: Spec = { map: { processes: { list: PROCESS } }, known: "top" };

type Key = string | number;
export const fieldName = (path: readonly Key[]) =>
  path.map((k, i) => (typeof k === "number" ? `[${k}]` : i === 0 ? k : `.${k}`)).join("");

/** Generous for ERB-rendered files full of certificates, small enough to parse at once. */
export const MAX_CONFIG_BYTES = 2 << 20;
/** Alias expansions allowed in one file (a "billion laughs" file expands exponentially). */
const MAX_ALIASES = 100;
const MAX_DEPTH = 64;

/** A value for an error message: quoted, control characters escaped, long ones cut. */
export function shown(value: unknown): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 80 ? `${s.slice(0, 77)}..."` : s;
}

export function parseJobConfig(source: string, file: string, ctx: SchemaContext): LoadedConfig {
  const lines = new LineCounter();
  const at = (offset: number) => lines.linePos(Math.min(offset, source.length));
  const problem = (offset: number, field: string, message: string): Problem => ({ file, ...at(offset), field, message });
  if (source.includes("\0") || source.includes("\uFFFD")) {
    throw new ConfigError([{ file, line: 1, col: 1, field: "", message: "not a text file (it holds binary data)" }]);
  }
  let doc: Document;
  try {
    doc = parseDocument(source, { version: "1.1", uniqueKeys: true, lineCounter: lines, prettyErrors: false });
  } catch (e) {
    // The parser recurses: absurd nesting ends in a RangeError, not a parse error.
    throw new ConfigError([{ file, line: 1, col: 1, field: "", message: `invalid YAML: ${e instanceof RangeError ? "nested too deeply" : (e as Error).message}` }]);
  }

  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const what = e.code === "DUPLICATE_KEY" ? `duplicate key ${shown(keyAt(source, e.pos[0]))}`
          : /stack/i.test(e.message) ? "nested too deeply" : e.message.split("\n")[0];
        return problem(e.pos[0], "", `invalid YAML: ${what}`);
      }).filter((p, i, all) => all.findIndex((q) => q.message === p.message) === i),
    );
  }

  const offsets = new Map<string, number>();
  const warnings: Problem[] = [];
  let value: unknown;
  try {
    value = toPlain(doc, doc.contents as Node | null, TOP, [], offsets, (offset, path) =>
      warnings.push(problem(offset, fieldName(path), "unknown key, ignored")), { aliases: 0 });
  } catch (e) {
    if (!(e instanceof PlainError)) throw e;
    throw new ConfigError([problem(e.offset, e.field, e.message)]);
  }

  if (value !== null && (typeof value !== "object" || Array.isArray(value))) {
    throw new ConfigError([problem(0, "", `expected a map with a "processes" list, got ${Array.isArray(value) ? "a list" : shown(value)}`)]);
  }
  const result = v.safeParse(configSchema(ctx), value ?? {}, { abortPipeEarly: true });
  if (!result.success) {
    const problems = result.issues.map((issue) => {
      const path = (issue.path ?? []).map((p) => p.key as Key);
      return problem(nearestOffset(offsets, path), fieldName(path), issue.message);
    });
    problems.sort((a, b) => a.line - b.line || a.col - b.col);
    throw new ConfigError(problems);
  }
  return { config: result.output, warnings, advice: monitAdvice(result.output, (path) => problem(nearestOffset(offsets, path), fieldName(path), "")) };
}

/** A shutdown_timeout whose stop outlasts monit's default wait for a stop program. */
function monitAdvice(config: JobConfig, at: (path: Key[]) => Problem): Problem[] {
  const advice: Problem[] = [];
  config.processes.forEach((p, i) => {
    const ms = p.shutdown_timeout;
    if (ms === undefined || ms + QUIT_WAIT_MS <= MONIT_PROGRAM_TIMEOUT_MS) return;
    const seconds = Math.ceil(ms / 1000);
    advice.push({
      ...at(["processes", i, "shutdown_timeout"]),
      message: `${seconds} s plus 2 s after QUIT is longer than monit waits for a stop program (${MONIT_PROGRAM_TIMEOUT_MS / 1000} s): ` +
        `end the job's stop program line in its monit file with "with timeout ${seconds + 5} seconds"`,
    });
  });
  return advice;
}

export function loadJobConfig(file: string, ctx: SchemaContext): LoadedConfig {
  let source: string;
  try {
    const size = statSync(file).size;
    if (size > MAX_CONFIG_BYTES) {
      throw new ConfigError([{ file, line: 0, col: 0, field: "", message: `file is too large (${size} bytes; at most ${MAX_CONFIG_BYTES})` }]);
    }
    source = readFileSync(file, "utf8");
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new ConfigError([{ file, line: 0, col: 0, field: "", message: err.code === "ENOENT" ? "file not found" : err.message }]);
  }
  return parseJobConfig(source, file, ctx);
}

const keyAt = (source: string, offset: number) => /^[^:\n]*/.exec(source.slice(offset))![0].trim();

function nearestOffset(offsets: Map<string, number>, path: Key[]): number {
  for (let n = path.length; n >= 0; n--) {
    const off = offsets.get(fieldName(path.slice(0, n)));
    if (off !== undefined) return off;
  }
  return 0;
}

const isMergeKey = (n: unknown) => isScalar(n) && typeof n.value === "symbol";
const keyText = (n: Node | null) => (isScalar(n) ? String(n.source ?? n.value) : String(n));

/** A map's entries with YAML 1.1 merge keys applied, as the original's
 * decoder did: `<<: *base` (or a list of them) adds the keys the map does
 * not set itself; in a list, the first map that sets a key wins. */
function mapEntries(doc: Document, map: Node, path: Key[], count: { aliases: number }): { key: string; keyNode: Node | null; value: Node | null }[] {
  const resolve = (n: Node | null): Node | null => {
    if (!n || !isAlias(n)) return n;
    if (++count.aliases > MAX_ALIASES) throw new PlainError(n.range?.[0] ?? 0, fieldName(path), `more than ${MAX_ALIASES} YAML aliases`);
    return (n.resolve(doc) as Node | undefined) ?? null;
  };
  const own: { key: string; keyNode: Node | null; value: Node | null }[] = [];
  const merges: Node[] = [];
  for (const pair of (map as { items: unknown[] }).items) {
    if (!isPair(pair)) continue;
    const keyNode = pair.key as Node | null;
    if (isMergeKey(keyNode)) merges.push(pair.value as Node);
    else own.push({ key: keyText(keyNode), keyNode, value: pair.value as Node | null });
  }
  const seen = new Set(own.map((e) => e.key));
  for (const merge of merges) {
    const target = resolve(merge);
    for (const source of isSeq(target) ? target.items.map((n) => resolve(n as Node)) : [target]) {
      if (!isMap(source)) throw new PlainError(merge?.range?.[0] ?? 0, fieldName([...path, "<<"]), "a merge key (<<) takes a map or a list of maps");
      for (const entry of mapEntries(doc, source, path, count)) {
        if (seen.has(entry.key)) continue;
        seen.add(entry.key);
        own.push(entry);
      }
    }
  }
  return own;
}

class PlainError extends Error {
  readonly offset: number;
  readonly field: string;
  constructor(offset: number, field: string, message: string) {
    super(message);
    this.offset = offset;
    this.field = field;
  }
}

function toPlain(
  doc: Document,
  node: Node | null,
  spec: Spec | undefined,
  path: Key[],
  offsets: Map<string, number>,
  unknownKey: (offset: number, path: Key[]) => void,
  count: { aliases: number },
  depth = 0,
): unknown {
  const here = node?.range?.[0] ?? 0;
  if (depth > MAX_DEPTH) throw new PlainError(here, fieldName(path), `nested more than ${MAX_DEPTH} levels deep`);
  if (node && isAlias(node)) {
    if (++count.aliases > MAX_ALIASES) throw new PlainError(here, fieldName(path), `more than ${MAX_ALIASES} YAML aliases`);
    node = node.resolve(doc) ?? null;
  }
  if (!node) return null;
  if (node.range) offsets.set(fieldName(path), node.range[0]);
  const recurse = (child: Node | null, childSpec: Spec | undefined, key: Key) =>
    toPlain(doc, child, childSpec, [...path, key], offsets, unknownKey, count, depth + 1);

  if (isScalar(node)) {
    if (spec === "text") {
      if (node.value === null) return path.length > 0 && typeof path[path.length - 1] === "number" ? "" : null;
      if (typeof node.value !== "string" && node.source !== undefined) return String(node.source);
    }
    return node.value;
  }
  if (isSeq(node)) {
    const item = spec && typeof spec === "object" && "list" in spec ? spec.list : undefined;
    return node.items.map((child, i) => recurse(child as Node, item, i));
  }
  if (isMap(node)) {
    const out: Record<string, unknown> = {};
    for (const { key, keyNode, value: valueNode } of mapEntries(doc, node, path, count)) {
      let childSpec: Spec | undefined;
      if (spec && typeof spec === "object" && "map" in spec) {
        childSpec = spec.map[key] ?? "value";
        if (!KNOWN_KEYS[spec.known]?.includes(key)) {
          unknownKey(keyNode?.range?.[0] ?? 0, [...path, key]);
          continue;
        }
      } else if (spec && typeof spec === "object" && "values" in spec) {
        childSpec = spec.values;
      }
      const value = recurse(valueNode, childSpec, key);
      if (spec && typeof spec === "object" && "values" in spec) {
        // An env value is kept: `FOO:` and `FOO: ""` set FOO to the empty string.
        out[key] = value ?? "";
        continue;
      }
      // A field that is null or "" is absent, as in the original's Go structs
      // (its YAML marshaller writes every field; ERB renders empty defaults).
      if (value !== null && value !== "") out[key] = value;
    }
    return out;
  }
  return null;
}
