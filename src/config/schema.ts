// The shape of bpm.yml and every rule a value must follow. Rules that need to
// know the job (where ROOT is, which dirs are the job's own) take a context.
import * as v from "valibot";
import { availableParallelism } from "node:os";
import { posix } from "node:path";
import { capabilityNumber } from "./capabilities.ts";
import { parseDuration, parseMemorySize } from "./units.ts";
import { INTERNAL_ROOT } from "../bosh/paths.ts";

export interface SchemaContext {
  /** Host BOSH root (ROOT); volume paths may be written under it or under /var/vcap. */
  root: string;
  job: string;
}

const got = (issue: { received: string }) => `got ${({ Object: "a map", Array: "a list" } as Record<string, string>)[issue.received] ?? issue.received}`;
const text = v.string((i) => `expected text, ${got(i)}`);
const flag = v.boolean((i) => `expected true or false, ${got(i)}`);
const nonEmpty = (what: string) => v.pipe(text, v.nonEmpty(`${what} is required`));
const wholeNumber = (min: number) =>
  v.pipe(
    v.number((i) => `expected a whole number, ${got(i)}`),
    v.integer((i) => `expected a whole number, ${got(i)}`),
    v.minValue(min, (i) => `must be at least ${min}, ${got(i)}`),
    v.maxValue(Number.MAX_SAFE_INTEGER, (i) => `is too large, ${got(i)}`),
  );
const isMap = (x: unknown) => typeof x === "object" && x !== null && !Array.isArray(x);
const list = <T extends v.GenericSchema>(item: T) => v.array(item, (i) => `expected a list, ${got(i)}`);
// valibot reports a missing key through the enclosing object's message.
const map = <T extends v.ObjectEntries>(entries: T) =>
  v.object(entries, (i) => (i.input === undefined && i.path?.length ? "is required" : `expected a map, ${got(i)}`));

const isCanonical = (p: string) => p.startsWith("/") && posix.normalize(p) === p && !p.endsWith("/");
const isStrictlyInside = (p: string, dir: string) => p.startsWith(dir.endsWith("/") ? dir : dir + "/");

function volumePath(ctx: SchemaContext) {
  const own = [
    `${INTERNAL_ROOT}/data/${ctx.job}`, `${INTERNAL_ROOT}/store/${ctx.job}`,
    posix.join(ctx.root, "data", ctx.job), posix.join(ctx.root, "store", ctx.job),
  ];
  return v.pipe(
    nonEmpty("path"),
    v.check(isCanonical, (i) => `volume path must be absolute and canonical (no "..", "//" or trailing "/"), got ${i.received}`),
    v.check(
      (p) => isStrictlyInside(p, INTERNAL_ROOT) || isStrictlyInside(p, ctx.root),
      (i) => `volume path must be inside ${INTERNAL_ROOT}, got ${i.received}`,
    ),
    v.check((p) => !own.includes(p), (i) => `volume path ${i.received} is the job's own data or store directory: use ephemeral_disk or persistent_disk`),
  );
}

const volumeOptions = {
  writable: v.optional(flag, false),
  allow_executions: v.optional(flag, false),
  mount_only: v.optional(flag, false),
  shared: v.optional(flag, false),
};

export const volumeSchema = (ctx: SchemaContext) => map({ path: volumePath(ctx), ...volumeOptions });

const unrestrictedVolume = map({
  path: v.pipe(nonEmpty("path"), v.check((p) => p.startsWith("/"), (i) => `path must be absolute, got ${i.received}`)),
  ...volumeOptions,
});

const memorySize = v.pipe(
  text,
  v.check((s) => parseMemorySize(s) !== null, (i) => `expected a size such as 512M or 2G (units B, K, M, G, T), got ${i.received}`),
);

// Beyond the original (which ignores unknown keys): a CPU ceiling and share,
// and the grace period before QUIT. The ceiling allows up to 64 CPUs' worth
// per CPU of the machine: more is a typo, not a plan.
export const CPUS_PER_MACHINE_CPU = 64;
const maxCpus = () => availableParallelism() * CPUS_PER_MACHINE_CPU;
const cpuCeiling = v.pipe(
  v.number((i) => `expected a number of CPUs such as 0.5 or 2, ${got(i)}`),
  v.check((n) => n > 0, (i) => `must be more than 0, got ${i.received}`),
  v.check((n) => n <= maxCpus(), (i) => `must be at most ${maxCpus()} (this machine's ${availableParallelism()} CPUs × ${CPUS_PER_MACHINE_CPU}), got ${i.received}`),
);
const cpuWeight = v.pipe(
  v.number((i) => `expected a whole number from 1 to 10000, ${got(i)}`),
  v.integer((i) => `expected a whole number from 1 to 10000, ${got(i)}`),
  v.minValue(1, (i) => `must be from 1 to 10000, got ${i.received}`),
  v.maxValue(10_000, (i) => `must be from 1 to 10000, got ${i.received}`),
);

