/**
 * An explain topic: one seed note shown with numbers computed live by tensile, its text written from
 * those numbers (so it says what they show, agreeing with the note or not), and its figures.
 */
import { type JsonObject, type RunStore, type Storage } from '../../src/index.js';

export interface ExplainTable {
  title: string;
  columns: string[];
  rows: string[][];
}

export interface ExplainFigure {
  /** File name without extension (also the artifact's name). */
  name: string;
  svg: string;
}

export interface TopicResult {
  title: string;
  /** The note's question. */
  question: string;
  /** Paragraphs in tensile's words, with the measured numbers. */
  text: string[];
  tables: ExplainTable[];
  figures: ExplainFigure[];
  /** The measured numbers, for tests and for anyone reading the store. */
  numbers: JsonObject;
}

export interface ExplainContext {
  /** Where the topic's trainings are recorded (as child runs of the topic's run). */
  store: RunStore;
  /** Study storage, for topics that run a study (DL0008); the same database as the runs. */
  studies: Storage;
  /** The topic's own run. */
  runId: number;
  /** A small version of each experiment (seconds instead of minutes), for tests. */
  quick: boolean;
  /** Folder for intermediate files (pretrained weights shared between topics). */
  cacheDirectory: string;
  /** Progress lines. */
  log(line: string): void;
}

export interface Topic {
  /** The note's identifier, e.g. 'DL0011'. */
  id: string;
  /** Words that also name it, e.g. ['fc']. */
  aliases: readonly string[];
  title: string;
  /**
   * Bumped when what the topic computes changes, so results cached by an older version are not
   * shown as current.
   */
  version: number;
  /**
   * What else the result depends on (e.g. when an experiment's results on disk were written); a
   * stored result is reused only while this is unchanged.
   */
  inputs?(): JsonObject;
  run(context: ExplainContext): Promise<TopicResult>;
}
