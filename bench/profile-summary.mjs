// node bench/profile-summary.mjs FILE.cpuprofile [N]
// Where a command's time went, from a V8 CPU profile: the N functions with the
// most time of their own, then with the most time including what they call.
// Make one with a build that keeps names and Node's profiler on:
//   node build/build.mjs --no-minify
//   NODE_OPTIONS="--cpu-prof --cpu-prof-dir=DIR" BPM_BOSH_ROOT=... dist/bpm start JOB
import { readFileSync } from "node:fs";

const [file, n = "25"] = process.argv.slice(2);
if (!file) throw new Error("usage: node bench/profile-summary.mjs FILE.cpuprofile [N]");
const profile = JSON.parse(readFileSync(file, "utf8"));
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const parents = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
const nameOf = ({ callFrame: f }) => `${f.functionName || "(anonymous)"} ${f.url.split("/").pop()}:${f.lineNumber}`;

// Microseconds sampled in each node itself.
const sampled = new Map();
profile.samples.forEach((id, i) => sampled.set(id, (sampled.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

const own = new Map();
const inclusive = new Map();
const add = (map, key, us) => map.set(key, (map.get(key) ?? 0) + us);
for (const [id, us] of sampled) {
  add(own, nameOf(nodes.get(id)), us);
  const counted = new Set(); // a recursive function counts once per sample
  for (let at = id; at !== undefined; at = parents.get(at)) {
    const name = nameOf(nodes.get(at));
    if (!counted.has(name)) add(inclusive, name, us), counted.add(name);
  }
}

const ms = (us) => (us / 1000).toFixed(1).padStart(6);
const top = (map) => [...map].sort((a, b) => b[1] - a[1]).slice(0, Number(n));
console.log(`sampled ${ms([...sampled.values()].reduce((a, b) => a + b, 0))} ms, profile span ${ms(profile.endTime - profile.startTime)} ms`);
console.log("--- own time (ms)");
for (const [name, us] of top(own)) console.log(ms(us), name);
console.log("--- including callees (ms)");
for (const [name, us] of top(inclusive)) console.log(ms(us), name);
