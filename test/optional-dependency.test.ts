/** Optional packages: loaded when present, and a missing one names itself and the install command. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  importOptional,
  optionalPackageDirectory,
  OptionalDependencyError,
  requireOptional,
} from '../src/util/optional-dependency.js';

const absent = 'tensile-test-no-such-package';

describe('optional dependencies', () => {
  it('loads an installed package, with require and with import', async () => {
    const yaml = requireOptional<{ parse(text: string): unknown }>('yaml', 'reading YAML');
    assert.deepEqual(yaml.parse('a: 1'), { a: 1 });
    const imported = await importOptional<{ parse(text: string): unknown }>('yaml', 'reading YAML');
    assert.deepEqual(imported.parse('b: 2'), { b: 2 });
    const directory = optionalPackageDirectory('yaml', 'reading YAML');
    assert.ok(fs.existsSync(path.join(directory, 'package.json')));
  });

  it('a missing package throws naming the feature, the package and the command', async () => {
    const expected = `tensile: a test feature needs the optional package '${absent}', which is not installed: npm install ${absent}`;
    const check = (error: unknown): boolean => {
      assert.ok(error instanceof OptionalDependencyError);
      assert.equal(error.message, expected);
      assert.equal(error.packageName, absent);
      return true;
    };
    assert.throws(() => requireOptional(absent, 'a test feature'), check);
    await assert.rejects(importOptional(absent, 'a test feature'), check);
    assert.throws(() => optionalPackageDirectory(absent, 'a test feature'), check);
  });

  it('an installed package that fails to load is not reported as missing', () => {
    // A package (found through NODE_PATH in a child process) whose own require fails, as
    // better-sqlite3 without its build or a package missing one of its dependencies.
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-optional-'));
    try {
      const broken = path.join(directory, 'tensile-test-broken');
      fs.mkdirSync(broken);
      fs.writeFileSync(path.join(broken, 'package.json'), '{"name":"tensile-test-broken","main":"index.js"}');
      fs.writeFileSync(path.join(broken, 'index.js'), "require('tensile-test-inner-missing');\n");
      const helper = new URL('../src/util/optional-dependency.js', import.meta.url).href;
      const script = `import(${JSON.stringify(helper)}).then((m) => { try { m.requireOptional('tensile-test-broken', 'a test feature'); } catch (e) { console.log(e.message); } })`;
      const child = spawnSync(process.execPath, ['-e', script], {
        encoding: 'utf8',
        env: { ...process.env, NODE_PATH: directory },
      });
      assert.equal(child.status, 0, child.stderr);
      assert.match(
        child.stdout,
        /^tensile: a test feature needs the package 'tensile-test-broken', which is installed but does not load \(Cannot find module 'tensile-test-inner-missing'\); if its install script was skipped, run it: npm rebuild tensile-test-broken\n$/,
      );
    } finally {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });
});
