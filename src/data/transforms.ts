/**
 * Per-sample augmentations applied on the fly by DataLoader, each drawing from the loader's seeded
 * Random so augmented epochs are reproducible.
 *
 * A transform rewrites one image [channels, height, width] in place. Order matters: put geometric
 * transforms (randomShift, horizontalFlip) before normalizeTransform, so the zeros a shift brings in
 * are black pixels that get normalised like any other.
 */
import { perChannel } from './dataset.js';
import type { Random } from '../tensor/random.js';

export interface ImageShape {
  channels: number;
  height: number;
  width: number;
}

export interface SampleTransform {
  /** A short description, e.g. 'randomShift(2)', for logs and run records. */
  readonly description: string;
  /** Transforms `image` ([channels, height, width], row-major) in place. */
  apply(image: Float32Array, shape: ImageShape, random: Random): void;
}

/**
 * Translates the image by a random whole number of pixels, independently in each direction in
 * [−maxPixels, maxPixels] (uniform), filling the uncovered border with zeros.
 */
export function randomShift(maxPixels: number): SampleTransform {
  if (!Number.isInteger(maxPixels) || maxPixels < 0) {
    throw new RangeError(`randomShift: maxPixels must be a non-negative integer, got ${maxPixels}`);
  }
  return {
    description: `randomShift(${maxPixels})`,
    apply(image, { channels, height, width }, random) {
      const shiftY = random.int(2 * maxPixels + 1) - maxPixels;
      const shiftX = random.int(2 * maxPixels + 1) - maxPixels;
      if (shiftY === 0 && shiftX === 0) return;
      const plane = height * width;
      if (Math.abs(shiftY) >= height || Math.abs(shiftX) >= width) {
        image.fill(0);
        return;
      }
      // In a row-major plane, moving by (shiftY, shiftX) moves every element by one flat offset, so
      // one memmove (copyWithin) per channel does the work in place. What it drags in from the
      // neighbouring rows (or from outside the plane) is then zeroed: the vacated end of the plane,
      // and the shiftX columns on the side the image moved away from.
      const offset = shiftY * width + shiftX;
      for (let channel = 0; channel < channels; channel++) {
        const start = channel * plane;
        const end = start + plane;
        if (offset > 0) {
          image.copyWithin(start + offset, start, end - offset);
          image.fill(0, start, start + offset);
        } else {
          image.copyWithin(start, start - offset, end);
          image.fill(0, end + offset, end);
        }
        const firstColumn = shiftX > 0 ? 0 : width + shiftX;
        const endColumn = shiftX > 0 ? shiftX : width;
        for (let row = start; row < end; row += width) {
          for (let x = firstColumn; x < endColumn; x++) image[row + x] = 0;
        }
      }
    },
  };
}

/** Mirrors the image left–right with the given probability (default 0.5). */
export function horizontalFlip(probability = 0.5): SampleTransform {
  if (!(probability >= 0 && probability <= 1)) {
    throw new RangeError(`horizontalFlip: probability must be in [0, 1], got ${probability}`);
  }
  return {
    description: `horizontalFlip(${probability})`,
    apply(image, { channels, height, width }, random) {
      // Draw even when probability is 0 or 1, so the random stream does not depend on it.
      if (random.next() >= probability) return;
      for (let start = 0; start < channels * height * width; start += width) {
        for (let left = start, right = start + width - 1; left < right; left++, right--) {
          const swap = image[left]!;
          image[left] = image[right]!;
          image[right] = swap;
        }
      }
    },
  };
}

/**
 * (x − mean[c]) / standardDeviation[c] per channel; a single number applies to every channel. A list
 * must have one value per channel of the images it meets (checked on the first image).
 *
 * It costs about 2–3 µs per 28×28 image, every epoch. Without geometric augmentation before it,
 * normalising the dataset once with `normalize` (dataset.ts) gives the same values for free.
 */
