import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

/** The repository's top folder (this file is pipeline/src/paths.ts). */
export const repoRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Where heavy, content-addressed build outputs live (kernels, package builds). Outside the
 * work tree so a fresh clone in CI reuses them; override with WFPATCH_CACHE.
 */
export const cacheRoot: string = process.env.WFPATCH_CACHE ?? '/var/cache/wfpatch';
