/**
 * The PyTorch parity cases (test/fixtures/torch-parity, copied from PyTorch-generated cases; regenerate with test/fixtures/generators), run on every backend that loads here,
 * through the same runner as `npm run parity`.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { availableBackends, backendByName, withBackend } from '../src/index.js';
import { formatCaseLine, runParityCase } from '../app/parity/index.js';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const casesDirectory = path.resolve(repositoryRoot, 'test', 'fixtures', 'torch-parity');
const cases = fs
  .readdirSync(casesDirectory)
  .filter((name) => name.endsWith('.safetensors'))
  .sort();

describe('PyTorch parity', () => {
  it('finds the cases kept in the repository', () => {
    assert.ok(cases.length >= 30, `expected the parity cases in ${casesDirectory}, found ${cases.length}`);
  });
  for (const backendName of availableBackends()) {
    describe(`backend ${backendName}`, () => {
      for (const name of cases) {
        it(name, () => {
          const result = withBackend(backendByName(backendName), () =>
            runParityCase(path.join(casesDirectory, name)),
          );
          assert.ok(result.passed, formatCaseLine(result));
        });
      }
    });
  }
});
