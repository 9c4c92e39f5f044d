#!/usr/bin/env node
/**
 * The tensile command line. `tensile train` is the main job (`npm start`): it trains the seed CNN on
 * the bundled MNIST digits, holding out a test split, and prints the test accuracy.
 */
import { parseArgs } from 'node:util';
import { dashboardCommand } from './dashboard.js';
import { experimentCommand } from './experiment.js';
import { finetuneCommand } from './finetune.js';
import { studyCommand } from './study.js';
import { tuneCommand } from './tune.js';
import { explainCommand } from './explain.js';
import { reportCommand } from './report.js';
import { trainCommand } from './train.js';

const commands: Record<string, { summary: string; run: (args: string[]) => Promise<number> | number }> = {
  train: {
    summary: 'train the seed CNN on MNIST (or Fashion-MNIST) and print test accuracy',
    run: trainCommand,
  },
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
  report: { summary: 'one self-contained HTML file with the runs, studies and figures', run: reportCommand },
};

function usage(): string {
  return [
    'usage: tensile <command> [options]',
    '',
    'commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`),
    '',
    'tensile <command> --help shows the options of a command',
  ].join('\n');
}

async function main(): Promise<number> {
  const { positionals } = parseArgs({ allowPositionals: true, strict: false });
  const name = positionals[0];
  if (name === undefined || name === 'help' || name === '--help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) {
    console.error(`tensile: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return command.run(process.argv.slice(3));
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`tensile: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
