/**
 * Tables in CSV files as training data: every column but the target becomes input features (numeric
 * columns standardised, categorical ones one-hot or index encoded, missing values filled by a stated
 * rule) and the target becomes a class index or a float. The encoding is fitted on the training rows
 * only and returned as plain JSON, so it can be saved beside the model and applied to new rows.
 *
 * Parsing is done by `csv-parse`, an optional peer dependency loaded on first use.
 */
import * as fs from 'node:fs';
import { Random } from '../tensor/random.js';
import { OptionalDependencyError, requireOptional } from '../util/optional-dependency.js';
import type { Dataset, Example } from './protocol.js';

/** Field values read as missing (compared after trimming, case-insensitively): '', NA, N/A, NaN, null, None, ?. */
export const MISSING_VALUES: readonly string[] = ['', 'na', 'n/a', 'nan', 'null', 'none', '?'];

/** The category a categorical column's missing values (and values unseen in training) are encoded as. */
export const MISSING_CATEGORY = '(missing)';

/** A CSV file could not be read as a table; `line` is the 1-based line of the problem when known. */
export class CsvError extends Error {
  override readonly name = 'CsvError';

  constructor(
    readonly file: string,
    readonly line: number | undefined,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The records of a CSV file with the line each ends on (multi-line quoted fields span several). */
export interface CsvRecords {
  /** Column names: the header row, or column1, column2, ... when the file has none. */
  columns: string[];
  rows: string[][];
  /** The 1-based line number of each row, for error messages. */
  lines: number[];
  hasHeader: boolean;
}

export interface ReadCsvOptions {
  /** Field separator (default ','). */
  delimiter?: string;
  /**
   * Whether the first row names the columns. Default 'auto': it does when none of its fields is a
   * number while some later row has a number in a column, or when every field of the file is text
   * and the first row's fields are distinct.
   */
  header?: boolean | 'auto';
}

interface CsvParseModule {
  parse(input: string, options: Record<string, unknown>): { record: string[]; info: { lines: number } }[];
}

/** csv-parse's synchronous parser; a missing package is reported as 'npm install csv-parse'. */
function loadCsvParse(): CsvParseModule {
  try {
    return requireOptional<CsvParseModule>('csv-parse/sync', 'reading CSV files');
  } catch (error) {
    // The message names the subpath; the package to install is csv-parse itself.
    if (error instanceof OptionalDependencyError && error.message.includes('npm install csv-parse/sync'))
      throw new OptionalDependencyError(
        'csv-parse',
        error.feature,
        error.message
          .replace(/'csv-parse\/sync'/, "'csv-parse'")
          .replace('npm install csv-parse/sync', 'npm install csv-parse'),
        { cause: error.cause },
      );
    throw error;
  }
}

function isNumber(text: string): boolean {
  return text.trim() !== '' && Number.isFinite(Number(text));
}

/** Whether a field counts as missing (see MISSING_VALUES). */
export function isMissingValue(text: string | undefined): boolean {
  return text === undefined || MISSING_VALUES.includes(text.trim().toLowerCase());
}

/**
 * A CSV file's rows, parsed with quoting (RFC 4180: "a, b", "say ""hi"""), a byte-order mark and
 * blank lines allowed. A row with a different field count, an unclosed quote or a stray quote is a
 * CsvError naming the file and the line.
 */
export function readCsvRecords(file: string, options: ReadCsvOptions = {}): CsvRecords {
  const { parse } = loadCsvParse();
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new CsvError(file, undefined, `${file}: cannot read: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let parsed: { record: string[]; info: { lines: number } }[];
  try {
    parsed = parse(text, {
      info: true,
      bom: true,
      skip_empty_lines: true,
      trim: true,
      delimiter: options.delimiter ?? ',',
    });
  } catch (error) {
    const line = (error as { lines?: unknown }).lines;
    const where = typeof line === 'number' ? `line ${line}: ` : '';
    throw new CsvError(
      file,
      typeof line === 'number' ? line : undefined,
      `${file}: ${where}${(error as Error).message}`,
      { cause: error },
    );
  }
  if (parsed.length === 0) throw new CsvError(file, undefined, `${file}: the file has no rows`);
  const first = parsed[0]!.record;
  const hasHeader =
    options.header === undefined || options.header === 'auto' ? detectHeader(parsed) : options.header;
  const columns = hasHeader
    ? first.map((name, i) => name || `column${i + 1}`)
    : first.map((_, i) => `column${i + 1}`);
  const duplicate = columns.find((name, i) => columns.indexOf(name) !== i);
  if (duplicate !== undefined)
    throw new CsvError(file, 1, `${file}: line 1: the header names column '${duplicate}' twice`);
  const body = hasHeader ? parsed.slice(1) : parsed;
  return {
    columns,
    rows: body.map((entry) => entry.record),
    lines: body.map((entry) => entry.info.lines),
    hasHeader,
  };
}

function detectHeader(parsed: { record: string[] }[]): boolean {
  const first = parsed[0]!.record;
  if (first.some(isNumber) || first.some((field) => field === '')) return false;
  const rest = parsed.slice(1, 101);
  if (rest.some((entry) => entry.record.some(isNumber))) return true;
  // All text: a header is the usual reason for a first row of distinct names.
  return new Set(first).size === first.length;
}

/** How one input column becomes features. */
export type ColumnEncoding =
  | {
      name: string;
      kind: 'numeric';
      /** Training mean: missing values are filled with it (and so become 0 after standardising). */
      mean: number;
      /** Training population standard deviation (1 where the column is constant). */
      standardDeviation: number;
    }
  | {
      name: string;
      kind: 'categorical';
      /** The training values, sorted, then MISSING_CATEGORY; a feature (or index) per entry. */
      categories: string[];
      encoding: 'one-hot' | 'index';
    };

/** How the target column becomes a class index or a float. */
export type TargetEncoding =
  | { name: string; task: 'classification'; classNames: string[] }
  | {
      name: string;
      task: 'regression';
      /** The target is trained standardised; predictions · standardDeviation + mean are in its units. */
      mean: number;
      standardDeviation: number;
    };

/**
 * Everything needed to turn a row of the table into a model input the same way as in training: plain
 * JSON (JSON.stringify it beside the model; applyEncoding reads it back).
 */
export interface TableEncoding {
  format: 'tensile-table-encoding';
  version: 1;
  columns: ColumnEncoding[];
  target: TargetEncoding;
  /** Input features per row: the sum of the columns' widths. */
  features: number;
}

export interface CsvDatasetOptions extends ReadCsvOptions {
  /** The target column's name (or column1, column2, ... without a header). */
  target: string;
  /**
   * 'classification' (class index targets, names sorted) or 'regression' (a float target). Default:
   * classification when a target value is not a number, or when the targets are integers with at
   * most 20 distinct values; regression otherwise.
   */
  task?: 'classification' | 'regression';
  /** Columns to read as categorical even though their values are numbers (e.g. codes). */
  categorical?: readonly string[];
  /** Columns to leave out (identifiers, leaks). */
  ignore?: readonly string[];
  /** 'one-hot' (default: a 0/1 feature per category) or 'index' (one feature, the category's index). */
  categoricalEncoding?: 'one-hot' | 'index';
  /** Hold out this fraction of the rows (seeded) as a validation set; the encoding sees only the rest. */
  validationSplit?: number;
  /** Seeds the validation split (default 0). */
  seed?: number;
  /** An encoding fitted before (e.g. on the training file): applied as is, nothing is fitted. */
  encoding?: TableEncoding;
}

/**
 * Encoded rows as a map-style dataset: input [features], target a class index (classification) or
 * [1] floats (regression, standardised by the encoding's target mean and deviation).
 */
export interface TableDataset extends Dataset<Example> {
  /** [length, features] row-major. */
  readonly inputs: Float32Array;
  /** Class indices, or standardised regression targets; one per row. */
  readonly targets: Int32Array | Float32Array;
  readonly features: number;
}

export interface CsvDatasetResult {
  train: TableDataset;
  /** The held-out rows when validationSplit was given, else null. */
  validation: TableDataset | null;
  encoding: TableEncoding;
}

function inferTask(values: string[]): 'classification' | 'regression' {
  if (values.some((value) => !isNumber(value))) return 'classification';
  const numbers = values.map(Number);
  if (numbers.every(Number.isInteger) && new Set(numbers).size <= 20) return 'classification';
  return 'regression';
}

/**
 * Fits an encoding on the given rows: column kinds (numeric when every present value is a number),
 * means and deviations, category lists, the target's classes or scale.
 */
export function fitEncoding(
  table: Pick<CsvRecords, 'columns' | 'rows' | 'lines'>,
  options: Omit<CsvDatasetOptions, 'encoding' | 'validationSplit' | 'seed'>,
  file = 'table',
): TableEncoding {
  const { columns, rows } = table;
  const targetIndex = columns.indexOf(options.target);
  if (targetIndex < 0)
    throw new CsvError(
      file,
      undefined,
      `${file}: there is no column '${options.target}' to predict; the columns are ${columns.join(', ')}`,
    );
  for (const name of [...(options.categorical ?? []), ...(options.ignore ?? [])])
    if (!columns.includes(name))
      throw new CsvError(
        file,
        undefined,
        `${file}: there is no column '${name}'; the columns are ${columns.join(', ')}`,
      );
  if (rows.length === 0) throw new CsvError(file, undefined, `${file}: no data rows to fit an encoding on`);
  const targetValues = rows.map((row, r) => {
    const value = row[targetIndex];
    if (isMissingValue(value))
      throw new CsvError(
        file,
        table.lines[r],
        `${file}: line ${table.lines[r]}: the target '${options.target}' is missing`,
      );
    return value!.trim();
  });
  const task = options.task ?? inferTask(targetValues);
  let target: TargetEncoding;
  if (task === 'classification') {
    target = { name: options.target, task, classNames: sortedDistinct(targetValues) };
  } else {
    const bad = targetValues.findIndex((value) => !isNumber(value));
    if (bad >= 0)
      throw new CsvError(
        file,
        table.lines[bad],
        `${file}: line ${table.lines[bad]}: the regression target '${options.target}' is '${targetValues[bad]}', not a number`,
      );
    const { mean, standardDeviation } = meanAndDeviation(targetValues.map(Number));
    target = { name: options.target, task, mean, standardDeviation };
  }
  const encodings: ColumnEncoding[] = [];
  columns.forEach((name, c) => {
    if (c === targetIndex || options.ignore?.includes(name)) return;
    const present = rows
      .map((row) => row[c]!)
      .filter((value) => !isMissingValue(value))
      .map((value) => value.trim());
    const numeric = !options.categorical?.includes(name) && present.length > 0 && present.every(isNumber);
    if (numeric) {
      encodings.push({ name, kind: 'numeric', ...meanAndDeviation(present.map(Number)) });
    } else {
      encodings.push({
        name,
        kind: 'categorical',
        categories: [...sortedDistinct(present), MISSING_CATEGORY],
        encoding: options.categoricalEncoding ?? 'one-hot',
      });
    }
  });
  return {
    format: 'tensile-table-encoding',
    version: 1,
    columns: encodings,
    target,
    features: encodings.reduce((sum, column) => sum + columnWidth(column), 0),
  };
}

function columnWidth(column: ColumnEncoding): number {
  return column.kind === 'categorical' && column.encoding === 'one-hot' ? column.categories.length : 1;
}

function sortedDistinct(values: string[]): string[] {
  // Numbers in numeric order (class '10' after '9'), text in code-point order: the same everywhere.
  const distinct = [...new Set(values)];
  return distinct.every(isNumber)
    ? distinct.sort((a, b) => Number(a) - Number(b))
    : distinct.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function meanAndDeviation(values: number[]): { mean: number; standardDeviation: number } {
  let sum = 0;
  for (const value of values) sum += value;
  const mean = values.length > 0 ? sum / values.length : 0;
  let squares = 0;
  for (const value of values) squares += (value - mean) ** 2;
  const deviation = values.length > 0 ? Math.sqrt(squares / values.length) : 0;
  // A constant column carries no information; dividing by 1 keeps it at 0 instead of NaN.
  return { mean, standardDeviation: deviation > 0 ? deviation : 1 };
}

/**
 * Rows encoded as the encoding says: inputs [rows, features] and, when the rows have the target
 * column, targets [rows] (class indices, or standardised floats for regression). `columns` names the
 * rows' fields (their order may differ from training; extra columns are ignored). A row lacking a
 * column, a number column holding text or a class not seen in training is an error naming the line.
 *
 * @example
 * const encoding = JSON.parse(fs.readFileSync('model.encoding.json', 'utf8'));
 * const { inputs } = applyEncoding(encoding, ['age', 'city'], [['41', 'Lyon']]); // [1, features]
 */
export function applyEncoding(
  encoding: TableEncoding,
  columns: readonly string[],
  rows: readonly (readonly string[])[],
  options: { lines?: readonly number[]; file?: string } = {},
): { inputs: Float32Array; targets: Int32Array | Float32Array | null } {
  if (encoding.format !== 'tensile-table-encoding' || encoding.version !== 1)
    throw new TypeError(
      'applyEncoding: not a tensile table encoding (format tensile-table-encoding, version 1)',
    );
  const file = options.file ?? 'rows';
  const lineOf = (r: number) => options.lines?.[r] ?? r + 1;
  const positions = encoding.columns.map((column) => {
    const index = columns.indexOf(column.name);
    if (index < 0) throw new CsvError(file, undefined, `${file}: the column '${column.name}' is missing`);
    return index;
  });
  const targetIndex = columns.indexOf(encoding.target.name);
  const inputs = new Float32Array(rows.length * encoding.features);
  const targets =
    targetIndex < 0
      ? null
      : encoding.target.task === 'classification'
        ? new Int32Array(rows.length)
        : new Float32Array(rows.length);
  rows.forEach((row, r) => {
    let offset = r * encoding.features;
    encoding.columns.forEach((column, k) => {
      const raw = row[positions[k]!];
      if (raw === undefined)
        throw new CsvError(
          file,
          lineOf(r),
          `${file}: line ${lineOf(r)}: no value for column '${column.name}'`,
        );
      if (column.kind === 'numeric') {
        let value = column.mean;
        if (!isMissingValue(raw)) {
          if (!isNumber(raw))
            throw new CsvError(
              file,
              lineOf(r),
              `${file}: line ${lineOf(r)}: column '${column.name}' is numeric but holds '${raw}'`,
            );
          value = Number(raw);
        }
        inputs[offset++] = (value - column.mean) / column.standardDeviation;
      } else {
        // Missing, and unseen in training, are both the last category, MISSING_CATEGORY.
        const found = isMissingValue(raw) ? -1 : column.categories.indexOf(raw.trim());
        const category = found < 0 ? column.categories.length - 1 : found;
        if (column.encoding === 'one-hot') {
          inputs[offset + category] = 1;
          offset += column.categories.length;
        } else inputs[offset++] = category;
      }
    });
    if (targets !== null) {
      const raw = row[targetIndex];
      if (isMissingValue(raw))
        throw new CsvError(
          file,
          lineOf(r),
          `${file}: line ${lineOf(r)}: the target '${encoding.target.name}' is missing`,
        );
      const value = raw!.trim();
      if (encoding.target.task === 'classification') {
        const index = encoding.target.classNames.indexOf(value);
        if (index < 0)
          throw new CsvError(
            file,
            lineOf(r),
            `${file}: line ${lineOf(r)}: class '${value}' of '${encoding.target.name}' was not in the training data (${encoding.target.classNames.join(', ')})`,
          );
        targets[r] = index;
      } else {
        if (!isNumber(value))
          throw new CsvError(
            file,
            lineOf(r),
            `${file}: line ${lineOf(r)}: the target '${value}' is not a number`,
          );
        targets[r] = (Number(value) - encoding.target.mean) / encoding.target.standardDeviation;
      }
    }
  });
  return { inputs, targets };
}

/** Encoded arrays as a map-style dataset (inputs are views, not copies). */
export function tableDataset(
  inputs: Float32Array,
  targets: Int32Array | Float32Array,
  features: number,
): TableDataset {
  const length = targets.length;
  const shape = [features];
  const classIndexed = targets instanceof Int32Array;
  return {
    length,
    inputs,
    targets,
    features,
    get: (index) => ({
      input: inputs.subarray(index * features, (index + 1) * features),
      shape,
      target: classIndexed ? targets[index]! : targets.subarray(index, index + 1),
    }),
  };
}

/**
 * A CSV table as training data: a map-style dataset of encoded rows and the encoding used.
 *
 * Missing values (MISSING_VALUES) are filled by rule: a numeric column's with its training mean, a
 * categorical column's with the category MISSING_CATEGORY (which also takes values unseen in
 * training). Numeric columns are standardised with the training mean and deviation.
 *
 * @example
 * const { train, validation, encoding } = csvDataset('houses.csv', { target: 'price', validationSplit: 0.2 });
 * fit(model, train, { optimizer, epochs: 20, loss: mseLoss, validationData: validation! });
 */
export function csvDataset(file: string, options: CsvDatasetOptions): CsvDatasetResult {
  const table = readCsvRecords(file, options);
  if (table.rows.length === 0)
    throw new CsvError(file, undefined, `${file}: the file has a header but no rows`);
  const trainRows: number[] = [];
  const validationRows: number[] = [];
  if (options.validationSplit !== undefined) {
    const fraction = options.validationSplit;
    if (!(fraction > 0 && fraction < 1))
      throw new RangeError(`csvDataset: validationSplit must be in (0, 1), got ${fraction}`);
    const order = Array.from(table.rows, (_, i) => i);
    new Random(options.seed ?? 0).shuffle(order);
    const held = Math.round(table.rows.length * fraction);
    order.forEach((row, i) => (i < held ? validationRows : trainRows).push(row));
    trainRows.sort((a, b) => a - b);
    validationRows.sort((a, b) => a - b);
  } else trainRows.push(...table.rows.keys());
  const pick = (indices: number[]) => ({
    columns: table.columns,
    rows: indices.map((i) => table.rows[i]!),
    lines: indices.map((i) => table.lines[i]!),
  });
  const trainTable = pick(trainRows);
  const encoding = options.encoding ?? fitEncoding(trainTable, options, file);
  const encode = (part: ReturnType<typeof pick>): TableDataset => {
    const { inputs, targets } = applyEncoding(encoding, part.columns, part.rows, { lines: part.lines, file });
    if (targets === null)
      throw new CsvError(file, undefined, `${file}: there is no column '${encoding.target.name}' to predict`);
    return tableDataset(inputs, targets, encoding.features);
  };
  return {
    train: encode(trainTable),
    validation: validationRows.length > 0 ? encode(pick(validationRows)) : null,
    encoding,
  };
}
