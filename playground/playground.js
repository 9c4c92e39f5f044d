/* global document, navigator, crossOriginIsolated, Worker, Option, OffscreenCanvas, requestAnimationFrame */
/**
 * The playground page: starts the training worker (./train-worker.js), draws its loss and accuracy
 * curves as batches arrive, and sends the drawing pad's digit, made MNIST-like (20×20 box, centred
 * by its centre of mass in 28×28), for prediction and the DL0009/DL0011 comparisons.
 *
 * State for tests: document.body.dataset.batches (batches received), .testAccuracy (the seed CNN's
 * last test accuracy), .predicted (the digit predicted for the drawing).
 */
const $ = (id) => document.getElementById(id);
const colors = { seed: '#3b6fd6', average: '#d2691e', flatten: '#2e9d57' };
const worker = new Worker('/train-worker.js', { type: 'module' });
/** Per model: label, losses [[step, loss]], accuracies [[step, accuracy]], tests [[step, accuracy]]. */
let series = new Map();
let batches = 0;
let stepsPerEpoch = 1;
let predictionId = 0;

const cores = crossOriginIsolated ? navigator.hardwareConcurrency || 1 : 1;
for (let count = 1; count <= cores; count++)
  $('threads').add(new Option(String(count), String(count), false, count === cores));
$('status').textContent = crossOriginIsolated
  ? `ready (cross-origin isolated: up to ${cores} threads)`
  : 'ready (not cross-origin isolated: one thread)';

$('start').addEventListener('click', () => {
  series = new Map();
  batches = 0;
  const batchSize = Number($('batch').value);
  worker.postMessage({
    type: 'start',
    options: {
      threads: Number($('threads').value),
      channels: $('channels').value.split(',').map(Number),
      batchSize,
      lr: 3e-3,
      variants: $('variants').checked,
    },
  });
  $('start').disabled = true;
  $('stop').disabled = false;
  $('status').textContent = 'loading MNIST and the kernels…';
});
$('stop').addEventListener('click', () => worker.postMessage({ type: 'stop' }));

worker.onmessage = ({ data }) => {
  if (data.type === 'started') {
    stepsPerEpoch = Math.ceil(data.trainSamples / Number($('batch').value));
    for (const model of data.models)
      series.set(model.name, { ...model, losses: [], accuracies: [], tests: [], rate: 0 });
    $('status').textContent =
      `training on ${data.trainSamples} digits, testing on ${data.testSamples}; ${data.info.threads} thread(s), ${data.info.build}`;
  } else if (data.type === 'batch') {
    const entry = series.get(data.model);
    const step = data.epoch * stepsPerEpoch + data.batch + 1;
    entry.losses.push([step, data.loss]);
    if (data.accuracy !== null) entry.accuracies.push([step, data.accuracy]);
    entry.rate = data.samplesPerSecond;
    if (data.model === 'seed') document.body.dataset.batches = String(++batches);
    scheduleDraw();
  } else if (data.type === 'epoch') {
    const entry = series.get(data.model);
    if (data.testAccuracy !== null) entry.tests.push([(data.epoch + 1) * stepsPerEpoch, data.testAccuracy]);
    if (data.model === 'seed' && data.testAccuracy !== null)
      document.body.dataset.testAccuracy = String(data.testAccuracy);
    scheduleDraw();
  } else if (data.type === 'stopped') {
    $('start').disabled = false;
    $('stop').disabled = true;
    $('status').textContent += ' (stopped)';
  } else if (data.type === 'prediction') {
    if (data.id === predictionId) showPrediction(data);
  } else if (data.type === 'error') {
    $('status').textContent = `error: ${data.message}`;
    document.body.dataset.error = data.message;
  }
};

// --- Charts -------------------------------------------------------------------------------------

let drawQueued = false;
function scheduleDraw() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => {
    drawQueued = false;
    drawChart($('loss-chart'), 'losses', null);
    drawChart($('accuracy-chart'), 'accuracies', [0, 1]);
    $('rates').innerHTML = '';
    for (const [name, entry] of series) {
      const line = document.createElement('div');
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = colors[name];
      const last = entry.tests.at(-1);
      line.append(
        swatch,
        `${entry.label}: ${entry.rate.toFixed(0)} samples/s` +
          (last ? `, test ${(100 * last[1]).toFixed(1)}%` : ''),
      );
      $('rates').append(line);
    }
  });
}

