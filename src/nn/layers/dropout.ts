/** Dropout: randomly zeroes elements during training (inverted scaling), identity in inference. */
import type { Random } from '../../tensor/random.js';
import { dropout } from '../../ops/index.js';
import type { Tensor } from '../../tensor/tensor.js';
import { defaultRandom } from '../init.js';
import { Module } from '../module.js';

export class Dropout extends Module {
  static override readonly keepsNoTensors = true;
  static override readonly independentSamples = true;
  constructor(
    readonly probability = 0.5,
    private readonly random?: Random,
  ) {
    super();
    if (!(probability >= 0 && probability < 1))
      throw new RangeError(`Dropout: probability must be in [0, 1), got ${probability}`);
  }
  forward(x: Tensor): Tensor {
    return dropout(x, this.probability, this.training, this.random ?? defaultRandom());
  }
  /** In training the draws depend on where a sample sits in the batch; in inference it is the identity. */
  override samplesIndependentNow(): boolean {
    return !this.training || this.probability === 0;
  }
  /** The constructor's argument (saveModel and exporters read this; the generator is not saved). */
  config(): { probability: number } {
    return { probability: this.probability };
  }
  override describe(): string {
    return `Dropout(${this.probability})`;
  }
}
