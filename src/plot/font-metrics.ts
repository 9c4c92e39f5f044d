/**
 * Text widths from the font the PNGs are rendered with (DejaVu Sans, from the npm package
 * dejavu-fonts-ttf), read from the TrueType file itself: `cmap` maps characters to glyphs, the `GSUB`
 * table's standard ligatures (fi, fl, ...) merge some of them, `hmtx` gives each glyph's advance and
 * the `GPOS` table's pair kerning adjusts neighbours. resvg's shaper (rustybuzz) applies the same
 * ligatures and kerning, chosen by the script of the text's first letter, so a width measured here
 * is the width drawn (test/plot-font-metrics.test.ts compares the two on random strings), at any
 * size, and charts place legends, margins and labels from it instead of guessing a width per
 * character.
 *
 * Only what horizontal advances need is read: no outlines, no hinting (resvg draws unhinted
 * outlines, so widths scale linearly with the font size), no mark positioning (combining marks take
 * no advance of their own).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { optionalPackageDirectory } from '../util/optional-dependency.js';

export type FontWeight = 'normal' | 'bold';

/** Vertical metrics in em units (multiply by the font size for pixels). */
export interface VerticalMetrics {
  /** Height above the baseline of the tallest glyphs (hhea ascender), positive. */
  ascent: number;
  /** Depth below the baseline (hhea descender), positive. */
  descent: number;
}

/** Advance widths of one font face. */
export interface FontMetrics {
  readonly unitsPerEm: number;
  readonly vertical: VerticalMetrics;
  /** The glyph index the font maps `codePoint` to (0, the missing-glyph box, when it has none). */
  glyphIndex(codePoint: number): number;
  /** Advance width of a glyph, in font units, before kerning. */
  advance(glyph: number): number;
  /** Width of `content` set at `size` pixels, in pixels, after ligatures and kerning. */
  width(content: string, size: number): number;
}

