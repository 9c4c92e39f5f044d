/**
 * `tensile explain [TOPIC]`: the seed notes, each explained with numbers tensile computes live, and
 * its figures written as SVG and PNG. Results are kept in the store and shown again from there;
 * `--fresh` recomputes.
 */
import * as path from 'node:path';
import { parseArgs } from './arguments.js';
import { explain, findTopic, tableText, topics, type Topic } from '../app/explain/index.js';
import { defaultStoreUrl, openRunStore } from '../src/index.js';
import { openStorage } from '../src/tune/index.js';

export const explainHelp = `usage: tensile explain [TOPIC|all] [options]

Without a topic, lists the notes. With one (an id such as DL0011 or a word: fc, pooling, tuning,
batchnorm, freezing, transfer, kernels), prints the explanation with numbers computed by tensile,
and writes its figures as SVG and PNG. Each topic takes under 5 minutes on 2 cores; its result is
kept in the store and shown again from there.

options:
  --fresh           compute again even when the store has a result
  --storage URL     where results, runs and studies are kept (default ${defaultStoreUrl})
  --out DIR         where figures go (default out/explain; each topic in its own folder)
  --quick           a tiny version of each experiment (seconds): checks that the pipeline works, draws
                    no conclusion; kept apart from full results (figures under OUT/quick/)`;

function wrap(text: string, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line.length > 0 && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line.length > 0 ? `${line} ${word}` : word;
  }
  if (line.length > 0) lines.push(line);
  return lines.join('\n');
}

function listing(): string {
  return [
    'tensile explain: the seed notes, with numbers computed by tensile',
    '',
    ...topics.map((topic) => `  ${topic.id}  ${topic.aliases[0]!.padEnd(10)} ${topic.title}`),
    '',
    'tensile explain TOPIC shows one (e.g. tensile explain DL0011, tensile explain pooling); tensile explain all runs every one.',
  ].join('\n');
}

export async function explainCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      fresh: { type: 'boolean', default: false },
      storage: { type: 'string', default: defaultStoreUrl },
      out: { type: 'string', default: path.join('out', 'explain') },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(explainHelp);
    return 0;
  }
  if (positionals.length === 0) {
    console.log(listing());
    return 0;
  }
  const chosen: Topic[] = [];
  for (const name of positionals) {
    if (name.toLowerCase() === 'all') {
      chosen.push(...topics);
      continue;
    }
    const topic = findTopic(name);
    if (topic === null) {
      console.error(`tensile explain: no note '${name}'\n\n${listing()}`);
      return 2;
    }
    chosen.push(topic);
  }
  const runs = await openRunStore(values.storage!);
  const studies = await openStorage(values.storage!);
  try {
    for (const topic of chosen) {
      const outcome = await explain(topic, {
        store: runs,
        studies,
        outDirectory: values.out!,
        fresh: values.fresh!,
        quick: values.quick!,
        log: (line) => console.error(line),
      });
      const { result } = outcome;
      const heading = `${topic.id}  ${result.title}${outcome.quick ? '  [QUICK RUN: not a result]' : ''}`;
      console.log(`\n${heading}\n${'='.repeat(heading.length)}`);
      console.log(`\n${wrap(`Note's question: ${result.question}`)}\n`);
      for (const paragraph of result.text) console.log(`${wrap(paragraph)}\n`);
      for (const table of result.tables) console.log(`${tableText(table)}\n`);
      console.log('figures:');
      for (const file of outcome.files) console.log(`  ${file}`);
      console.log(
        outcome.cached
          ? `\n(from the store: computed ${new Date(outcome.computedAt).toISOString().slice(0, 16).replace('T', ' ')} in ${outcome.seconds.toFixed(0)} s, run #${outcome.runId}; --fresh computes again)`
          : `\n(computed live in ${outcome.seconds.toFixed(0)} s${outcome.quick ? ', quick version: a pipeline check, kept apart from full results' : ''}; kept in ${values.storage} as run #${outcome.runId})`,
      );
    }
  } finally {
    await runs.close();
    await studies.close();
  }
  return 0;
}
