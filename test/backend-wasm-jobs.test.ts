/**
 * The wasm backend's job table (src/backend/wasm/index.ts, wasmJobs): every kernel file's chunk
 * runners and kernels-module exports are in it, a runner outside it is refused on its first call, and
 * a worker thread numbers the runners exactly as the calling thread does (a job is posted under its
 * runner's number, so any difference would run the wrong kernel).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';

import { convolutionJobs } from '../src/backend/wasm/convolution.js';
import { elementwiseJobs } from '../src/backend/wasm/elementwise.js';
import { wasmJobs } from '../src/backend/wasm/index.js';
import { defineJobTable, type KernelFileJobs } from '../src/backend/wasm/jobs.js';
import { matmulJobs } from '../src/backend/wasm/matmul.js';
import { normalizationJobs } from '../src/backend/wasm/normalization.js';
import { poolingJobs } from '../src/backend/wasm/pooling.js';
import { runJob } from '../src/backend/wasm/threads.js';

const folder = new URL('../src/backend/wasm/', import.meta.url);

/** Whether an export of a kernel file is its jobs (KernelFileJobs). */
function isKernelFileJobs(value: unknown): value is KernelFileJobs {
  if (typeof value !== 'object' || value === null || !('runners' in value) || !('exports' in value))
    return false;
  const { runners } = value as { runners: unknown };
  return (
    typeof runners === 'object' &&
    runners !== null &&
    Object.values(runners).every((runner) => typeof runner === 'function')
  );
}

/** Never called: the compiler checks these (the suite fails to build if one stops being an error). */
export function compileTimeChecks(): void {
  // @ts-expect-error -- a table without winograd.ts's jobs leaves the exports winograd.ts declares unlisted.
  defineJobTable([matmulJobs, convolutionJobs, poolingJobs, normalizationJobs, elementwiseJobs]);
}

describe('wasm backend: job table', () => {
  it("holds every kernel file's runners and exports", async () => {
    // worker.js is left out: importing it on this thread would run a worker's loop.
    const modules = fs
      .readdirSync(folder)
      .filter((file) => file.endsWith('.js') && file !== 'worker.js' && file !== 'index.js');
    const files: [string, KernelFileJobs][] = [];
    for (const file of modules) {
      const namespace = (await import(new URL(file, folder).href)) as Record<string, unknown>;
      for (const [name, value] of Object.entries(namespace)) {
        if (isKernelFileJobs(value)) files.push([`${file}: ${name}`, value]);
      }
    }
    assert.ok(files.length >= 6, `only ${files.length} kernel files with jobs found`);
    const listed = new Set(wasmJobs.runners);
    const exportNames = new Set<string>(wasmJobs.exportNames);
    let runners = 0;
    for (const [where, jobs] of files) {
      for (const [job, runner] of Object.entries(jobs.runners)) {
        assert.ok(
          listed.has(runner),
          `${where}: runner ${job} is not in wasmJobs (src/backend/wasm/index.ts)`,
        );
        runners++;
      }
      for (const name of Object.keys(jobs.exports)) {
        assert.ok(exportNames.has(name), `${where}: export ${name} is not checked at load`);
      }
    }
    // And the table holds nothing but these files' runners, each once.
    assert.equal(wasmJobs.runners.length, runners);
    assert.equal(listed.size, runners);
  });

  it('refuses a runner that is not in the table, on any thread count', () => {
    const stray = (): void => {};
    assert.throws(() => runJob(stray), /job runner stray is not in the job table/);
  });

  it('numbers the runners the same way in a worker thread', async () => {
    const script = `
      import { parentPort } from 'node:worker_threads';
      const { wasmJobs } = await import(${JSON.stringify(new URL('index.js', folder).href)});
      parentPort.postMessage({ jobNames: wasmJobs.jobNames, exportNames: wasmJobs.exportNames });
    `;
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(script)}`));
    const reply = await new Promise<{ jobNames: string[]; exportNames: string[] }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    assert.deepEqual(reply.jobNames, wasmJobs.jobNames);
    assert.deepEqual(reply.exportNames, wasmJobs.exportNames);
    assert.ok(wasmJobs.jobNames.includes('maxPool2dForward') && wasmJobs.jobNames.includes('matmul'));
  });
});
