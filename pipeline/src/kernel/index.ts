export { buildKernel, kernelCacheDir, defaultConfigDir, defaultPatchesDir, type BuildKernelOptions, type KernelBuild } from './build.ts';
export { kernelVariants, type KernelVariant } from './config.ts';
export { readSeries, type SeriesPatch } from './series.ts';
export { packageKernel, debFields, type KernelPackage } from './package.ts';
