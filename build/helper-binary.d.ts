// The C helper's bytes, embedded by esbuild's binary loader (see build/build.mjs).
declare module "bpm:helper-binary" {
  const bytes: Uint8Array;
  export default bytes;
}
