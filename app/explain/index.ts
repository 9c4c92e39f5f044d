/**
 * `tensile explain`: the seven seed notes, each shown with numbers tensile computes itself, in text
 * written from those numbers, with its figures.
 */
import { batchNormTopic } from './topics/batchnorm.js';
import { fcTopic } from './topics/fc.js';
import { kernelsTopic } from './topics/kernels.js';
import { poolingTopic } from './topics/pooling.js';
import { freezingTopic, transferTopic } from './topics/transfer.js';
import { tuningTopic } from './topics/tuning.js';
import type { Topic } from './types.js';

export * from './types.js';
export { explain, cachedRun, type ExplainOptions, type ExplainOutcome } from './explain.js';
export { tableText, mnistSplit, recordedTraining } from './common.js';
/** The statistics the topics and `tensile experiment` report with (t intervals, paired tests). */
export * from './statistics.js';

/** The notes in the seed's order. */
export const topics: readonly Topic[] = [
  fcTopic,
  poolingTopic,
  tuningTopic,
  batchNormTopic,
  freezingTopic,
  transferTopic,
  kernelsTopic,
];

/** The topic named by its id (DL0011, dl11, 11) or an alias (fc, pooling, ...); null when none. */
export function findTopic(name: string): Topic | null {
  const wanted = name.trim().toLowerCase();
  const digits = /^(?:dl)?0*(\d+)$/.exec(wanted);
  return (
    topics.find(
      (topic) =>
        topic.id.toLowerCase() === wanted ||
        topic.aliases.includes(wanted) ||
        (digits !== null && Number(topic.id.slice(2)) === Number(digits[1])),
    ) ?? null
  );
}