/** The longest shutdown_timeout: a stop that waits longer is surely a typo. */
export const MAX_SHUTDOWN_TIMEOUT_MS = 3_600_000;
/** Written as seconds (45) or a duration (45s, 2m, 1m30s); read as milliseconds. Empty means the default. */
const shutdownTimeout = v.pipe(
  text,
  v.check((s) => s === "" || parseDuration(s) !== null, (i) => `expected seconds (45) or a duration such as 45s or 2m, got ${i.received}`),
  v.check((s) => s === "" || (parseDuration(s)! > 0 && parseDuration(s)! <= MAX_SHUTDOWN_TIMEOUT_MS), (i) => `must be more than 0 and at most 1h, got ${i.received}`),
  v.transform((s) => (s === "" ? undefined : parseDuration(s)!)),
);

const capability = v.pipe(text, v.check((c) => capabilityNumber(c) !== undefined, (i) => `unknown capability ${i.received}`));

const processName = v.pipe(
  nonEmpty("name"),
  v.check((n) => !n.includes("/") && n !== "." && n !== ".." && !n.includes("\0"), (i) => `name may not contain "/" or be "." or "..", got ${i.received}`),
);

const hooks = map({ pre_start: v.optional(text) });

const limits = map({
  memory: v.optional(memorySize),
  open_files: v.optional(wholeNumber(1)),
  processes: v.optional(wholeNumber(1)),
  core_file_size: v.optional(wholeNumber(0)),
  cpu: v.optional(cpuCeiling),
  cpu_weight: v.optional(cpuWeight),
});

const unsafe = map({
  privileged: v.optional(flag, false),
  host_pid_namespace: v.optional(flag, false),
  unrestricted_volumes: v.optional(list(unrestrictedVolume), []),
});

const process = (ctx: SchemaContext) =>
  map({
    name: processName,
    executable: nonEmpty("executable"),
    args: v.optional(list(text), []),
    env: v.optional(v.pipe(v.unknown(), v.check(isMap, (i) => `expected a map, ${got(i)}`), v.record(text, text)), {}),
    workdir: v.optional(v.pipe(text, v.check((p) => p.startsWith("/"), (i) => `workdir must be absolute, got ${i.received}`))),
    hooks: v.optional(hooks, {}),
    capabilities: v.optional(list(capability), []),
    limits: v.optional(limits, {}),
    ephemeral_disk: v.optional(flag, false),
    persistent_disk: v.optional(flag, false),
    additional_volumes: v.optional(list(volumeSchema(ctx)), []),
    unsafe: v.optional(unsafe, {}),
    shutdown_signal: v.optional(
      v.pipe(text, v.picklist(["TERM", "INT"], (i) => `shutdown_signal must be TERM or INT, got ${i.received}`)),
      "TERM",
    ),
    shutdown_timeout: v.optional(shutdownTimeout),
  });

export function configSchema(ctx: SchemaContext) {
  return v.pipe(
    map({
      processes: v.pipe(
        list(process(ctx)),
        v.minLength(1, "must have at least 1 process"),
      ),
    }),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const seen = new Set<string>();
      dataset.value.processes.forEach((p, i) => {
        if (seen.has(p.name)) {
          addIssue({
            message: `duplicate process name "${p.name}"`,
            path: [pathItem(dataset.value, "processes"), pathItem(dataset.value.processes, i), pathItem(p, "name")],
          });
        }
        seen.add(p.name);
      });
    }),
  );
}

// valibot's issue paths carry the parent value with each key.
function pathItem(input: unknown, key: string | number) {
  return { type: "object", origin: "value", input, key, value: (input as Record<string | number, unknown>)[key] } as never;
}

export type JobConfig = v.InferOutput<ReturnType<typeof configSchema>>;
export type ProcessConfig = JobConfig["processes"][number];
export type Volume = ProcessConfig["additional_volumes"][number];

/** Keys each kind of map knows, read off the schema itself; others are reported
 * and ignored, as the original did. (A new field that holds text also goes in
 * load.ts's text-field map, so YAML numbers and booleans there keep their text.) */
const anyJob: SchemaContext = { root: INTERNAL_ROOT, job: "" };
export const KNOWN_KEYS: Record<string, readonly string[]> = {
  top: ["processes"],
  process: Object.keys(process(anyJob).entries),
  hooks: Object.keys(hooks.entries),
  limits: Object.keys(limits.entries),
  volume: Object.keys(volumeSchema(anyJob).entries),
  unsafe: Object.keys(unsafe.entries),
};
