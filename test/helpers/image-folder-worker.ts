/**
 * A dataset module for the WorkerPrefetcher test of imageFolderDataset: each worker thread opens the
 * folder named by the test (through the environment, which worker threads share) from the warm cache.
 */
import { type Example, imageFolderDataset, type WorkerDataset } from '../../src/index.js';

export async function createDataset(): Promise<WorkerDataset<Example>> {
  const folder = process.env.TENSILE_TEST_IMAGE_FOLDER;
  const cacheDirectory = process.env.TENSILE_TEST_IMAGE_CACHE;
  if (folder === undefined || cacheDirectory === undefined)
    throw new Error(
      'TENSILE_TEST_IMAGE_FOLDER and TENSILE_TEST_IMAGE_CACHE must name the folder and its cache',
    );
  return { dataset: await imageFolderDataset(folder, { imageSize: 28, color: 'grayscale', cacheDirectory }) };
}
