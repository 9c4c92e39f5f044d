/**
 * Writes a figure as SVG and PNG. The PNG is rendered from the same SVG by resvg (an npm package
 * that ships its binary in the registry package itself, so nothing is downloaded), with the DejaVu
 * fonts from the npm package dejavu-fonts-ttf, so text renders the same on any machine.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic-write.js';
import { fontFile } from './font-metrics.js';
import { requireOptional } from '../util/optional-dependency.js';

/** The same files the charts measure their text with (./font-metrics.ts), so layout and drawing agree. */
function fontFiles(): string[] {
  return [fontFile('normal'), fontFile('bold')];
}

/** Renders SVG text to PNG bytes (scale 2 for crisp text). */
export function svgToPng(svg: string, scale = 2): Uint8Array {
  const { Resvg } = requireOptional<typeof import('@resvg/resvg-js')>(
    '@resvg/resvg-js',
    'drawing PNG figures',
  );
  const renderer = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    font: { fontFiles: fontFiles(), loadSystemFonts: false, defaultFontFamily: 'DejaVu Sans' },
  });
  return renderer.render().asPng();
}

/** Writes `<basePath>.svg` and `<basePath>.png`; returns both paths. */
export function writeFigure(svg: string, basePath: string): { svg: string; png: string } {
  fs.mkdirSync(path.dirname(path.resolve(basePath)), { recursive: true });
  const files = { svg: `${basePath}.svg`, png: `${basePath}.png` };
  writeFileAtomic(files.svg, new TextEncoder().encode(svg));
  writeFileAtomic(files.png, svgToPng(svg));
  return files;
}
