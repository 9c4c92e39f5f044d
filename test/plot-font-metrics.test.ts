/**
 * Text widths read from DejaVu Sans (src/plot/font-metrics.ts) against the renderer the PNGs come
 * from: resvg lays each string out, and its advance is read back from the bounding box of the
 * string followed by a bar, less that of the bar alone (the ink of the string's own last glyph
 * would not give its advance).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { fontFile, fontMetrics, scriptTag, textWidth, type FontWeight } from '../src/plot/font-metrics.js';
import { escapeXml, fitText, formatExact, formatTicks, measure } from '../src/plot/text.js';

const require = createRequire(import.meta.url);
const { Resvg } = require('@resvg/resvg-js') as typeof import('@resvg/resvg-js');

/** The right edge of the ink resvg draws for `content` set at x = 10. */
function inkRight(content: string, size: number, weight: FontWeight): number {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="8000" height="100" viewBox="0 0 8000 100"><text x="10" y="60" font-family="DejaVu Sans" font-size="${size}" font-weight="${weight}" xml:space="preserve">${escapeXml(content)}</text></svg>`;
  const renderer = new Resvg(svg, {
    font: {
      fontFiles: [fontFile('normal'), fontFile('bold')],
      loadSystemFonts: false,
      defaultFontFamily: 'DejaVu Sans',
    },
  });
  const box = renderer.getBBox();
  assert.ok(box !== undefined, `nothing drawn for ${JSON.stringify(content)}`);
  return box.x + box.width;
}

/** resvg's advance of `content`: the bar's ink moves right by exactly that much. */
function drawnWidth(content: string, size: number, weight: FontWeight): number {
  return inkRight(`${content}|`, size, weight) - inkRight('|', size, weight);
}

function measuredWidth(content: string, size: number, weight: FontWeight): number {
  return textWidth(`${content}|`, size, weight) - textWidth('|', size, weight);
}

test('font metrics: widths equal resvg layout for chart texts (kerning, ligatures, symbols, marks)', () => {
  const samples = [
    'Parameters of one block, 16 → 16 channels (from tensile models)',
    'AVAV To. Ty Yo We Wa LT',
    'fine-tuned from digits 0–4; office fluffy',
    'x̂ = (x − μ)/√(σ² + ε)',
    'μAV εAV (Greek first: no Latin kerning)',
    '12,544 and 1,000,000.25',
    'Gaussian process (Bayesian)',
  ];
  for (const weight of ['normal', 'bold'] as const) {
    for (const content of samples) {
      for (const size of [11, 16]) {
        const drawn = drawnWidth(content, size, weight);
        const measured = measuredWidth(content, size, weight);
        assert.ok(
          Math.abs(drawn - measured) < 0.01,
          `${weight} ${size}px ${content}: drawn ${drawn}, measured ${measured}`,
        );
      }
    }
  }
  // Kerning is real: "AV" is narrower than its two advances.
  const metrics = fontMetrics();
  const a = metrics.advance(metrics.glyphIndex(65));
  const v = metrics.advance(metrics.glyphIndex(86));
  assert.ok(textWidth('AV', metrics.unitsPerEm) < a + v - 50);
});

test('font metrics: random strings measure as resvg draws them', () => {
  const characters = [
    ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-()%/+=×→–−μσ²√εγβαθ·\'"_<>&[]{}!?ΔÅéüñ',
  ];
  let state = 12345;
  const random = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let trial = 0; trial < 120; trial++) {
    const length = 1 + Math.floor(random() * 24);
    let content = '';
    for (let i = 0; i < length; i++) content += characters[Math.floor(random() * characters.length)];
    const weight: FontWeight = random() < 0.5 ? 'normal' : 'bold';
    const size = [11, 12, 13, 16][Math.floor(random() * 4)]!;
    const drawn = drawnWidth(content, size, weight);
    const measured = measuredWidth(content, size, weight);
    assert.ok(
      Math.abs(drawn - measured) < 0.01,
      `${weight} ${size}px ${JSON.stringify(content)}: ${drawn} vs ${measured}`,
    );
  }
});

test('font metrics: widths scale with size; the script is that of the first letter', () => {
  assert.ok(Math.abs(textWidth('validation accuracy', 24) - 2 * textWidth('validation accuracy', 12)) < 1e-9);
  assert.ok(textWidth('validation', 12, 'bold') > textWidth('validation', 12));
  assert.equal(scriptTag('12 μAV'), 'grek');
  assert.equal(scriptTag('12, AV'), 'latn');
  assert.equal(scriptTag('12,544 → 3'), 'DFLT');
  const { ascent, descent } = fontMetrics().vertical;
  assert.ok(ascent > 0.9 && ascent < 1 && descent > 0.2 && descent < 0.3, `${ascent} ${descent}`);
});

test('text: exact numbers with thousands separators; tick labels in one format', () => {
  assert.equal(formatExact(12544), '12,544');
  assert.equal(formatExact(-1234567), '-1,234,567');
  assert.equal(formatExact(999), '999');
  assert.equal(formatExact(97.3), '97.3');
  assert.equal(formatExact(1234.5678), '1,234.5678');
  assert.equal(formatExact(0.1 + 0.2), '0.3');
  assert.equal(formatExact(123456789012), '123,456,789,012');
  assert.deepEqual(formatTicks([0, 2500, 5000, 7500], 2500), ['0', '2,500', '5,000', '7,500']);
  assert.deepEqual(formatTicks([0.9, 0.925, 0.95], 0.025), ['0.900', '0.925', '0.950']);
  assert.deepEqual(formatTicks([1e-4, 1e-3, 1e-2]), ['1e-4', '1e-3', '1e-2']);
  assert.deepEqual(formatTicks([10, 20, 50, 100]), ['10', '20', '50', '100']);
});

test('text: fitText keeps one line when it fits, wraps before shrinking, never exceeds the width', () => {
  const title = 'Validation accuracy against learning rate (Adam, 3 epochs, 2000 MNIST digits)';
  const wide = fitText(title, { size: 16, weight: 'bold' }, 1000);
  assert.deepEqual(wide.lines, [title]);
  assert.equal(wide.size, 16);
  const narrow = fitText(title, { size: 16, weight: 'bold' }, 300);
  assert.ok(narrow.lines.length > 1);
  assert.equal(narrow.lines.join(' '), title);
  for (const line of narrow.lines) assert.ok(measure(line, { size: narrow.size, weight: 'bold' }) <= 300);
  const word = fitText('supercalifragilisticexpialidocious', { size: 13 }, 60);
  assert.ok(word.size < 13);
  assert.ok(measure(word.lines[0]!, { size: word.size }) <= 60);
});