/** A big-endian reader over the font file's bytes. */
class FontData {
  private readonly view: DataView;
  constructor(bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u16(offset: number): number {
    return this.view.getUint16(offset);
  }
  i16(offset: number): number {
    return this.view.getInt16(offset);
  }
  u32(offset: number): number {
    return this.view.getUint32(offset);
  }
  tag(offset: number): string {
    return String.fromCharCode(...[0, 1, 2, 3].map((i) => this.view.getUint8(offset + i)));
  }
}

/** Combining marks take no room of their own: the shaper places them over the previous glyph. */
function isCombiningMark(codePoint: number): boolean {
  return (
    (codePoint >= 0x0300 && codePoint <= 0x036f) ||
    (codePoint >= 0x1ab0 && codePoint <= 0x1aff) ||
    (codePoint >= 0x1dc0 && codePoint <= 0x1dff) ||
    (codePoint >= 0x20d0 && codePoint <= 0x20ff) ||
    (codePoint >= 0xfe20 && codePoint <= 0xfe2f)
  );
}

/**
 * The OpenType script tag a shaper picks for a text: that of its first letter (digits, punctuation
 * and symbols belong to no script), else the default, 'DFLT'. The shaper uses that one script for
 * the whole text, so "μAV" is kerned as Greek and its Latin pair AV is not. Covers the scripts chart
 * text uses; letters of other scripts fall back to the default.
 */
export function scriptTag(content: string): string {
  for (const character of content) {
    const c = character.codePointAt(0)!;
    if (
      (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x61 && c <= 0x7a) ||
      c === 0xaa ||
      c === 0xba ||
      (c >= 0xc0 && c <= 0x24f && c !== 0xd7 && c !== 0xf7) ||
      (c >= 0x1e00 && c <= 0x1eff) ||
      (c >= 0xfb00 && c <= 0xfb06)
    )
      return 'latn';
    if (
      (c >= 0x370 && c <= 0x3ff && ![0x374, 0x37e, 0x385, 0x387].includes(c)) ||
      (c >= 0x1f00 && c <= 0x1fff) ||
      c === 0x2126
    )
      return 'grek';
    if (c >= 0x400 && c <= 0x52f) return 'cyrl';
  }
  return 'DFLT';
}

/** What one script's shaping changes in widths: ligature lookups, then pair-kerning lookups. */
interface ScriptLayout {
  ligatures: LigatureLookup[];
  kerning: PairLookup[];
}

/**
 * Parses the tables of a TrueType font that horizontal text layout needs. Throws when a required
 * table (head, hhea, hmtx, cmap) is missing or has no Unicode subtable.
 */
export function parseFont(bytes: Uint8Array): FontMetrics {
  const data = new FontData(bytes);
  const tables = new Map<string, number>();
  const tableCount = data.u16(4);
  for (let i = 0; i < tableCount; i++) {
    const record = 12 + 16 * i;
    tables.set(data.tag(record), data.u32(record + 8));
  }
  const table = (tag: string): number => {
    const offset = tables.get(tag);
    if (offset === undefined) throw new Error(`font: no '${tag}' table`);
    return offset;
  };

  const unitsPerEm = data.u16(table('head') + 18);
  const hhea = table('hhea');
  const vertical = { ascent: data.i16(hhea + 4) / unitsPerEm, descent: -data.i16(hhea + 6) / unitsPerEm };
  const metricCount = data.u16(hhea + 34);

  // hmtx: metricCount (advance, left side bearing) pairs; glyphs past them repeat the last advance.
  const hmtx = table('hmtx');
  const advances = new Uint16Array(metricCount);
  for (let g = 0; g < metricCount; g++) advances[g] = data.u16(hmtx + 4 * g);
  const advance = (glyph: number) => advances[Math.min(glyph, metricCount - 1)]!;

  const glyphIndex = readCharacterMap(data, table('cmap'));
  const gsub = tables.get('GSUB');
  const gpos = tables.get('GPOS');
  // Shapers kern from GPOS when a font has it and fall back to the legacy kern table only without.
  const legacyKerning: PairLookup[] =
    gpos === undefined && tables.has('kern') ? [readLegacyKerning(data, table('kern'))] : [];
  const layouts = new Map<string, ScriptLayout>();
  const layoutFor = (script: string): ScriptLayout => {
    let layout = layouts.get(script);
    if (layout === undefined) {
      layout = {
        ligatures:
          gsub === undefined
            ? []
            : featureLookups(data, gsub, script, 'liga').map((lookup) => readLigatureLookup(data, lookup)),
        kerning:
          gpos === undefined
            ? legacyKerning
            : featureLookups(data, gpos, script, 'kern').map((lookup) => readPairLookup(data, lookup)),
      };
      layouts.set(script, layout);
    }
    return layout;
  };

  return {
    unitsPerEm,
    vertical,
    glyphIndex,
    advance,
    width(content: string, size: number): number {
      const layout = layoutFor(scriptTag(content));
      let glyphs: number[] = [];
      for (const character of content) {
        const codePoint = character.codePointAt(0)!;
        if (!isCombiningMark(codePoint)) glyphs.push(glyphIndex(codePoint));
      }
      for (const lookup of layout.ligatures) glyphs = applyLigatures(glyphs, lookup);
      let total = glyphs.reduce((sum, glyph) => sum + advance(glyph), 0);
      for (const lookup of layout.kerning) total += pairAdjustments(glyphs, lookup);
      return (total * size) / unitsPerEm;
    },
  };
}

/**
 * The Unicode character map: a format 12 subtable (all planes) when the font has one, else format 4
 * (the Basic Multilingual Plane, as segments of consecutive characters).
 */
function readCharacterMap(data: FontData, cmap: number): (codePoint: number) => number {
  const subtables: { platform: number; encoding: number; offset: number }[] = [];
  for (let i = 0; i < data.u16(cmap + 2); i++) {
    const record = cmap + 4 + 8 * i;
    subtables.push({
      platform: data.u16(record),
      encoding: data.u16(record + 2),
      offset: cmap + data.u32(record + 4),
    });
  }
  const unicode = subtables.filter(
    (s) => s.platform === 0 || (s.platform === 3 && (s.encoding === 1 || s.encoding === 10)),
  );
  const full = unicode.find((s) => data.u16(s.offset) === 12);
  if (full !== undefined) {
    const groups: [number, number, number][] = [];
    for (let i = 0; i < data.u32(full.offset + 12); i++) {
      const group = full.offset + 16 + 12 * i;
      groups.push([data.u32(group), data.u32(group + 4), data.u32(group + 8)]);
    }
    return (codePoint) => {
      // Groups are sorted by first character: binary search for the last group starting at or before it.
      let low = 0;
      let high = groups.length - 1;
      while (low <= high) {
        const middle = (low + high) >> 1;
        const [first, last, glyph] = groups[middle]!;
        if (codePoint < first) high = middle - 1;
        else if (codePoint > last) low = middle + 1;
        else return glyph + codePoint - first;
      }
      return 0;
    };
  }
  const basic = unicode.find((s) => data.u16(s.offset) === 4);
  if (basic === undefined) throw new Error('font: no Unicode character map (cmap format 4 or 12)');
  const base = basic.offset;
  const segmentCount = data.u16(base + 6) / 2;
  const ends = base + 14;
  const starts = ends + 2 * segmentCount + 2;
  const deltas = starts + 2 * segmentCount;
  const rangeOffsets = deltas + 2 * segmentCount;
  const cache = new Map<number, number>();
  return (codePoint) => {
    if (codePoint > 0xffff) return 0;
    const known = cache.get(codePoint);
    if (known !== undefined) return known;
    let glyph = 0;
    for (let s = 0; s < segmentCount; s++) {
      if (codePoint > data.u16(ends + 2 * s)) continue;
      const start = data.u16(starts + 2 * s);
      if (codePoint < start) break;
      const delta = data.u16(deltas + 2 * s);
      const rangeOffset = data.u16(rangeOffsets + 2 * s);
      if (rangeOffset === 0) {
        glyph = (codePoint + delta) & 0xffff;
      } else {
        // The offset is relative to this segment's own idRangeOffset entry (the format's quirk).
        const at = rangeOffsets + 2 * s + rangeOffset + 2 * (codePoint - start);
        const raw = data.u16(at);
        glyph = raw === 0 ? 0 : (raw + delta) & 0xffff;
      }
      break;
    }
    cache.set(codePoint, glyph);
    return glyph;
  };
}

/** The glyphs a coverage table lists, in coverage order (format 1: a list; format 2: ranges). */
function readCoverage(data: FontData, offset: number): number[] {
  const format = data.u16(offset);
  const count = data.u16(offset + 2);
  const glyphs: number[] = [];
  for (let i = 0; i < count; i++) {
    if (format === 1) {
      glyphs.push(data.u16(offset + 4 + 2 * i));
    } else {
      const range = offset + 4 + 6 * i;
      for (let g = data.u16(range); g <= data.u16(range + 2); g++) glyphs.push(g);
    }
  }
  return glyphs;
}

/**
 * The lookups (their offsets) that a GSUB or GPOS table's `feature` uses for `script`'s default
 * language, in lookup-list order, the order a shaper applies them in. A script the font does not
 * list uses its 'DFLT' entry.
 */
function featureLookups(data: FontData, layoutTable: number, script: string, feature: string): number[] {
  const scriptList = layoutTable + data.u16(layoutTable + 4);
  const featureList = layoutTable + data.u16(layoutTable + 6);
  const lookupList = layoutTable + data.u16(layoutTable + 8);
  const scripts = new Map<string, number>();
  for (let i = 0; i < data.u16(scriptList); i++) {
    const record = scriptList + 2 + 6 * i;
    scripts.set(data.tag(record), scriptList + data.u16(record + 4));
  }
  const scriptTable = scripts.get(script) ?? scripts.get('DFLT');
  if (scriptTable === undefined || data.u16(scriptTable) === 0) return [];
  const languageSystem = scriptTable + data.u16(scriptTable);
  const indices = new Set<number>();
  for (let i = 0; i < data.u16(languageSystem + 4); i++) {
    const record = featureList + 2 + 6 * data.u16(languageSystem + 6 + 2 * i);
    if (data.tag(record) !== feature) continue;
    const featureTable = featureList + data.u16(record + 4);
    for (let k = 0; k < data.u16(featureTable + 2); k++) indices.add(data.u16(featureTable + 4 + 2 * k));
  }
  return [...indices].sort((a, b) => a - b).map((index) => lookupList + data.u16(lookupList + 2 + 2 * index));
}

/**
 * A lookup's subtables with their real type: an extension subtable (GSUB type 7, GPOS type 9) wraps
 * one of another type, stored further on.
 */
function lookupSubtables(
  data: FontData,
  lookup: number,
  extensionType: number,
): { type: number; offset: number }[] {
  const type = data.u16(lookup);
  const subtables: { type: number; offset: number }[] = [];
  for (let s = 0; s < data.u16(lookup + 4); s++) {
    const offset = lookup + data.u16(lookup + 6 + 2 * s);
    subtables.push(
      type === extensionType
        ? { type: data.u16(offset + 2), offset: offset + data.u32(offset + 4) }
        : { type, offset },
    );
  }
  return subtables;
}

/** One ligature lookup: for a first glyph, the ligatures starting with it, tried in order. */
type LigatureLookup = Map<number, { components: number[]; ligature: number }[]>;

/** A ligature-substitution lookup (GSUB type 4). */
function readLigatureLookup(data: FontData, lookup: number): LigatureLookup {
  const result: LigatureLookup = new Map();
  for (const { type, offset } of lookupSubtables(data, lookup, 7)) {
    if (type !== 4) continue;
    readCoverage(data, offset + data.u16(offset + 2)).forEach((first, c) => {
      const set = offset + data.u16(offset + 6 + 2 * c);
      const entries = result.get(first) ?? [];
      for (let l = 0; l < data.u16(set); l++) {
        const ligature = set + data.u16(set + 2 + 2 * l);
        const components: number[] = [];
        for (let k = 1; k < data.u16(ligature + 2); k++) components.push(data.u16(ligature + 2 + 2 * k));
        entries.push({ components, ligature: data.u16(ligature) });
      }
      result.set(first, entries);
    });
  }
  return result;
}

/** One pass of a ligature lookup over a glyph sequence, left to right, first match wins. */
function applyLigatures(sequence: readonly number[], lookup: LigatureLookup): number[] {
  const result: number[] = [];
  for (let i = 0; i < sequence.length;) {
    const match = lookup
      .get(sequence[i]!)
      ?.find((entry) => entry.components.every((glyph, k) => sequence[i + 1 + k] === glyph));
    if (match === undefined) {
      result.push(sequence[i]!);
      i += 1;
    } else {
      result.push(match.ligature);
      i += 1 + match.components.length;
    }
  }
  return result;
}

/**
 * One pair-kerning lookup: for a first glyph, the advance adjustments (font units) of the first and
 * second glyph of a pair, by second glyph, or undefined when the lookup has no entry for the pair.
 * A lookup's first subtable that covers the first glyph decides, as in a shaper.
 */
interface PairLookup {
  adjust(first: number, second: number): { first: number; second: number } | undefined;
}

/** Bytes of a value record, and where in it the x advance sits (-1: absent), from its format bits. */
function valueLayout(format: number): { size: number; xAdvance: number } {
  const bits = (mask: number) => [...Array(8).keys()].filter((bit) => (mask >> bit) & 1).length;
  return { size: 2 * bits(format), xAdvance: format & 4 ? 2 * bits(format & 3) : -1 };
}

/** A class-definition table as a function from glyph to class (0 for glyphs it does not list). */
function readClassDefinition(data: FontData, offset: number): (glyph: number) => number {
  const classes = new Map<number, number>();
  if (data.u16(offset) === 1) {
    const start = data.u16(offset + 2);
    for (let i = 0; i < data.u16(offset + 4); i++) classes.set(start + i, data.u16(offset + 6 + 2 * i));
  } else {
    for (let i = 0; i < data.u16(offset + 2); i++) {
      const range = offset + 4 + 6 * i;
      for (let g = data.u16(range); g <= data.u16(range + 2); g++) classes.set(g, data.u16(range + 4));
    }
  }
  return (glyph) => classes.get(glyph) ?? 0;
}

/** A pair-adjustment lookup (GPOS type 2): format 1 lists glyph pairs, format 2 pairs of classes. */
function readPairLookup(data: FontData, lookup: number): PairLookup {
  const subtables: PairLookup[] = [];
  for (const { type, offset } of lookupSubtables(data, lookup, 9)) {
    if (type !== 2) continue;
    const covered = new Map(readCoverage(data, offset + data.u16(offset + 2)).map((glyph, i) => [glyph, i]));
    const firstValue = valueLayout(data.u16(offset + 4));
    const secondValue = valueLayout(data.u16(offset + 6));
    const read = (record: number) => ({
      first: firstValue.xAdvance < 0 ? 0 : data.i16(record + firstValue.xAdvance),
      second: secondValue.xAdvance < 0 ? 0 : data.i16(record + firstValue.size + secondValue.xAdvance),
    });
    if (data.u16(offset) === 1) {
      const recordSize = 2 + firstValue.size + secondValue.size;
      subtables.push({
        adjust(first, second) {
          const index = covered.get(first);
          if (index === undefined) return undefined;
          const set = offset + data.u16(offset + 10 + 2 * index);
          for (let p = 0; p < data.u16(set); p++) {
            const record = set + 2 + recordSize * p;
            if (data.u16(record) === second) return read(record + 2);
          }
          return undefined;
        },
      });
    } else {
      const firstClass = readClassDefinition(data, offset + data.u16(offset + 8));
      const secondClass = readClassDefinition(data, offset + data.u16(offset + 10));
      const secondClassCount = data.u16(offset + 14);
      const recordSize = firstValue.size + secondValue.size;
      subtables.push({
        adjust(first, second) {
          if (!covered.has(first)) return undefined;
          const row = firstClass(first) * secondClassCount + secondClass(second);
          return read(offset + 16 + recordSize * row);
        },
      });
    }
  }
  return {
    adjust(first, second) {
      for (const subtable of subtables) {
        const found = subtable.adjust(first, second);
        if (found !== undefined) return found;
      }
      return undefined;
    },
  };
}

/** The legacy `kern` table's horizontal format 0 subtables (sorted glyph pairs) as a pair lookup. */
function readLegacyKerning(data: FontData, kern: number): PairLookup {
  const pairs = new Map<number, number>();
  let offset = kern + 4;
  for (let i = 0; i < data.u16(kern + 2); i++) {
    const coverage = data.u16(offset + 4);
    // Format 0, horizontal, not minimum values, not cross-stream.
    if (coverage >> 8 === 0 && (coverage & 7) === 1) {
      for (let p = 0; p < data.u16(offset + 6); p++) {
        const pair = offset + 14 + 6 * p;
        pairs.set(data.u16(pair) * 65536 + data.u16(pair + 2), data.i16(pair + 4));
      }
    }
    offset += data.u16(offset + 2);
  }
  return {
    adjust(first, second) {
      const value = pairs.get(first * 65536 + second);
      return value === undefined ? undefined : { first: value, second: 0 };
    },
  };
}

/**
 * The total advance change one pair-kerning lookup makes to a glyph sequence. As in a shaper, a pair
 * that also adjusts its second glyph consumes it, so it does not start the next pair.
 */
function pairAdjustments(glyphs: readonly number[], lookup: PairLookup): number {
  let total = 0;
  for (let i = 0; i + 1 < glyphs.length; i++) {
    const found = lookup.adjust(glyphs[i]!, glyphs[i + 1]!);
    if (found === undefined) continue;
    total += found.first + found.second;
    if (found.second !== 0) i += 1;
  }
  return total;
}

/** The TrueType file of DejaVu Sans in a weight (the files figure.ts gives resvg). */
export function fontFile(weight: FontWeight = 'normal'): string {
  const directory = path.join(
    optionalPackageDirectory('dejavu-fonts-ttf', 'drawing charts (DejaVu Sans)'),
    'ttf',
  );
  return path.join(directory, weight === 'bold' ? 'DejaVuSans-Bold.ttf' : 'DejaVuSans.ttf');
}

const loaded = new Map<FontWeight, FontMetrics>();

/** DejaVu Sans metrics in a weight, read once per process. */
export function fontMetrics(weight: FontWeight = 'normal'): FontMetrics {
  let metrics = loaded.get(weight);
  if (metrics === undefined) {
    metrics = parseFont(fs.readFileSync(fontFile(weight)));
    loaded.set(weight, metrics);
  }
  return metrics;
}

/** Width in pixels of `content` in DejaVu Sans at `size` pixels. */
export function textWidth(content: string, size: number, weight: FontWeight = 'normal'): number {
  return fontMetrics(weight).width(content, size);
}
