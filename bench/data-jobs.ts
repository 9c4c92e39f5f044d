/** What bench/data.ts and its worker threads do to images: decode (no cache) and augment. */
import {
  horizontalFlip,
  type ImageDataset,
  imageFolder,
  imageListing,
  Random,
  randomResizedCrop,
  randomShift,
  type SampleTransform,
} from '../src/index.js';

export interface DecodeJob {
  /** A class folder, or a path,label listing CSV (a worker's share). */
  source: string;
  imageSize: number;
  color: 'grayscale' | 'rgb';
  /** 'shift': randomShift(2) (digits); 'crop-flip': randomResizedCrop then horizontalFlip (photos). */
  augment: 'shift' | 'crop-flip';
  seed: number;
}

export async function decodeJob(job: DecodeJob): Promise<ImageDataset> {
  const read = job.source.endsWith('.csv') ? imageListing : imageFolder;
  return (await read(job.source, { imageSize: job.imageSize, color: job.color })).all;
}

/** Applies the job's augmentation to every image once, in place, as the loader would per epoch. */
export function augmentAll(dataset: ImageDataset, augment: DecodeJob['augment'], seed: number): void {
  const transforms: SampleTransform[] =
    augment === 'shift' ? [randomShift(2)] : [randomResizedCrop({ scale: [0.5, 1] }), horizontalFlip()];
  const { channels, height, width } = dataset;
  const size = channels * height * width;
  const random = new Random(seed);
  for (let i = 0; i < dataset.count; i++) {
    const image = dataset.images.subarray(i * size, (i + 1) * size);
    for (const transform of transforms) transform.apply(image, { channels, height, width }, random);
  }
}
