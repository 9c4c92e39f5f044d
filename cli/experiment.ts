/**
 * `tensile experiment NAME [options]`: reproducible experiments that write tables and figures.
 * Each experiment lives in cli/experiments/NAME.ts and is listed here.
 */
import { enterCommand, exitCodes, suggestion, UsageError } from './arguments.js';
import { transferExperiment } from './experiments/transfer.js';
import { lrBatchExperiment } from './experiments/lr-batch.js';
import { searchExperiment } from './experiments/search.js';

export interface Experiment {
  name: string;
  summary: string;
  run(args: string[]): Promise<number> | number;
}

const experiments: Experiment[] = [transferExperiment, lrBatchExperiment, searchExperiment];

export function experimentCommand(args: string[]): Promise<number> | number {
  const [name, ...rest] = args;
  const list = experiments.map((e) => `  ${e.name.padEnd(12)} ${e.summary}`).join('\n');
  const usage = `usage: tensile experiment NAME [options]\n\nexperiments:\n${list || '  (none yet)'}\n\ntensile experiment NAME --help shows its options`;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? console.error : console.log)(usage);
    return name === undefined ? exitCodes.usage : exitCodes.ok;
  }
  const experiment = experiments.find((e) => e.name === name);
  if (experiment === undefined) {
    const names = experiments.map((e) => e.name);
    throw new UsageError(
      `tensile experiment: unknown experiment '${name}'; ${suggestion(name, names)}see 'tensile experiment --help'`,
    );
  }
  enterCommand(`tensile experiment ${name}`);
  return experiment.run(rest);
}
