/**
 * `tensile report`: the dashboard as one self-contained HTML file (runs, studies and explain figures),
 * for sharing by mail or as a CI artifact. It opens from disk with no server and no network.
 *
 * The file is the dashboard page itself: its stylesheet inlined, its data embedded as JSON (where the
 * live page fetches it from the server), and its ES modules joined into one inline module. The join
 * is deliberately simple (the page's modules import only each other, one file per module, with
 * distinct top-level names; a name declared twice stops the build), so no bundler is needed.
 * Long metric series are thinned to at most `maxPointsPerSeries` points (each bucket's lowest and
 * highest value kept), and figures travel as data: URLs. Explain topics come from explainTopics, so a
 * `--quick` run never stands in for a full result here either (it is shown, marked, only for a topic
 * that has no full run).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type RunStore, type Storage } from '../../src/index.js';
import {
  compactMetrics,
  decimateMetrics,
  explainTopics,
  overview,
  studyView,
  type CompactMetrics,
  type StudyPlotData,
} from './data.js';
import { defaultDashboardDirectory } from './server.js';

export interface ReportOptions {
  runs: RunStore;
  studies?: Storage | null;
  /** Page title (default "tensile report"). */
  title?: string;
  /** Points kept per metric series (default 2000). */
  maxPointsPerSeries?: number;
  /** Newest runs whose curves are included (default 300; all runs are listed). */
  maxRunsWithCurves?: number;
  /** Folder of the dashboard page (default: the package's dashboard/). */
  dashboardDirectory?: string;
}

/** The page's modules in dependency order (each only imports modules listed before it). */
export const dashboardModules = [
  'format.js',
  'charts.js',
  'source.js',
  'runs-view.js',
  'studies-view.js',
  'figures-view.js',
  'app.js',
] as const;

/**
 * Joins the dashboard's modules into one module: drops the imports between them and the `export`
 * keywords. Throws when two modules declare the same top-level name (they would clash once joined).
 */
export function joinDashboardModules(directory: string): string {
  const declared = new Map<string, string>();
  const parts: string[] = [];
  for (const name of dashboardModules) {
    const text = fs.readFileSync(path.join(directory, name), 'utf8');
    for (const match of text.matchAll(
      /^(?:export )?(?:async )?(?:function\*? |const |let |class )([A-Za-z_$][\w$]*)/gm,
    )) {
      const identifier = match[1]!;
      const previous = declared.get(identifier);
      if (previous !== undefined) {
        throw new Error(
          `dashboard modules ${previous} and ${name} both declare '${identifier}'; rename one (the report joins them)`,
        );
      }
      declared.set(identifier, name);
    }
    const body = text
      .replace(/^import\s[\s\S]*?\sfrom\s+'\.\/[\w-]+\.js';\s*$/gm, '')
      .replace(/^export (?=(?:async )?(?:function|const|let|class)\b)/gm, '');
    if (/^\s*(import|export)\s/m.test(body))
      throw new Error(`dashboard module ${name} has an import or export the report cannot join`);
    parts.push(`// ---- ${name}\n${body}`);
  }
  return parts.join('\n');
}

/** Text safe inside a <script> element (no "</script>", no "<!--"). */
function scriptSafe(text: string): string {
  return text.replace(/</g, '\\u003c');
}

/** Builds the report's HTML. */
export async function buildReport(options: ReportOptions): Promise<string> {
  const directory = options.dashboardDirectory ?? defaultDashboardDirectory();
  const studies = options.studies ?? null;
  const maxPoints = options.maxPointsPerSeries ?? 2000;
  const data = await overview(options.runs, studies);
  const metrics: Record<string, CompactMetrics> = {};
  for (const run of data.runs
    .filter((run) => run.pointCount > 0)
    .slice(0, options.maxRunsWithCurves ?? 300)) {
    metrics[String(run.id)] = compactMetrics(
      decimateMetrics(await options.runs.getMetrics(run.id), maxPoints),
    );
  }
  const studyViews: Record<string, StudyPlotData> = {};
  if (studies !== null)
    for (const study of data.studies) studyViews[String(study.id)] = await studyView(studies, study.id);
  const figures = await explainTopics(options.runs, async (artifact) => {
    const stored = await options.runs.getArtifact(artifact.id);
    return `data:${stored.mediaType};base64,${Buffer.from(stored.content ?? new Uint8Array()).toString('base64')}`;
  });
  const title = options.title ?? 'tensile report';
  const embedded = { overview: data, metrics, studies: studyViews, figures, title, createdAt: Date.now() };

  const page = fs.readFileSync(path.join(directory, 'index.html'), 'utf8');
  const style = fs.readFileSync(path.join(directory, 'style.css'), 'utf8');
  const script = joinDashboardModules(directory);
  const replaced = page
    .replace(/<title>[^<]*<\/title>/, `<title>${title.replace(/[<>&]/g, '')}</title>`)
    .replace(/<link rel="stylesheet" href="\/static\/style.css" \/>/, () => `<style>\n${style}</style>`)
    .replace(
      /<script type="module" src="\/static\/app.js"><\/script>/,
      () =>
        `<script type="application/json" id="tensile-report-data">${scriptSafe(JSON.stringify(embedded))}</script>\n` +
        `<script type="module">\n${script.replace(/<\/script/gi, '<\\/script')}\n</script>`,
    );
  if (replaced.includes('/static/'))
    throw new Error('dashboard/index.html changed: the report could not inline its files');
  return replaced;
}
