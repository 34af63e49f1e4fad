/**
 * "Confirmed against the shipped binary": a kpatch-able verdict is decided on objects; the
 * loader's dry run (`wfpatch-ctl check BUNDLE BINARY`, kpatch-fork/runtime/check.c) then
 * resolves every relocation and symbol of the unit's bundle in the binary of that build, as
 * the runtime would, without running it. A unit whose bundle fails is downgraded to text-only
 * with the dry run's reason.
 */
import { access } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { repoRoot } from '../paths.ts';
import { loadedByArgs } from '../stages/loaded-by.ts';
import { libraryDirArgs } from '../stages/library-dir.ts';
import type { UnitVerdict } from './results.ts';

export const wfpatchCtlPath: string = process.env.WFBUILD_WFPATCH_CTL ?? join(repoRoot, 'kpatch-fork/runtime/build/wfpatch-ctl');

/** What the corpus records: which bundles were checked against which binaries, and how it went. */
export interface Confirmation {
  readonly confirmed: boolean;
  /** The binaries (as the build names them) each bundle was checked against. */
  readonly binaries: readonly string[];
  /** The dry run's summary line, or its first error when it failed. */
  readonly how: string;
}

export interface BundleCheck {
  readonly binary: string;
  readonly ok: boolean;
  /** `ok: …` summary, or the first `error: …` line. */
  readonly line: string;
}

export async function ensureWfpatchCtl(): Promise<void> {
  if (!(await access(wfpatchCtlPath).then(() => true, () => false))) {
    throw new UserError(`${wfpatchCtlPath} is missing: run 'make -C kpatch-fork' (or npm run setup)`, ExitCode.missingPrerequisite);
  }
}

/**
 * Runs the dry run; exit 0 loadable, 1 refused (reasons on stdout), 2 usage/unreadable binary.
 * `loadedBy`: the files of the programs that dlopen() the binary, a module (`--loaded-by`).
 * `libraryDir`: the build's own libraries by soname (`--library-dir`, stages/library-dir.ts).
 */
export async function checkBundle(bundle: string, binary: string, name: string, loadedBy: readonly string[] = [], libraryDir: string | null = null): Promise<BundleCheck> {
  const r = await execa(wfpatchCtlPath, ['check', bundle, binary, ...loadedByArgs(loadedBy), ...libraryDirArgs(libraryDir)], { reject: false, stdin: 'ignore' });
  // the bundle lives in a scratch folder: name it by its file name
  const lines = r.stdout.split('\n').filter(Boolean).map((l) => l.split(bundle).join(basename(bundle)));
  if (r.exitCode === 0) return { binary: name, ok: true, line: lines.find((l) => l.startsWith('ok:')) ?? 'ok' };
  const error = lines.find((l) => l.startsWith('error: ')) ?? (r.stderr.trim() || `wfpatch-ctl check exit ${r.exitCode}`);
  return { binary: name, ok: false, line: error.replace(/^error: /, '') };
}

/**
 * Applies the dry runs to a verdict (pure): kpatch-able stays kpatch-able, confirmed, when every
 * bundle passed; otherwise it becomes text-only with the first failure as its reason. Other
 * verdicts are returned as they are.
 */
export function confirmVerdict<V extends UnitVerdict>(v: V, checks: readonly BundleCheck[]): V {
  if (v.verdict !== 'kpatchable') return v;
  if (checks.length === 0) {
    return { ...v, confirmation: { confirmed: false, binaries: [], how: 'no bundle was linked to check' } };
  }
  const failed = checks.find((c) => !c.ok);
  const binaries = checks.map((c) => c.binary);
  if (failed) {
    const reason = `${failed.binary}: wfpatch-ctl check: ${failed.line}`;
    return { ...v, verdict: 'text-only', reason, reasons: [...v.reasons, reason], liveWithNewData: false, confirmation: { confirmed: false, binaries, how: failed.line } };
  }
  return { ...v, confirmation: { confirmed: true, binaries, how: checks.map((c) => c.line).join('; ') } };
}
