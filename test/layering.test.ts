/**
 * The import direction `npm run lint` enforces (eslint.config.js): cli → app → the library's public
 * entry points → the library's folders from the top down. Each fixture under test/fixtures/layering is
 * linted with the project's own configuration as if it stood at the same path in the repository
 * (test/fixtures/layering/src/nn/x.ts as src/nn/x.ts); the fixtures themselves are outside the lint
 * run and the build.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = path.join(repositoryRoot, 'test', 'fixtures', 'layering');

/** Each fixture, by the path it pretends to have, with the reason of every import the rule must report. */
const expected: Record<string, string[]> = {
  'src/nn/layers/uses-training-loop.ts': ['src/{nn} sits below'],
  'src/io/uses-callbacks.ts': ['src/{io} sits below'],
  'src/ops/re-exports-layer.ts': ['src/{ops} sits below'],
  'src/train/draws-chart.ts': ['src/{train} sits below'],
  'src/tensor/uses-application.ts': ['src/ is the library', 'src/ is the library', 'src/ is the library'],
  'src/tune/samplers/uses-public-barrel.ts': ['not through the public src/index.js'],
  'app/explain/topics/deep-library-path.ts': [
    'only through its public entry points',
    'only through its public entry points',
  ],
  'app/parity/uses-command.ts': ['app/ must not import cli/', 'app/ must not import cli/'],
  'cli/deep-paths.ts': ['only through its public entry points', 'through its folder index'],
  'src/train/clean.ts': [],
  'app/explain/clean.ts': [],
  'cli/experiments/clean.ts': [],
};

function fixtureFiles(directory: string): string[] {
  return fs.readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(directory, entry.name);
    return entry.isDirectory()
      ? fixtureFiles(full)
      : [path.relative(fixtures, full).split(path.sep).join('/')];
  });
}

describe('layering lint rule', () => {
  const eslint = new ESLint({ cwd: repositoryRoot });

  it('places every folder of src/ on a level', async () => {
    // A folder on no level would be outside the rule: anything could import it and it could import
    // anything. (src/sql arrived that way once.)
    const config = (await import(path.join(repositoryRoot, 'eslint.config.js'))) as {
      libraryLevels: string[][];
    };
    const placed = new Set(config.libraryLevels.flat());
    const folders = fs
      .readdirSync(path.join(repositoryRoot, 'src'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
    assert.deepEqual(
      folders.filter((folder) => !placed.has(folder)),
      [],
    );
  });

  it('has an expectation for every fixture', () => {
    assert.deepEqual(fixtureFiles(fixtures).sort(), Object.keys(expected).sort());
  });

  for (const [pretended, reasons] of Object.entries(expected)) {
    const what = reasons.length === 0 ? 'accepts' : `reports ${reasons.length} import(s) in`;
    it(`${what} ${pretended}`, async () => {
      const source = fs.readFileSync(path.join(fixtures, pretended), 'utf8');
      const [result] = await eslint.lintText(source, { filePath: path.join(repositoryRoot, pretended) });
      // Every problem must be the layering rule's: a parse error or another rule would make the
      // counts below meaningless.
      const others = result!.messages.filter((message) => message.ruleId !== 'no-restricted-imports');
      assert.deepEqual(others, [], `${pretended}: problems other than the layering rule`);
      const reported = result!.messages.map((message) => message.message);
      assert.equal(reported.length, reasons.length, `${pretended}:\n${reported.join('\n')}`);
      reasons.forEach((reason, i) => {
        assert.ok(reported[i]!.includes(reason), `${pretended}: expected '${reason}' in '${reported[i]}'`);
      });
    });
  }
});
