/**
 * Results that the tuning and transfer experiments (`tensile experiment lr-batch`, `search`,
 * `transfer`) left on disk, read back so that DL0008, DL0005 and DL0006 can show them beside their
 * own smaller measurements. The experiments write a markdown summary with pipe tables and their
 * figures as SVG; this reads exactly that, and nothing is shown when the folder is absent.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExplainFigure, ExplainTable } from './types.js';

export interface ExperimentResults {
  /** The command that produced them. */
  command: string;
  directory: string;
  /** When the summary was written. */
  modified: Date;
  /** Plain paragraphs of the summary (the setting it ran with). */
  paragraphs: string[];
  tables: ExplainTable[];
  figures: ExplainFigure[];
}

/** Where each experiment writes by default (relative to the working directory). */
export const experimentDirectories = {
  lrBatch: {
    command: 'tensile experiment lr-batch',
    directory: path.join('out', 'experiments', 'lr-batch'),
    summary: 'summary.md',
  },
  search: {
    command: 'tensile experiment search',
    directory: path.join('out', 'experiments', 'search'),
    summary: 'summary.md',
  },
  transfer: {
    command: 'tensile experiment transfer',
    directory: path.join('out', 'transfer'),
    summary: 'table.md',
  },
} as const;

/** Cells of a markdown table row: "| a | b |" → ['a', 'b']. */
function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((cell) => cell.trim());
}

/** The pipe tables of a markdown text, each titled by the heading or paragraph just before it. */
export function markdownTables(markdown: string): { tables: ExplainTable[]; paragraphs: string[] } {
  const lines = markdown.split('\n');
  const tables: ExplainTable[] = [];
  const paragraphs: string[] = [];
  let title = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line.startsWith('|') && /^\|?\s*:?-{3,}/.test(lines[i + 1]?.trim() ?? '')) {
      const columns = cells(line);
      const rows: string[][] = [];
      i += 2;
      while (i < lines.length && lines[i]!.trim().startsWith('|')) rows.push(cells(lines[i++]!));
      i--;
      tables.push({ title, columns, rows });
      continue;
    }
    if (line.startsWith('#')) title = line.replace(/^#+\s*/, '');
    else if (line.length > 0 && !line.startsWith('|')) {
      paragraphs.push(line.replace(/^[-*]\s+/, ''));
      if (title === '') title = line;
    }
  }
  return { tables, paragraphs };
}

/** The experiment's results in `directory`, or null when it has not been run there. */
export function readExperimentResults(
  which: keyof typeof experimentDirectories,
  directory?: string,
): ExperimentResults | null {
  const spec = experimentDirectories[which];
  const folder = directory ?? spec.directory;
  const summaryFile = path.join(folder, spec.summary);
  if (!fs.existsSync(summaryFile)) return null;
  const { tables, paragraphs } = markdownTables(fs.readFileSync(summaryFile, 'utf8'));
  const figures = fs
    .readdirSync(folder)
    .filter((name) => name.endsWith('.svg'))
    .sort()
    .map((name) => ({
      name: `experiment-${name.replace(/\.svg$/, '')}`,
      svg: fs.readFileSync(path.join(folder, name), 'utf8'),
    }));
  return {
    command: spec.command,
    directory: folder,
    modified: fs.statSync(summaryFile).mtime,
    paragraphs,
    tables,
    figures,
  };
}

/** One sentence introducing cached results. */
export function describeResults(results: ExperimentResults): string {
  // The summary's lines are notes, not always sentences: end each one so that they read as a paragraph.
  const sentences = results.paragraphs.slice(0, 3).map((line) => (/[.!?:]$/.test(line) ? line : `${line}.`));
  return `From ${results.command} (its results in ${results.directory}, written ${results.modified.toISOString().slice(0, 16).replace('T', ' ')}): ${sentences.join(' ')}`;
}
