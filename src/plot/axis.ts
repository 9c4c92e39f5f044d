/**
 * Axes for SVG charts: the data range, "nice" tick values (whole numbers only where the axis counts
 * things, such as epochs or trials), and the mapping from values to pixels.
 */
import { formatTicks } from './text.js';

export type Scale = 'linear' | 'log';

/**
 * "Nice" tick values covering [low, high], about `count` of them, at a step of 1, 2, 2.5 or 5 times a
 * power of ten. With `integer`, only whole-number steps (so no tick at 1.5 epochs).
 */
export function linearTicks(low: number, high: number, count = 5, integer = false): number[] {
  return linearTickStep(low, high, count, integer).ticks;
}

function linearTickStep(
  low: number,
  high: number,
  count: number,
  integer: boolean,
): { ticks: number[]; step: number } {
  if (!(high > low)) return { ticks: [low], step: 1 };
  const raw = (high - low) / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const candidates = [1, 2, 2.5, 5, 10]
    .map((m) => m * magnitude)
    .filter((step) => !integer || (step >= 1 && Number.isInteger(Number(step.toPrecision(12)))));
  const step = candidates.find((s) => s >= raw) ?? (integer ? Math.max(1, Math.ceil(raw)) : raw);
  const ticks: number[] = [];
  for (let i = Math.ceil(low / step - 1e-9); i * step <= high + step * 1e-9; i++)
    ticks.push(Number((i * step).toPrecision(12)));
  return { ticks, step };
}

/** Powers of ten covering [low, high] (plus 2× and 5× when the range is narrow enough). */
export function logTicks(low: number, high: number, withMultiples = true): number[] {
  const ticks: number[] = [];
  const first = Math.floor(Math.log10(low));
  const last = Math.ceil(Math.log10(high));
  for (let e = first; e <= last; e++) {
    for (const m of withMultiples && last - first <= 2 ? [1, 2, 5] : [1]) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= low * (1 - 1e-9) && v <= high * (1 + 1e-9)) ticks.push(v);
    }
  }
  return ticks;
}

/** One tick label, as the charts print them (kept for callers of the old single-value form). */
export function formatTick(value: number): string {
  return formatTicks([value], Number.isInteger(value) ? 1 : undefined)[0]!;
}

export interface AxisOptions {
  scale: Scale;
  /** A fixed range; computed from the values when absent. */
  range?: readonly [number, number] | undefined;
  /** Widen a computed linear range by 5% each side, so marks do not sit on the frame. */
  pad?: boolean;
  /** Whole-number ticks only. */
  integerTicks?: boolean;
  /** About how many ticks (fewer are used when their labels would overlap). */
  tickCount?: number;
}

/** An axis's range and ticks, before it is placed in pixels. */
export interface AxisDomain {
  scale: Scale;
  low: number;
  high: number;
  ticks: number[];
  labels: string[];
}

/** The range and ticks of an axis over `values` (non-finite values, and non-positive on log, skipped). */
export function axisDomain(values: readonly number[], options: AxisOptions): AxisDomain {
  const { scale } = options;
  const finite = values.filter((v) => Number.isFinite(v) && (scale === 'linear' || v > 0));
  let low = options.range?.[0] ?? (finite.length ? Math.min(...finite) : scale === 'log' ? 1 : 0);
  let high = options.range?.[1] ?? (finite.length ? Math.max(...finite) : scale === 'log' ? 10 : 1);
  if (low === high) {
    low = scale === 'log' ? low / 2 : low - 1;
    high = scale === 'log' ? high * 2 : high + 1;
  }
  if (options.pad && options.range === undefined && scale === 'linear') {
    const margin = (high - low) * 0.05;
    low -= margin;
    high += margin;
  }
  return withTicks(scale, low, high, options.tickCount ?? 5, options.integerTicks ?? false);
}

/** The domain's ticks recomputed with about `count` ticks (for when labels would overlap). */
export function withTicks(
  scale: Scale,
  low: number,
  high: number,
  count: number,
  integer: boolean,
): AxisDomain {
  if (scale === 'log') {
    let ticks = logTicks(low, high, count >= 5);
    if (count < 5 && ticks.length > count + 1) {
      // Too many powers of ten for the room: every k-th power, on exponents divisible by k.
      const every = Math.ceil((ticks.length - 1) / count);
      ticks = ticks.filter((tick) => Math.round(Math.log10(tick)) % every === 0);
    }
    return { scale, low, high, ticks, labels: formatTicks(ticks) };
  }
  const { ticks, step } = linearTickStep(low, high, count, integer);
  return { scale, low, high, ticks, labels: formatTicks(ticks, step) };
}

/** A value-to-pixel mapping of a domain onto [pixelLow, pixelHigh] (pixelHigh < pixelLow for y). */
export function toPixels(domain: AxisDomain, pixelLow: number, pixelHigh: number): (value: number) => number {
  const transform = (v: number) => (domain.scale === 'log' ? Math.log10(v) : v);
  const from = transform(domain.low);
  const span = transform(domain.high) - from;
  return (value) => pixelLow + ((transform(value) - from) / span) * (pixelHigh - pixelLow);
}
