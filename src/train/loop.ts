/**
 * How fit's stages run without blocking: the loop is written once, as a generator that asks its
 * driver for batches (open an epoch, next batch, close it), and two drivers answer. The synchronous
 * one iterates loaders directly (fit, evaluate); the asynchronous one awaits each batch from the
 * loader's async iterator, so the event loop turns between batches and prefetching loaders fill their
 * queues there (fitAsync). An error in a loader is thrown into the generator at the point that asked,
 * so its finally blocks (fitEnd) run either way.
 */
import type { Batch } from '../data/protocol.js';

/** A loader as the loop reads it. */
export type BatchLoader = Iterable<Batch> & AsyncIterable<Batch>;

/** What the loop asks of its driver. 'next' is answered with the next batch, or undefined at the end. */
export type LoopRequest = { kind: 'open'; loader: BatchLoader } | { kind: 'next' } | { kind: 'close' };

export type LoopRun<Result> = Generator<LoopRequest, Result, Batch | undefined>;

/** Runs the loop to its end in this call. */
export function runToEnd<Result>(run: LoopRun<Result>): Result {
  const open: Iterator<Batch>[] = [];
  let answer: Batch | undefined;
  let failure: { error: unknown } | undefined;
  for (;;) {
    const step = failure === undefined ? run.next(answer) : run.throw(failure.error);
    answer = undefined;
    failure = undefined;
    if (step.done === true) return step.value;
    try {
      const request = step.value;
      if (request.kind === 'open') open.push(request.loader[Symbol.iterator]());
      else if (request.kind === 'close') open.pop()?.return?.();
      else {
        const next = open.at(-1)!.next();
        answer = next.done === true ? undefined : next.value;
      }
    } catch (error) {
      failure = { error };
    }
  }
}

/** Runs the loop, letting the event loop turn (timers, I/O, other requests) before every batch. */
export async function runYielding<Result>(run: LoopRun<Result>): Promise<Result> {
  const open: AsyncIterator<Batch>[] = [];
  let answer: Batch | undefined;
  let failure: { error: unknown } | undefined;
  for (;;) {
    const step = failure === undefined ? run.next(answer) : run.throw(failure.error);
    answer = undefined;
    failure = undefined;
    if (step.done === true) return step.value;
    try {
      const request = step.value;
      if (request.kind === 'open') open.push(request.loader[Symbol.asyncIterator]());
      else if (request.kind === 'close') await open.pop()?.return?.();
      else {
        // setImmediate, not a resolved promise: microtasks would run before timers and I/O get a turn.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const next = await open.at(-1)!.next();
        answer = next.done === true ? undefined : next.value;
      }
    } catch (error) {
      failure = { error };
    }
  }
}
