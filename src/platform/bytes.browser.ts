/**
 * Raw memory for tensors, in a browser (the twin of ./bytes.ts). A page has no uninitialised
 * allocation, so this is a zero-filled ArrayBuffer: the same contract, since callers overwrite it all.
 */
export function uninitializedBytes(bytes: number): ArrayBuffer {
  return new ArrayBuffer(bytes);
}
