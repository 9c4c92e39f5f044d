/** The environment for the PyTorch bench processes (bench/python/*.py). */
import { readFileSync } from 'node:fs';

/**
 * Environment for the PyTorch process. Debian 12's OpenBLAS 0.3.21 does not recognise recent Xeons
 * (Sapphire Rapids) and falls back to its SSE3 "Prescott" kernels, about 7× slower than its
 * AVX-512 ones; a PyTorch user with the pip wheel (MKL) never sees that, so we name the core type it
 * should use from the CPU's flags unless the caller already chose one.
 */
export function torchEnvironment(): NodeJS.ProcessEnv {
  const environment = { ...process.env };
  if (environment.OPENBLAS_CORETYPE === undefined) {
    let flags = '';
    try {
      flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
    } catch {
      // Not Linux: leave OpenBLAS to its own detection.
    }
    const has = (flag: string) => flags.split(/\s+/).includes(flag);
    if (has('avx512f') && has('avx512bw') && has('avx512vl')) environment.OPENBLAS_CORETYPE = 'SkylakeX';
    else if (has('avx2') && has('fma')) environment.OPENBLAS_CORETYPE = 'Haswell';
  }
  return environment;
}
