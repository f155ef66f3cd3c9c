// The C helper's and reaper's bytes, embedded by esbuild's binary loader (see build/build.mjs).
declare module "bpm:helper-binary" {
  const bytes: Uint8Array;
  export default bytes;
}
declare module "bpm:reaper-binary" {
  const bytes: Uint8Array;
  export default bytes;
}
