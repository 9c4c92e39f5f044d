/**
 * `tensile experiment NAME [options]`: reproducible experiments that write tables and figures.
 * Each experiment lives in cli/experiments/NAME.ts and is listed here.
 */
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
  const experiment = experiments.find((e) => e.name === name);
  if (experiment === undefined) {
    const list = experiments.map((e) => `  ${e.name.padEnd(12)} ${e.summary}`).join('\n');
    console.error(
      `${name === undefined ? '' : `tensile experiment: unknown experiment '${name}'\n\n`}usage: tensile experiment NAME [options]\n\nexperiments:\n${list || '  (none yet)'}`,
    );
    return name === undefined || name === '--help' ? 0 : 2;
  }
  return experiment.run(rest);
}
