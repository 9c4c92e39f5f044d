{
  # tensile's native CPU kernels. Built from source by scripts/build-native.mjs during `npm install`;
  # no download: node-gyp uses the Node headers already on the machine (npm's nodedir).
  'target_defaults': {
    # Node's common.gypi asks for gnu++17/gnu++20; the sources are plain C++17 without exceptions.
    'cflags_cc!': ['-std=gnu++17', '-std=gnu++20'],
    # -fno-math-errno and -fno-trapping-math let GCC vectorise and if-convert float code (a select
    # between g and g·0, say); neither changes results, unlike -ffast-math, which is not used.
    'cflags_cc': ['-std=c++17', '-O3', '-fno-exceptions', '-fvisibility=hidden'],
    'cflags': ['-O3', '-fno-math-errno', '-fno-trapping-math'],
    'xcode_settings': {
      'OTHER_CPLUSPLUSFLAGS': ['-std=c++17', '-O3'],
    },
  },
  'targets': [
    {
      'target_name': 'tensile_native',
      'sources': [
        'src/addon.cc',
        'src/thread_pool.cc',
        'src/scratch.cc',
        'src/gemm.cc',
        'src/conv.cc',
        'src/winograd.cc',
        'src/pool.cc',
        'src/norm.cc',
        'src/elementwise.cc',
        'src/epilogue.cc',
        'src/optim.cc',
      ],
      'conditions': [
        ['target_arch=="x64"', {
          'defines': ['TENSILE_HAVE_AVX2'],
          'dependencies': ['tensile_avx2', 'tensile_avx512'],
        }],
      ],
    },
    {
      # Only these files use AVX2/FMA instructions; the rest of the addon stays baseline x86-64, so
      # the run-time CPU check can fall back to the portable kernels on older processors.
      'target_name': 'tensile_avx2',
      'type': 'static_library',
      'conditions': [
        ['target_arch=="x64"', {
          'sources': ['src/gemm_avx2.cc'],
          'cflags_cc': ['-mavx2', '-mfma'],
        }],
      ],
    },
    {
      # The AVX-512 micro-kernel and pooling rows, likewise isolated and chosen at run time.
      'target_name': 'tensile_avx512',
      'type': 'static_library',
      'conditions': [
        ['target_arch=="x64"', {
          'sources': ['src/gemm_avx512.cc', 'src/pool_avx512.cc'],
          'cflags_cc': ['-mavx512f', '-mavx2', '-mfma'],
        }],
      ],
    },
  ],
}
