/**
 * What the browser build puts in place of Node's globals (esbuild's `inject`, see
 * scripts/build-browser.mjs): library code that reads `process.env`, writes `process.stderr` or calls
 * `setImmediate` runs unchanged in a page. Only the browser bundle includes this module.
 */

/** No environment variables in a page (every TENSILE_* setting takes its default); stderr is the console. */
export const process = {
  env: {} as Record<string, string | undefined>,
  stderr: {
    isTTY: false,
    write(text: string): boolean {
      console.warn(text.replace(/\n$/, ''));
      return true;
    },
  },
};

interface Channel {
  port1: { onmessage: (() => void) | null };
  port2: { postMessage(message: unknown): void };
}
declare const MessageChannel: new () => Channel;

const queued: (() => void)[] = [];
let channel: Channel | undefined;

/**
 * Runs callback on a later turn of the event loop, after pending I/O and rendering, without the
 * clamping of setTimeout (4 ms once nested): a message to oneself, as setImmediate polyfills do.
 */
export function setImmediate(callback: () => void): void {
  if (channel === undefined) {
    channel = new MessageChannel();
    channel.port1.onmessage = () => queued.shift()?.();
  }
  queued.push(callback);
  channel.port2.postMessage(null);
}

/**
 * Where the page is not cross-origin isolated there is no SharedArrayBuffer; the wasm backend then
 * runs on one thread, and its job control block (which only workers need to share) is a plain
 * ArrayBuffer, on which Atomics.load and store work the same.
 */
export const SharedArrayBuffer: SharedArrayBufferConstructor =
  (globalThis as { SharedArrayBuffer?: SharedArrayBufferConstructor }).SharedArrayBuffer ??
  (ArrayBuffer as unknown as SharedArrayBufferConstructor);