export function normalizeTransform(
  mean: number | readonly number[],
  standardDeviation: number | readonly number[],
): SampleTransform {
  for (const deviation of typeof standardDeviation === 'number' ? [standardDeviation] : standardDeviation) {
    if (!(deviation > 0)) {
      throw new RangeError(`normalizeTransform: standard deviations must be positive, got ${deviation}`);
    }
  }
  // Expanded per channel once the channel count is known, then reused for every image.
  let channelMeans: number[] = [];
  let channelScales: number[] = [];
  return {
    description: `normalizeTransform(${JSON.stringify(mean)}, ${JSON.stringify(standardDeviation)})`,
    apply(image, { channels, height, width }) {
      if (channelMeans.length !== channels) {
        channelMeans = perChannel(mean, channels, 'normalizeTransform mean');
        channelScales = perChannel(standardDeviation, channels, 'normalizeTransform standardDeviation').map(
          (deviation) => 1 / deviation,
        );
      }
      const plane = height * width;
      for (let channel = 0; channel < channels; channel++) {
        const center = channelMeans[channel]!;
        const scale = channelScales[channel]!;
        const start = channel * plane;
        for (let i = start; i < start + plane; i++) image[i] = (image[i]! - center) * scale;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Augmentations for photographs (torchvision's transforms v1 set, on [C, H, W] floats in place)

/** ImageNet's per-channel RGB mean, for images in [0, 1] (torchvision's constants). */
export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
/** ImageNet's per-channel RGB standard deviation, for images in [0, 1]. */
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

/** normalizeTransform with ImageNet's mean and deviation: what ImageNet-pretrained weights expect. */
export function imagenetNormalize(): SampleTransform {
  return normalizeTransform(IMAGENET_MEAN, IMAGENET_STD);
}

/**
 * The transforms applied one after another, as one (torchvision's Compose). Each draws from the same
 * generator in order, so a composed pipeline gives the same values as the list given to a loader.
 *
 * @example
 * const augment = compose([randomResizedCrop(), horizontalFlip(), colorJitter({ brightness: 0.2 }), imagenetNormalize()]);
 */
export function compose(transforms: readonly SampleTransform[]): SampleTransform {
  const steps = [...transforms];
  return {
    description: `compose([${steps.map((step) => step.description).join(', ')}])`,
    apply(image, shape, random) {
      for (const step of steps) step.apply(image, shape, random);
    },
  };
}

/** Mirrors the image top–bottom with the given probability (default 0.5). */
export function verticalFlip(probability = 0.5): SampleTransform {
  checkProbability(probability, 'verticalFlip');
  return {
    description: `verticalFlip(${probability})`,
    apply(image, { channels, height, width }, random) {
      // Drawn whatever the probability, as horizontalFlip, so the stream does not depend on it.
      if (random.next() >= probability) return;
      const plane = height * width;
      for (let channel = 0; channel < channels; channel++) {
        for (let top = 0, bottom = height - 1; top < bottom; top++, bottom--) {
          const a = channel * plane + top * width;
          const b = channel * plane + bottom * width;
          for (let x = 0; x < width; x++) {
            const swap = image[a + x]!;
            image[a + x] = image[b + x]!;
            image[b + x] = swap;
          }
        }
      }
    },
  };
}

function checkProbability(probability: number, name: string): void {
  if (!(probability >= 0 && probability <= 1))
    throw new RangeError(`${name}: probability must be in [0, 1], got ${probability}`);
}

function checkRange(range: readonly [number, number], name: string, low: number): void {
  if (!(range[0] >= low && range[1] >= range[0]))
    throw new RangeError(`${name} must be [min, max] with ${low} ≤ min ≤ max, got [${range.join(', ')}]`);
}

/**
 * Bilinear sample of one channel plane at (y, x) in pixel-centre coordinates; points outside the
 * image read as 0 (with the border pixels blending into it).
 */
function bilinear(plane: Float32Array, height: number, width: number, y: number, x: number): number {
  const y0 = Math.floor(y);
  const x0 = Math.floor(x);
  const fy = y - y0;
  const fx = x - x0;
  const at = (row: number, column: number) =>
    row < 0 || row >= height || column < 0 || column >= width ? 0 : plane[row * width + column]!;
  return (
    (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) +
    fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1))
  );
}

/**
 * Resamples the region [top, top + regionHeight) × [left, left + regionWidth) of each channel of
 * `source` ([C, H, W]) onto an outHeight × outWidth grid, bilinearly with half-pixel centres (as
 * PyTorch's interpolate with align_corners=False); edges are clamped, not blended with black.
 */
function resampleRegion(
  source: Float32Array,
  { channels, height, width }: ImageShape,
  top: number,
  left: number,
  regionHeight: number,
  regionWidth: number,
  outHeight: number,
  outWidth: number,
): Float32Array {
  const out = new Float32Array(channels * outHeight * outWidth);
  const scaleY = regionHeight / outHeight;
  const scaleX = regionWidth / outWidth;
  for (let channel = 0; channel < channels; channel++) {
    const plane = source.subarray(channel * height * width, (channel + 1) * height * width);
    for (let y = 0; y < outHeight; y++) {
      const sourceY = Math.min(height - 1, Math.max(0, top + (y + 0.5) * scaleY - 0.5));
      for (let x = 0; x < outWidth; x++) {
        const sourceX = Math.min(width - 1, Math.max(0, left + (x + 0.5) * scaleX - 0.5));
        out[(channel * outHeight + y) * outWidth + x] = bilinear(plane, height, width, sourceY, sourceX);
      }
    }
  }
  return out;
}

/**
 * A new image [channels, height, width] resized bilinearly from `image` (whose shape is `shape`).
 * Resizing changes the shape, so it is a function rather than an in-place transform: imageFolder
 * resizes while decoding; use this for arrays from elsewhere.
 *
 * @example
 * const small = resizeImage(image, { channels: 3, height: 64, width: 48 }, 32, 24); // [3, 32, 24]
 */
export function resizeImage(
  image: Float32Array,
  shape: ImageShape,
  height: number,
  width: number,
): Float32Array {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1)
    throw new RangeError(`resizeImage: height and width must be positive integers, got ${height}×${width}`);
  return resampleRegion(image, shape, 0, 0, shape.height, shape.width, height, width);
}

export interface RandomResizedCropOptions {
  /** The crop's area as a fraction of the image's, drawn uniformly (default [0.08, 1]). */
  scale?: readonly [number, number];
  /** The crop's width / height, drawn log-uniformly (default [3/4, 4/3]). */
  ratio?: readonly [number, number];
}

/**
 * Crops a random region (its area and aspect ratio drawn as options say) and resizes it back to the
 * image's size, bilinearly: torchvision's RandomResizedCrop with the output size equal to the input's
 * (resize first, e.g. with imageFolder's imageSize). After 10 draws that do not fit, the whole image
 * is kept, centre-cropped to the nearest allowed ratio (as torchvision does).
 */
export function randomResizedCrop(options: RandomResizedCropOptions = {}): SampleTransform {
  const scale = options.scale ?? [0.08, 1];
  const ratio = options.ratio ?? [3 / 4, 4 / 3];
  checkRange(scale, 'randomResizedCrop: scale', 0);
  if (!(scale[1] <= 1 && scale[1] > 0))
    throw new RangeError(`randomResizedCrop: scale must lie in (0, 1], got [${scale.join(', ')}]`);
  checkRange(ratio, 'randomResizedCrop: ratio', Number.MIN_VALUE);
  return {
    description: `randomResizedCrop(${JSON.stringify({ scale, ratio })})`,
    apply(image, shape, random) {
      const { height, width } = shape;
      const area = height * width;
      let cropHeight = height;
      let cropWidth = width;
      let top = 0;
      let left = 0;
      let found = false;
      for (let attempt = 0; attempt < 10 && !found; attempt++) {
        const targetArea = area * random.uniform(scale[0], scale[1]);
        const aspect = Math.exp(random.uniform(Math.log(ratio[0]), Math.log(ratio[1])));
        const w = Math.round(Math.sqrt(targetArea * aspect));
        const h = Math.round(Math.sqrt(targetArea / aspect));
        if (w > 0 && h > 0 && w <= width && h <= height) {
          cropHeight = h;
          cropWidth = w;
          top = random.int(height - h + 1);
          left = random.int(width - w + 1);
          found = true;
        }
      }
      if (!found) {
        const aspect = width / height;
        if (aspect < ratio[0]) cropHeight = Math.round(width / ratio[0]);
        else if (aspect > ratio[1]) cropWidth = Math.round(height * ratio[1]);
        top = Math.floor((height - cropHeight) / 2);
        left = Math.floor((width - cropWidth) / 2);
      }
      image.set(resampleRegion(image, shape, top, left, cropHeight, cropWidth, height, width));
    },
  };
}

/**
 * Rotates the image about its centre by an angle drawn uniformly from [−maxDegrees, maxDegrees]
 * (positive: counter-clockwise), bilinearly, filling the corners that come in from outside with zeros.
 */
export function randomRotation(maxDegrees: number): SampleTransform {
  if (!(maxDegrees >= 0 && maxDegrees <= 180))
    throw new RangeError(`randomRotation: maxDegrees must be in [0, 180], got ${maxDegrees}`);
  return {
    description: `randomRotation(${maxDegrees})`,
    apply(image, { channels, height, width }, random) {
      const angle = (random.uniform(-maxDegrees, maxDegrees) * Math.PI) / 180;
      if (angle === 0) return;
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const centerY = (height - 1) / 2;
      const centerX = (width - 1) / 2;
      const plane = height * width;
      const source = image.slice();
      for (let channel = 0; channel < channels; channel++) {
        const sourcePlane = source.subarray(channel * plane, (channel + 1) * plane);
        for (let y = 0; y < height; y++) {
          for (let x = 0; x < width; x++) {
            // Each output pixel reads the point the inverse rotation takes it to. A positive angle
            // turns the picture counter-clockwise as seen (y points down), as torchvision's does.
            const dy = y - centerY;
            const dx = x - centerX;
            const sourceY = centerY + cos * dy + sin * dx;
            const sourceX = centerX - sin * dy + cos * dx;
            image[channel * plane + y * width + x] =
              sourceY <= -1 || sourceY >= height || sourceX <= -1 || sourceX >= width
                ? 0
                : bilinear(sourcePlane, height, width, sourceY, sourceX);
          }
        }
      }
    },
  };
}

export interface ColorJitterOptions {
  /** Multiply by a factor drawn from [1 − b, 1 + b] (default 0: unchanged). */
  brightness?: number;
  /** Blend with the image's mean gray by a factor from [1 − c, 1 + c] (default 0). */
  contrast?: number;
  /** Blend with the pixel's gray by a factor from [1 − s, 1 + s]; RGB images only (default 0). */
  saturation?: number;
}

/**
 * Random brightness, contrast and saturation changes (torchvision's ColorJitter without hue), applied
 * in that fixed order to images with values in [0, 1] and clamped to [0, 1]; put it before any
 * normalisation. Gray is ITU-R 601's luma, 0.299 R + 0.587 G + 0.114 B, as PIL and torchvision use.
 */
export function colorJitter(options: ColorJitterOptions): SampleTransform {
  const brightness = options.brightness ?? 0;
  const contrast = options.contrast ?? 0;
  const saturation = options.saturation ?? 0;
  for (const [name, value] of Object.entries({ brightness, contrast, saturation }))
    if (!(value >= 0 && value <= 1))
      throw new RangeError(`colorJitter: ${name} must be in [0, 1], got ${value}`);
  const factor = (amount: number, random: Random) => random.uniform(1 - amount, 1 + amount);
  return {
    description: `colorJitter(${JSON.stringify({ brightness, contrast, saturation })})`,
    apply(image, { channels, height, width }, random) {
      const plane = height * width;
      const clamp = (value: number) => (value < 0 ? 0 : value > 1 ? 1 : value);
      const gray = (p: number) =>
        channels === 3
          ? 0.299 * image[p]! + 0.587 * image[plane + p]! + 0.114 * image[2 * plane + p]!
          : image[p]!;
      // Draws happen whether or not an amount is 0, so the stream depends only on the call count.
      const brightnessFactor = factor(brightness, random);
      const contrastFactor = factor(contrast, random);
      const saturationFactor = factor(saturation, random);
      if (brightness > 0)
        for (let i = 0; i < image.length; i++) image[i] = clamp(image[i]! * brightnessFactor);
      if (contrast > 0) {
        let sum = 0;
        for (let p = 0; p < plane; p++) sum += gray(p);
        const mean = sum / plane;
        for (let i = 0; i < image.length; i++) image[i] = clamp(mean + contrastFactor * (image[i]! - mean));
      }
      if (saturation > 0 && channels === 3) {
        for (let p = 0; p < plane; p++) {
          const level = gray(p);
          for (let channel = 0; channel < 3; channel++) {
            const i = channel * plane + p;
            image[i] = clamp(level + saturationFactor * (image[i]! - level));
          }
        }
      }
    },
  };
}

export interface RandomErasingOptions {
  /** Chance of erasing a given image (default 0.5). */
  probability?: number;
  /** The erased area as a fraction of the image's (default [0.02, 0.33]). */
  scale?: readonly [number, number];
  /** The erased rectangle's height / width, log-uniform (default [0.3, 3.3]). */
  ratio?: readonly [number, number];
  /** The value written (default 0; after normalisation 0 is the mean colour). */
  value?: number;
}

/**
 * Sets a random rectangle of every channel to `value` (Zhong et al.'s random erasing, torchvision's
 * RandomErasing); usually placed after normalisation. After 10 draws that do not fit, nothing is
 * erased.
 */
export function randomErasing(options: RandomErasingOptions = {}): SampleTransform {
  const probability = options.probability ?? 0.5;
  const scale = options.scale ?? [0.02, 0.33];
  const ratio = options.ratio ?? [0.3, 3.3];
  const value = options.value ?? 0;
  checkProbability(probability, 'randomErasing');
  checkRange(scale, 'randomErasing: scale', 0);
  checkRange(ratio, 'randomErasing: ratio', Number.MIN_VALUE);
  return {
    description: `randomErasing(${JSON.stringify({ probability, scale, ratio, value })})`,
    apply(image, { channels, height, width }, random) {
      if (random.next() >= probability) return;
      const area = height * width;
      for (let attempt = 0; attempt < 10; attempt++) {
        const targetArea = area * random.uniform(scale[0], scale[1]);
        const aspect = Math.exp(random.uniform(Math.log(ratio[0]), Math.log(ratio[1])));
        const h = Math.round(Math.sqrt(targetArea * aspect));
        const w = Math.round(Math.sqrt(targetArea / aspect));
        if (h < 1 || w < 1 || h > height || w > width) continue;
        const top = random.int(height - h + 1);
        const left = random.int(width - w + 1);
        for (let channel = 0; channel < channels; channel++)
          for (let y = top; y < top + h; y++) {
            const start = (channel * height + y) * width + left;
            image.fill(value, start, start + w);
          }
        return;
      }
    },
  };
}
