/**
 * Text for SVG charts: measured with the real font (./font-metrics.ts), wrapped or shrunk to fit a
 * width, and written as <text> elements that carry everything needed to compute their extent again
 * (x, y, font-size, font-weight, text-anchor, rotation), so tests can check that nothing is clipped.
 * Also the number formats charts print: exact values with thousands separators, and tick labels.
 */
import { fontMetrics, textWidth, type FontWeight } from './font-metrics.js';

export const fontFamily = 'DejaVu Sans, Arial, Helvetica, sans-serif';

export type Anchor = 'start' | 'middle' | 'end';

export interface TextStyle {
  /** Font size in pixels. */
  size: number;
  weight?: FontWeight;
  anchor?: Anchor;
  fill?: string;
  /** Rotation in degrees about the text's anchor point (-90 reads bottom to top). */
  rotate?: number;
}

export function escapeXml(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!,
  );
}

/** Width in pixels of `content` in a style. */
export function measure(content: string, style: Pick<TextStyle, 'size' | 'weight'>): number {
  return textWidth(content, style.size, style.weight ?? 'normal');
}

/** Distance between baselines of wrapped lines at a font size (DejaVu's ascent + descent). */
export function lineHeight(size: number): number {
  const { ascent, descent } = fontMetrics().vertical;
  return Math.ceil((ascent + descent) * size);
}

/** Height above the baseline of the font's tallest glyphs at a size. */
export function ascent(size: number): number {
  return fontMetrics().vertical.ascent * size;
}

/** Depth below the baseline of the font's lowest glyphs at a size. */
export function descent(size: number): number {
  return fontMetrics().vertical.descent * size;
}

/** A text laid out to fit a width: its lines and the size they are set at. */
export interface FittedText {
  lines: string[];
  size: number;
  /** Widest line, in pixels. */
  width: number;
  /** Height of all lines, from the first line's ascent to the last line's descent. */
  height: number;
}

/**
 * Lays `content` out within `maxWidth` pixels: on one line if it fits; else wrapped at spaces into
 * at most `maxLines` lines; and only when a word alone is too wide, or the lines would be too many,
 * at a smaller size (down to `minSize`; below that the text is wrapped anyway, so it is never cut).
 */
export function fitText(
  content: string,
  style: Pick<TextStyle, 'size' | 'weight'>,
  maxWidth: number,
  options: { maxLines?: number; minSize?: number } = {},
): FittedText {
  const maxLines = options.maxLines ?? 3;
  const minSize = Math.min(options.minSize ?? 7, style.size);
  const words = content.split(/\s+/).filter((word) => word.length > 0);
  const weight = style.weight ?? 'normal';
  const wrap = (size: number): string[] => {
    const lines: string[] = [];
    for (const word of words) {
      const last = lines.at(-1);
      if (last !== undefined && textWidth(`${last} ${word}`, size, weight) <= maxWidth) {
        lines[lines.length - 1] = `${last} ${word}`;
      } else {
        lines.push(word);
      }
    }
    return lines.length > 0 ? lines : [''];
  };
  const result = (lines: string[], size: number): FittedText => ({
    lines,
    size,
    width: Math.max(...lines.map((line) => textWidth(line, size, weight))),
    height: ascent(size) + descent(size) + (lines.length - 1) * lineHeight(size),
  });
  // Half-pixel steps keep the shrink small, so a long title keeps most of its size.
  for (let size = style.size; size >= minSize; size -= 0.5) {
    const lines = wrap(size);
    const fits = lines.every((line) => textWidth(line, size, weight) <= maxWidth);
    if (fits && lines.length <= maxLines) return result(lines, size);
  }
  // Even at the smallest size a word is too wide: the smallest size whose words all fit, wrapping freely.
  let size = minSize;
  const widest = Math.max(...words.map((word) => textWidth(word, 1, weight)), 1e-9);
  size = Math.min(size, maxWidth / widest);
  size = Math.floor(size * 100) / 100;
  return result(wrap(size), size);
}

/** One <text> element; `content` is escaped here. */
export function textElement(x: number, y: number, content: string, style: TextStyle): string {
  const anchor = style.anchor ?? 'middle';
  const rotate = style.rotate ? ` transform="rotate(${style.rotate} ${x.toFixed(2)} ${y.toFixed(2)})"` : '';
  const weight = style.weight === 'bold' ? ' font-weight="bold"' : '';
  return `<text x="${x.toFixed(2)}" y="${y.toFixed(2)}" font-family="${fontFamily}" font-size="${style.size}"${weight} text-anchor="${anchor}" fill="${style.fill ?? '#222'}"${rotate}>${escapeXml(content)}</text>`;
}

/**
 * The lines of a fitted text as <text> elements, the first baseline at `y` (before rotation).
 * Rotated -90, lines stack to the right of the first, as a rotated block would.
 */
export function textLines(
  x: number,
  y: number,
  fitted: FittedText,
  style: Omit<TextStyle, 'size'>,
): string[] {
  const step = lineHeight(fitted.size);
  return fitted.lines.map((line, i) =>
    style.rotate === -90
      ? textElement(x + i * step, y, line, { ...style, size: fitted.size, rotate: -90 })
      : textElement(x, y + i * step, line, { ...style, size: fitted.size }),
  );
}

/** Digits of `integerPart` in groups of three: 12544 → "12,544". */
function groupThousands(integerPart: string): string {
  return integerPart.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A decimal string ("-12544.5", "3e-7") with its integer digits grouped by thousands. */
function withSeparators(decimal: string): string {
  if (/e/i.test(decimal)) return decimal;
  const negative = decimal.startsWith('-');
  const [integerPart, fraction] = (negative ? decimal.slice(1) : decimal).split('.');
  return `${negative ? '-' : ''}${groupThousands(integerPart!)}${fraction === undefined ? '' : `.${fraction}`}`;
}

/**
 * A value printed exactly as given, with thousands separators: 12544 → "12,544", 97.3 → "97.3".
 * Only floating-point noise past 12 significant digits is dropped (0.1 + 0.2 → "0.3"); integers are
 * never rounded. Very large or small magnitudes keep JavaScript's exponent form ("1e+21", "3e-7").
 */
export function formatExact(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e21) return withSeparators(value.toFixed(0));
  return withSeparators(String(Number(value.toPrecision(12))));
}

/** The number of decimals a tick step needs (0.25 → 2, 5 → 0). */
function stepDecimals(step: number): number {
  const text = String(Number(step.toPrecision(12)));
  if (/e-/.test(text)) return Number(text.split('e-')[1]) + (text.split('e')[0]!.split('.')[1]?.length ?? 0);
  return text.split('.')[1]?.length ?? 0;
}

/**
 * Tick labels for an axis's tick values, all in one format: with `step` (a linear axis) each shows
 * the decimals the step needs, with thousands separators; without (a log axis) plain decimals, or
 * exponents ("1e-4") for every tick when some are below 0.001 or at least 100,000.
 */
export function formatTicks(ticks: readonly number[], step?: number): string[] {
  if (step === undefined) {
    const exponent = ticks.some((t) => t !== 0 && (Math.abs(t) < 1e-3 || Math.abs(t) >= 1e5));
    return ticks.map((t) =>
      exponent && t !== 0 ? Number(t.toPrecision(6)).toExponential().replace('e+', 'e') : formatExact(t),
    );
  }
  const decimals = Math.min(stepDecimals(step), 20);
  return ticks.map((t) => withSeparators((Math.abs(t) < step * 1e-9 ? 0 : t).toFixed(decimals)));
}
