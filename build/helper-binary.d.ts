// The C helper's and reaper's bytes as base64, embedded by esbuild's base64
// loader (see build/build.mjs) and decoded when first needed.
declare module "bpm:helper-binary" {
  const base64: string;
  export default base64;
}
declare module "bpm:reaper-binary" {
  const base64: string;
  export default base64;
}
