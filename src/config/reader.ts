// Reads bpm.yml the way the original's YAML 1.1 decoder did, into plain
// values shaped for the schema, keeping where every value was written so
// that each problem names file:line:column. Linear in the file's size: the
// yaml library's own duplicate-key check compares every key of a map with
// every other (60,000 env keys took minutes), so keys are checked here, one
// Set per map; and the parser is slow per token, so the lexer first counts
// them up to a cap (MAX_TOKENS).
import { isAlias, isMap, isPair, isScalar, isSeq, Lexer, LineCounter, parseDocument, visit, type Document, type Node } from "yaml";
import { ConfigError, fieldName, shown, type Key, type Problem } from "./problems.ts";
import type { Shape } from "./schema.ts";

/** Alias expansions allowed in one file (a "billion laughs" file expands exponentially). */
const MAX_ALIASES = 100;
const MAX_DEPTH = 64;
/** YAML tokens (keys, values, indicators, comments, line breaks) in one file.
 * The parser costs about 5-10 us a token, so a 2 MiB file of tiny tokens (a
 * million-item flow list, two million blank lines) took 3-9 s; under this cap
 * any file is decided in a few hundred ms. Real releases' files have < 3,000. */
export const MAX_TOKENS = 50_000;

export interface ReadYaml {
  /** The document as plain values: null for an empty one. */
  value: unknown;
  /** Keys the shape does not know: ignored like the original did, but worth telling the author. */
  warnings: Problem[];
  /** Where the value at a field path (fieldName) was written, or its nearest parent. */
  at(path: readonly Key[]): { line: number; col: number };
}

export function readYaml(source: string, file: string, shape: Shape): ReadYaml {
  const lines = new LineCounter();
  const pos = (offset: number) => lines.linePos(Math.min(offset, source.length));
  const problem = (offset: number, field: string, message: string): Problem => ({ file, ...pos(offset), field, message });
  if (source.includes("\0") || source.includes("\uFFFD")) {
    throw new ConfigError([{ file, line: 1, col: 1, field: "", message: "not a text file (it holds binary data)" }]);
  }
  const tooMany = tokenBudgetExceeded(source);
  if (tooMany !== null) {
    // The line counter fills in as the parser goes: count the lines up to here ourselves.
    const line = source.slice(0, tooMany).split("\n").length;
    const col = tooMany - source.lastIndexOf("\n", tooMany - 1);
    throw new ConfigError([{ file, line, col, field: "", message: `invalid YAML: more than ${MAX_TOKENS} tokens (keys, values, indicators, comments, line breaks) by here; bpm reads at most ${MAX_TOKENS}` }]);
  }
  let doc: Document;
  try {
    doc = parseDocument(source, { version: "1.1", uniqueKeys: false, lineCounter: lines, prettyErrors: false });
  } catch (e) {
    // The parser recurses: absurd nesting ends in a RangeError, not a parse error.
    throw new ConfigError([{ file, line: 1, col: 1, field: "", message: `invalid YAML: ${e instanceof RangeError ? "nested too deeply" : (e as Error).message}` }]);
  }
  const errors = doc.errors.map((e) => problem(e.pos[0], "", `invalid YAML: ${/stack/i.test(e.message) ? "nested too deeply" : e.message.split("\n")[0]}`));
  if (errors.length === 0) errors.push(...duplicateKeys(doc).map((k) => problem(k.offset, "", `invalid YAML: duplicate key ${shown(k.key)}`)));
  if (errors.length > 0) throw new ConfigError(errors.filter((p, i, all) => all.findIndex((q) => q.message === p.message) === i));

  const offsets = new Map<string, number>();
  const warnings: Problem[] = [];
  let value: unknown;
  try {
    value = toPlain(doc, doc.contents as Node | null, shape, [], offsets, (offset, path) =>
      warnings.push(problem(offset, fieldName(path), "unknown key, ignored")), { aliases: 0 });
  } catch (e) {
    if (!(e instanceof PlainError)) throw e;
    throw new ConfigError([problem(e.offset, e.field, e.message)]);
  }
  return { value, warnings, at: (path) => pos(nearestOffset(offsets, path)) };
}

/** Where the lexer's token number MAX_TOKENS + 1 begins, or null: the
 * lexer alone is cheap (well under a microsecond a token) and stops there. */
function tokenBudgetExceeded(source: string): number | null {
  let count = 0;
  let offset = 0;
  for (const token of new Lexer().lex(source)) {
    if (++count > MAX_TOKENS) return offset;
    // The lexer's markers (document, flow end, scalar: one control character) are not in the source.
    if (!(token.length === 1 && token < " " && token !== "\n" && token !== "\t" && token !== "\r")) offset += token.length;
  }
  return null;
}

const isMergeKey = (n: unknown) => isScalar(n) && typeof n.value === "symbol";
const keyText = (n: Node | null) => (isScalar(n) ? String(n.source ?? n.value) : String(n));

/** Every key written twice in one map, at its second place: one pass, one Set per map. */
function duplicateKeys(doc: Document): { key: string; offset: number }[] {
  const found: { key: string; offset: number }[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = pair.key as Node | null;
        if (isMergeKey(key)) continue;
        const text = isScalar(key) ? String(key.value) : keyText(key);
        if (seen.has(text)) found.push({ key: text, offset: key?.range?.[0] ?? 0 });
        seen.add(text);
      }
    },
  });
  return found;
}

function nearestOffset(offsets: Map<string, number>, path: readonly Key[]): number {
  for (let n = path.length; n >= 0; n--) {
    const off = offsets.get(fieldName(path.slice(0, n)));
    if (off !== undefined) return off;
  }
  return 0;
}

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
  shape: Shape | undefined,
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
  const recurse = (child: Node | null, childShape: Shape | undefined, key: Key) =>
    toPlain(doc, child, childShape, [...path, key], offsets, unknownKey, count, depth + 1);

  if (isScalar(node)) {
    // No argument, environment variable or path can hold a NUL ("\0" in a quoted string).
    if (typeof node.value === "string" && node.value.includes("\0")) {
      throw new PlainError(here, fieldName(path), `contains a NUL character ("\\0"), which no argument, environment variable or path can hold`);
    }
    if (shape === "text") {
      if (node.value === null) return path.length > 0 && typeof path[path.length - 1] === "number" ? "" : null;
      if (typeof node.value !== "string" && node.source !== undefined) return String(node.source);
    }
    return node.value;
  }
  if (isSeq(node)) {
    const item = shape && typeof shape === "object" && "list" in shape ? shape.list : undefined;
    return node.items.map((child, i) => recurse(child as Node, item, i));
  }
  if (isMap(node)) {
    const out: Record<string, unknown> = {};
    for (const { key, keyNode, value: valueNode } of mapEntries(doc, node, path, count)) {
      if (key.includes("\0")) throw new PlainError(keyNode?.range?.[0] ?? here, fieldName([...path, key]), `contains a NUL character ("\\0"), which no name can hold`);
      let childShape: Shape | undefined;
      if (shape && typeof shape === "object" && "map" in shape) {
        if (!Object.hasOwn(shape.map, key)) {
          unknownKey(keyNode?.range?.[0] ?? 0, [...path, key]);
          continue;
        }
        childShape = shape.map[key];
      } else if (shape && typeof shape === "object" && "values" in shape) {
        childShape = shape.values;
      }
      const value = recurse(valueNode, childShape, key);
      if (shape && typeof shape === "object" && "values" in shape) {
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
