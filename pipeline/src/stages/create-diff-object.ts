import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { repoRoot } from '../paths.ts';
import type { DiffOutcome, Reason } from '../report/types.ts';
import { tail } from '../common/text.ts';
import { loadedByArgs } from './loaded-by.ts';
import { libraryDirArgs } from './library-dir.ts';

/** create-diff-object's path; WFBUILD_CREATE_DIFF_OBJECT overrides it (e.g. an installed copy). */
export const createDiffObjectPath: string = process.env.WFBUILD_CREATE_DIFF_OBJECT ?? join(repoRoot, 'kpatch-fork/bin/create-diff-object');

export interface DiffResult {
  readonly outcome: DiffOutcome;
  readonly exitCode: number;
  /** The verdict JSON as create-diff-object wrote it (null when it wrote none). */
  readonly verdict: unknown;
  /** The patch object, when outcome is 'patch'. */
  readonly output: string | null;
  /** create-diff-object's stderr (last lines): the reason when there is no usable verdict. */
  readonly message: string;
  /**
   * The patch adds variables and create-diff-object carried them (--new-data, exit 0, verdict
   * liveWithNewData): outcome stays 'not-text-only' (the paper's definition), but the patch is
   * live-patchable with new data; its object is at `newDataOutput`.
   */
  readonly liveWithNewData: boolean;
  readonly newDataOutput: string | null;
}

const outcomes: Record<number, DiffOutcome> = { 0: 'patch', 3: 'nothing', 4: 'not-text-only', 5: 'not-patchable' };

export async function ensureCreateDiffObject(): Promise<void> {
  const ok = await access(createDiffObjectPath).then(() => true, () => false);
  if (!ok) {
    throw new UserError(`${createDiffObjectPath} is missing: run 'make -C kpatch-fork' (or npm run setup)`, ExitCode.missingPrerequisite);
  }
}

/**
 * Runs `create-diff-object ORIG.o PATCHED.o --output PATCH.o --verdict VERDICT.json --new-data [--binary ELF]`;
 * without a binary (null) the object pair alone is judged (the corpus' compile-only mode).
 * `provided`: globals another patch object of the same bundle defines (`--provided`).
 * `loadedBy`: the files of the programs that dlopen() the binary (`--loaded-by`, loaded-by.ts).
 * `libraryDir`: the build's own libraries by soname (`--library-dir`, library-dir.ts).
 */
export async function createDiffObject(
  orig: string,
  patched: string,
  binary: string | null,
  output: string,
  verdictPath: string,
  provided: readonly string[] = [],
  loadedBy: readonly string[] = [],
  libraryDir: string | null = null,
): Promise<DiffResult> {
  const extra = binary === null ? [] : ['--binary', binary, ...provided.flatMap((name) => ['--provided', name]), ...loadedByArgs(loadedBy), ...libraryDirArgs(libraryDir)];
  const result = await execa(createDiffObjectPath, [orig, patched, '--output', output, '--verdict', verdictPath, '--new-data', ...extra], {
    reject: false,
    all: true,
    stdin: 'ignore',
  });
  const exitCode = result.exitCode ?? -1;
  let verdict: unknown = null;
  try {
    verdict = JSON.parse(await readFile(verdictPath, 'utf8'));
  } catch {
    verdict = null;
  }
  const liveWithNewData = exitCode === 0 && (verdict as { liveWithNewData?: unknown } | null)?.liveWithNewData === true;
  const outcome = liveWithNewData ? 'not-text-only' : (outcomes[exitCode] ?? 'error');
  const message = tail((result.all ?? '').trim(), 8);
  return { outcome, exitCode, verdict, output: outcome === 'patch' ? output : null, message, liveWithNewData, newDataOutput: liveWithNewData ? output : null };
}

/**
 * Reasons out of a verdict (kpatch-fork/FORMAT.md: `reasons` as {kind, symbol, what}); falls
 * back to the verdict's `error` or the tool's stderr so a "no" is never unexplained.
 */
export function verdictReasons(object: string, result: DiffResult): Reason[] {
  const reasons: Reason[] = [];
  const v = result.verdict as Record<string, unknown> | null;
  const list = v && Array.isArray(v['reasons']) ? (v['reasons'] as unknown[]) : [];
  for (const item of list) {
    if (!item || typeof item !== 'object') continue;
    const r = item as Record<string, unknown>;
    reasons.push({
      object,
      kind: typeof r['kind'] === 'string' ? r['kind'] : 'unknown',
      symbol: typeof r['symbol'] === 'string' ? r['symbol'] : null,
      what: typeof r['what'] === 'string' ? r['what'] : JSON.stringify(item),
    });
  }
  if (reasons.length === 0 && result.outcome !== 'patch' && result.outcome !== 'nothing') {
    const error = v && typeof v['error'] === 'string' ? v['error'] : result.message;
    reasons.push({ object, kind: result.outcome === 'error' ? 'error' : result.outcome, symbol: null, what: `create-diff-object exit ${result.exitCode}${error ? `: ${error}` : ''}` });
  }
  return reasons;
}
