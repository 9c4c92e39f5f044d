import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The library's folders from the bottom up. A folder may import its own level and the levels below,
 * never one above: the tensor core sees no layer, layers see no training loop, the training loop sees
 * no tuner or tracker. Folders on one level may use each other (tensor, autograd and backend are one
 * core; transfer and tune are independent today but nothing forbids it).
 */
export const libraryLevels = [
  ['tensor', 'autograd', 'backend', 'util', 'sql', 'platform'],
  ['ops'],
  ['nn'],
  ['optim', 'models'],
  ['io'],
  ['data'],
  ['train'],
  ['transfer', 'tune'],
  ['track', 'plot'],
];

/**
 * An import path (relative, any depth) that enters one of these top-level folders. It matches the
 * path as written, at any number of `../`; no subfolder of src/ shares a top-level folder's name, so
 * that is exact in practice (a rule resolving paths would need a plugin).
 */
const entering = (folders) => `^(\\.\\./)+(${folders.join('|')})/`;

/** What no library file may import: the applications, the command, benches, tests and the page. */
const outsideLibrary = {
  regex: entering(['app', 'cli', 'bench', 'test', 'dashboard']),
  message: 'src/ is the library: it must not import app/, cli/, bench/, test/ or dashboard/.',
};
/** The public barrel: a library folder importing it would import every folder, its own level's superiors included. */
const publicBarrel = {
  regex: '^(\\.\\./)+index\\.js$',
  message: 'library folders import each other by path, not through the public src/index.js.',
};
/** Anything in src/ other than its two public entry points. */
const deepLibraryPath = {
  regex: '^(\\.\\./)+src/(?!index\\.js$|tune/index\\.js$)',
  message:
    'outside src/, the library is used only through its public entry points, src/index.js and src/tune/index.js.',
};

const layering = libraryLevels.map((level, index) => {
  const above = libraryLevels.slice(index + 1).flat();
  const patterns = [outsideLibrary, publicBarrel];
  if (above.length > 0)
    patterns.push({
      regex: entering(above),
      message: `src/{${level.join(',')}} sits below ${above.join(', ')}: a lower folder must not import a higher one.`,
    });
  return {
    files: level.map((folder) => `src/${folder}/**/*.ts`),
    rules: { 'no-restricted-imports': ['error', { patterns }] },
  };
});

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'build/',
      'node_modules/',
      '.cache/',
      'assembly/',
      'native/build/',
      'docs/api/',
      // Deliberate violations, linted by test/layering.test.ts under the paths they pretend to have.
      'test/fixtures/layering/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  // Imports run down the stack only: cli → app → the library's public surface → its folders in order.
  ...layering,
  { files: ['src/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [outsideLibrary] }] } },
  {
    files: ['app/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            deepLibraryPath,
            {
              regex: entering(['cli', 'bench', 'test']),
              message: 'app/ must not import cli/, bench/ or test/.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['cli/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            deepLibraryPath,
            {
              regex: '^(\\.\\./)+app/[^/]+/(?!index\\.js$)',
              message: 'cli/ uses an application through its folder index (app/NAME/index.js).',
            },
            { regex: entering(['bench', 'test']), message: 'cli/ must not import bench/ or test/.' },
          ],
        },
      ],
    },
  },
);