function drawChart(canvas, key, fixedRange) {
  const context = canvas.getContext('2d');
  const { width, height } = canvas;
  const left = 44,
    bottom = 22,
    top = 8,
    right = 8;
  context.clearRect(0, 0, width, height);
  const all = [...series.values()].flatMap((entry) => entry[key]);
  if (all.length === 0) return;
  const maxStep = Math.max(...all.map(([step]) => step), 10);
  let [low, high] = fixedRange ?? [0, Math.max(...all.map(([, value]) => value)) * 1.05];
  if (!(high > low)) high = low + 1;
  const x = (step) => left + ((width - left - right) * step) / maxStep;
  const y = (value) => height - bottom - ((height - top - bottom) * (value - low)) / (high - low);
  context.strokeStyle = '#c5ccd8';
  context.fillStyle = '#4a5566';
  context.font = '11px system-ui, sans-serif';
  for (let i = 0; i <= 4; i++) {
    const value = low + ((high - low) * i) / 4;
    context.beginPath();
    context.moveTo(left, y(value));
    context.lineTo(width - right, y(value));
    context.stroke();
    context.fillText(value.toFixed(2), 4, y(value) + 4);
  }
  context.fillText(`batch ${maxStep}`, width - right - 70, height - 6);
  for (const [name, entry] of series) {
    context.strokeStyle = colors[name];
    context.lineWidth = 1.5;
    context.beginPath();
    entry[key].forEach(([step, value], i) =>
      i === 0 ? context.moveTo(x(step), y(value)) : context.lineTo(x(step), y(value)),
    );
    context.stroke();
    if (key === 'accuracies') {
      context.fillStyle = colors[name];
      for (const [step, value] of entry.tests) context.fillRect(x(step) - 3, y(value) - 3, 6, 6);
    }
  }
}

// --- Drawing ------------------------------------------------------------------------------------

const pad = $('pad');
const ink = pad.getContext('2d');
ink.lineCap = 'round';
ink.lineJoin = 'round';
ink.lineWidth = 20;
ink.strokeStyle = '#fff';
let drawing = false;
pad.addEventListener('pointerdown', (event) => {
  drawing = true;
  ink.beginPath();
  ink.moveTo(event.offsetX, event.offsetY);
});
pad.addEventListener('pointermove', (event) => {
  if (!drawing) return;
  ink.lineTo(event.offsetX, event.offsetY);
  ink.stroke();
});
for (const type of ['pointerup', 'pointerleave']) {
  pad.addEventListener(type, () => {
    if (!drawing) return;
    drawing = false;
    requestPrediction();
  });
}
$('clear').addEventListener('click', () => {
  ink.clearRect(0, 0, pad.width, pad.height);
  $('prediction').textContent = '';
  delete document.body.dataset.predicted;
});

/** The pad as MNIST prepares digits: the ink's box scaled into 20×20, centred by mass in 28×28. */
function mnistPixels() {
  const { width, height } = pad;
  const rgba = ink.getImageData(0, 0, width, height).data;
  let minX = width,
    minY = height,
    maxX = -1,
    maxY = -1;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      if (rgba[(y * width + x) * 4 + 3] > 0) {
        minX = Math.min(minX, x);
        maxX = Math.max(maxX, x);
        minY = Math.min(minY, y);
        maxY = Math.max(maxY, y);
      }
  if (maxX < 0) return null;
  const boxWidth = maxX - minX + 1,
    boxHeight = maxY - minY + 1;
  const scale = 20 / Math.max(boxWidth, boxHeight);
  const small = new OffscreenCanvas(28, 28).getContext('2d');
  small.fillStyle = '#000';
  small.fillRect(0, 0, 28, 28);
  small.imageSmoothingQuality = 'high';
  const drawnWidth = boxWidth * scale,
    drawnHeight = boxHeight * scale;
  small.drawImage(
    pad,
    minX,
    minY,
    boxWidth,
    boxHeight,
    (28 - drawnWidth) / 2,
    (28 - drawnHeight) / 2,
    drawnWidth,
    drawnHeight,
  );
  const grey = small.getImageData(0, 0, 28, 28).data;
  const pixels = new Float32Array(784);
  let mass = 0,
    centreX = 0,
    centreY = 0;
  for (let i = 0; i < 784; i++) {
    pixels[i] = grey[i * 4] / 255;
    mass += pixels[i];
    centreX += pixels[i] * (i % 28);
    centreY += pixels[i] * Math.floor(i / 28);
  }
  const shiftX = Math.round(13.5 - centreX / mass),
    shiftY = Math.round(13.5 - centreY / mass);
  const centred = new Float32Array(784);
  for (let y = 0; y < 28; y++)
    for (let x = 0; x < 28; x++) {
      const fromX = x - shiftX,
        fromY = y - shiftY;
      if (fromX >= 0 && fromX < 28 && fromY >= 0 && fromY < 28)
        centred[y * 28 + x] = pixels[fromY * 28 + fromX];
    }
  return centred;
}

