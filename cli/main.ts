#!/usr/bin/env node
/**
 * The tensile command line. `tensile train` is the main job (`npm start`): it trains the seed CNN on
 * the bundled MNIST digits, holding out a test split, and prints the test accuracy.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeFailure, enterCommand, exitCodes, suggestion, UsageError } from './arguments.js';
import { dashboardCommand } from './dashboard.js';
import { experimentCommand } from './experiment.js';
import { finetuneCommand } from './finetune.js';
import { studyCommand } from './study.js';
import { tuneCommand } from './tune.js';
import { explainCommand } from './explain.js';
import { reportCommand } from './report.js';
import { trainCommand } from './train.js';
import { predictCommand } from './predict.js';
import { exportCommand } from './export.js';
import { lrFindCommand } from './lr-find.js';
import { evaluateCommand } from './evaluate.js';
import { playgroundCommand } from './playground.js';

const commands: Record<string, { summary: string; run: (args: string[]) => Promise<number> | number }> = {
  train: {
    summary:
      'train a model on MNIST (the default), Fashion-MNIST or your own images or table (--data) and print test accuracy',
    run: trainCommand,
  },
  'lr-find': { summary: 'learning-rate finder: suggested rate and loss-vs-rate figure', run: lrFindCommand },
  experiment: {
    summary: 'run an experiment that writes tables and figures (see: tensile experiment)',
    run: experimentCommand,
  },
  finetune: {
    summary: 'fine-tune a pretrained model with a transfer strategy (tensile finetune --help)',
    run: finetuneCommand,
  },
  tune: {
    summary: 'tune training hyperparameters as a study file describes (tensile tune examples/study.yaml)',
    run: tuneCommand,
  },
  study: { summary: 'list, show or export tuning studies', run: studyCommand },
  explain: { summary: 'the seed notes with numbers computed live and their figures', run: explainCommand },
  dashboard: { summary: 'web dashboard of runs, studies and explain figures (live)', run: dashboardCommand },
  export: {
    summary: 'write a saved model as ONNX (tensile export --model FILE --onnx OUT)',
    run: exportCommand,
  },
  evaluate: {
    summary: 'accuracy and per-class report of a saved model on labelled data',
    run: evaluateCommand,
  },
  predict: {
    summary: 'top classes (or a regression value) from a saved model for images, folders, IDX or CSV rows',
    run: predictCommand,
  },
  report: { summary: 'one self-contained HTML file with the runs, studies and figures', run: reportCommand },
  playground: {
    summary: 'train a CNN in the browser tab: live curves, draw a digit (WebAssembly, offline)',
    run: playgroundCommand,
  },
};

function usage(): string {
  return [
    'usage: tensile <command> [options]',
    '',
    'commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`),
    '',
    'tensile <command> --help (or -h) shows the options of a command.',
    'global options: --help, --version, --verbose (stack traces on errors)',
    'exit codes: 0 ok, 1 failure, 2 usage error',
  ].join('\n');
}

function packageVersion(): string {
  // dist/cli/main.js → the package root two levels up; the same from cli/main.ts under ts-node-like runs.
  for (const relative of ['../../package.json', '../package.json']) {
    try {
      const file = fileURLToPath(new URL(relative, import.meta.url));
      const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (parsed.name === 'tensile' && typeof parsed.version === 'string') return parsed.version;
    } catch {
      // try the next place
    }
  }
  return 'unknown';
}

async function main(args: string[]): Promise<number> {
  const name = args[0];
  if (name === undefined) {
    console.error(usage());
    return exitCodes.usage;
  }
  if (name === 'help' || name === '--help' || name === '-h') {
    console.log(usage());
    return exitCodes.ok;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(`tensile ${packageVersion()}`);
    return exitCodes.ok;
  }
  const command = commands[name];
  if (command === undefined) {
    const kind = name.startsWith('-') ? 'option' : 'command';
    const hint = suggestion(
      name,
      name.startsWith('-') ? ['--help', '--version', '--verbose'] : Object.keys(commands),
    );
    throw new UsageError(`tensile: unknown ${kind} '${name}'; ${hint}see 'tensile --help'`);
  }
  enterCommand(`tensile ${name}`);
  return command.run(args.slice(1));
}

// --verbose is global: taken out here so no command has to know it.
const verbose = process.argv.includes('--verbose');
main(process.argv.slice(2).filter((arg) => arg !== '--verbose')).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const { line, exitCode } = describeFailure(error, verbose);
    console.error(line);
    process.exit(exitCode);
  },
);
