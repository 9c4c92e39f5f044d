// @ts-check
/* global document */
/**
 * The explain tab: each seed note that `tensile explain` has run, with its text, tables and figures
 * as recorded in the store (numbers computed by tensile itself when the topic ran).
 */
import { formatTime, h } from './format.js';

/** @typedef {import('./source.js').DataSource} DataSource */
/** @typedef {import('./format.js').ExplainTopicView} ExplainTopicView */
/** @typedef {import('./format.js').JsonValue} JsonValue */

/**
 * @param {JsonValue | undefined} value
 * @returns {string[]}
 */
function strings(value) {
  return Array.isArray(value) ? value.filter((item) => typeof item === 'string').map(String) : [];
}

/**
 * Tables recorded by an explain topic: { title, columns, rows }.
 * @param {JsonValue | undefined} value
 */
function tables(value) {
  if (!Array.isArray(value)) return [];
  return value.flatMap((table) => {
    if (table === null || typeof table !== 'object' || Array.isArray(table)) return [];
    const columns = strings(table.columns);
    const rows = Array.isArray(table.rows) ? table.rows.map((row) => strings(row)) : [];
    return [
      h(
        'table',
        { class: 'explain-table' },
        typeof table.title === 'string' ? h('caption', {}, table.title) : null,
        h('thead', {}, h('tr', {}, ...columns.map((column) => h('th', {}, column)))),
        h('tbody', {}, ...rows.map((row) => h('tr', {}, ...row.map((cell) => h('td', {}, cell))))),
      ),
    ];
  });
}

/**
 * @param {DataSource} source
 * @param {HTMLElement} main
 */
export function createFiguresView(source, main) {
  const root = h('section', { class: 'figures-view' });
  /** @type {ExplainTopicView[]} */
  let topics = [];

  function render() {
    if (topics.length === 0) {
      root.replaceChildren(
        h(
          'div',
          { class: 'panel' },
          h('h2', {}, 'Explain figures'),
          h(
            'p',
            { class: 'note' },
            'None yet. Run `npx tensile explain DL0011` (or any topic) with the same --storage; its text, tables and figures appear here.',
          ),
        ),
      );
      return;
    }
    const index = h(
      'p',
      { class: 'topic-index' },
      ...topics.flatMap((topic) => [h('a', { href: `#/figures/${topic.topic}` }, topic.topic), ' ']),
    );
    root.replaceChildren(
      h('div', { class: 'panel' }, h('h2', {}, 'Explain figures'), index),
      ...topics.map((topic) =>
        h(
          'article',
          { class: 'panel topic', id: `topic-${topic.topic}`, dataset: { topic: topic.topic } },
          h(
            'h2',
            {},
            `${topic.topic}: ${topic.title}`,
            topic.quick ? h('span', { class: 'badge quick' }, ' quick run') : null,
          ),
          // A quick run is a pipeline check: shown only while the topic has no full result, and said so.
          topic.quick
            ? h(
                'p',
                { class: 'note quick-notice' },
                `Quick run only: its numbers show the pipeline works, not an answer. Run npx tensile explain ${topic.topic} (without --quick) for the measured result.`,
              )
            : null,
          typeof topic.summary.question === 'string'
            ? h('p', { class: 'question' }, topic.summary.question)
            : null,
          ...strings(topic.summary.text).map((paragraph) => h('p', {}, paragraph)),
          ...tables(topic.summary.tables),
          h(
            'div',
            { class: 'figures' },
            ...topic.figures.map((figure) =>
              h(
                'figure',
                {},
                h('img', { src: figure.source, alt: figure.name, loading: 'lazy' }),
                h('figcaption', {}, figure.name),
              ),
            ),
          ),
          h(
            'p',
            { class: 'note' },
            `Computed ${topic.completedAt === null ? '' : formatTime(topic.completedAt)} (run #${topic.runId}${topic.quick ? ', quick' : ''}); rerun with npx tensile explain ${topic.topic} --fresh.`,
          ),
        ),
      ),
    );
  }

  return {
    root,
    /** @param {string[]} route ['figures'] or ['figures', topic] */
    async show(route) {
      main.replaceChildren(root);
      topics = await source.figures();
      render();
      if (route[1]) document.getElementById(`topic-${route[1]}`)?.scrollIntoView();
    },
    async refresh() {
      topics = await source.figures();
      render();
    },
    redraw: render,
  };
}