function requestPrediction() {
  const pixels = mnistPixels();
  if (pixels === null) return;
  worker.postMessage({ type: 'predict', pixels, id: ++predictionId });
}

function greyCanvas(values, side, title) {
  const figure = document.createElement('figure');
  const canvas = document.createElement('canvas');
  canvas.width = side;
  canvas.height = side;
  const image = canvas.getContext('2d').createImageData(side, side);
  values.forEach((value, i) => {
    const level = Math.round(255 * Math.min(1, Math.max(0, value)));
    image.data.set([level, level, level, 255], i * 4);
  });
  canvas.getContext('2d').putImageData(image, 0, 0);
  const caption = document.createElement('figcaption');
  caption.textContent = title;
  figure.append(canvas, caption);
  return figure;
}

function showPrediction({ models, pooled }) {
  const inkShare = (values) => values.filter((v) => v > 0.5).length / values.length;
  const poolingGrid = document.createElement('div');
  poolingGrid.className = 'grid';
  poolingGrid.append(
    greyCanvas(pooled.max14, 14, `max 14×14: ${(100 * inkShare(pooled.max14)).toFixed(0)}% ink`),
    greyCanvas(pooled.average14, 14, `average 14×14: ${(100 * inkShare(pooled.average14)).toFixed(0)}% ink`),
    greyCanvas(pooled.max7, 7, `max 7×7: ${(100 * inkShare(pooled.max7)).toFixed(0)}% ink`),
    greyCanvas(pooled.average7, 7, `average 7×7: ${(100 * inkShare(pooled.average7)).toFixed(0)}% ink`),
  );
  $('pooling').replaceChildren(poolingGrid);
  if (models.length === 0) {
    $('prediction').textContent = 'start training first';
    return;
  }
  const seed = models.find((model) => model.name === 'seed');
  const best = seed.probabilities.indexOf(Math.max(...seed.probabilities));
  document.body.dataset.predicted = String(best);
  const bars = document.createElement('div');
  bars.className = 'bars';
  seed.probabilities.forEach((p, digit) => {
    const bar = document.createElement('div');
    bar.className = 'bar';
    bar.style.width = `${Math.max(1, 160 * p)}px`;
    bars.append(
      Object.assign(document.createElement('span'), { textContent: String(digit) }),
      bar,
      Object.assign(document.createElement('span'), { textContent: `${(100 * p).toFixed(1)}%` }),
    );
  });
  const answer = Object.assign(document.createElement('div'), {
    className: 'digit',
    textContent: String(best),
  });
  $('prediction').replaceChildren(answer, bars);
  const average = models.find((model) => model.name === 'average');
  if (average) {
    const guess = average.probabilities.indexOf(Math.max(...average.probabilities));
    $('pooling').append(
      Object.assign(document.createElement('p'), {
        textContent: `max pooling (seed CNN) says ${best} (${(100 * seed.probabilities[best]).toFixed(0)}%); average pooling says ${guess} (${(100 * average.probabilities[guess]).toFixed(0)}%)`,
      }),
    );
  }
  const table = document.createElement('table');
  const header = table.insertRow();
  for (const text of ['head (parameters)', ...seed.shifted.map(({ by }) => `shifted ${by} px`)])
    header.append(Object.assign(document.createElement('th'), { textContent: text }));
  for (const model of models.filter((m) => m.name !== 'average')) {
    const row = table.insertRow();
    const info = series.get(model.name);
    row.insertCell().textContent = `${model.name === 'seed' ? 'GAP + FC' : 'Flatten + FC'} (${info?.headParameters ?? '?'})`;
    for (const { digit, probability } of model.shifted)
      row.insertCell().textContent = `${digit} (${(100 * probability).toFixed(0)}%)`;
  }
  $('heads').replaceChildren(table);
}

document.body.dataset.ready = 'true';
