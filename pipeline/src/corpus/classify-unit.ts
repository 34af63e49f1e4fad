/**
 * One corpus unit through the pipeline's classifyPatch (pipeline/src/stages/index.ts), mapped to
 * the corpus verdicts. The pipeline caches the original build per source tree, so units that
 * share a base tree share one original build.
 */
import { UserError } from '../cli/errors.ts';
import { BuildFailed } from '../stages/build-command.ts';
import { classifyPatch, type Report } from '../stages/index.ts';
import type { UnitVerdict } from './results.ts';
import { carriedVariables, liveWithNewData } from './new-data.ts';
import { checkBundle, confirmVerdict, type BundleCheck } from './confirm.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface UnitClassification extends UnitVerdict {
  /** The pipeline's timings (ms per stage), when it produced a report. */
  readonly timings: Readonly<Record<string, number>>;
  readonly originalBuild: { key: string; cached: boolean } | null;
  /** The original (unpatched) tree did not build: the unit says nothing, another base tree may. */
  readonly originalBuildFailed: boolean;
}

function reasonLine(r: { object: string | null; symbol: string | null; what: string; kind?: string }): string {
  return [r.object, r.symbol, r.what].filter((x) => x !== null && x !== '').join(': ');
}

/** Maps a pipeline report to a corpus verdict: pure, tested in test/corpus-table.test.ts. */
export function verdictOf(report: Pick<Report, 'outcome' | 'textOnly' | 'reasons' | 'notes' | 'objects'>): Omit<UnitClassification, 'timings' | 'originalBuild' | 'originalBuildFailed'> {
  const reasons = report.reasons.map(reasonLine);
  const objects = report.objects.length;
  switch (report.outcome) {
    case 'kpatchable':
      return { verdict: 'kpatchable', reason: '', reasons, objects, liveWithNewData: true };
    case 'not-text-only': {
      if (liveWithNewData(report.outcome, report.objects)) {
        const names = carriedVariables(report.objects);
        const first = report.reasons.find((r) => r.kind === 'new-data') ?? report.reasons[0];
        const reason = `${first ? `${reasonLine(first)}; ` : ''}live-patchable with new data (${names.join(', ')} carried in the patch)`;
        return { verdict: 'not-text-only', reason, reasons, objects, liveWithNewData: true };
      }
      const data = report.reasons.find((r) => r.kind === 'data' || r.kind === 'new-object' || r.kind === 'layout') ?? report.reasons[0];
      return { verdict: 'not-text-only', reason: data ? reasonLine(data) : 'not text-only (no reason given)', reasons, objects, liveWithNewData: false };
    }
    case 'no-compiled-code':
      return { verdict: 'no-code', reason: report.notes[0] ?? 'no compiled object changed', reasons, objects };
    case 'not-kpatchable': {
      // create-diff-object failing (exit 1/2) leaves text-only unanswered: that is a failure
      // to classify, not a "text-only but not kpatch-able".
      if (report.textOnly === null) {
        const error = report.reasons.find((r) => r.kind === 'error') ?? report.reasons[0];
        return { verdict: 'failed', reason: `create-diff-object failed: ${error ? reasonLine(error) : 'no reason given'}`, reasons, objects };
      }
      const first = report.reasons.find((r) => r.kind !== 'error') ?? report.reasons[0];
      return { verdict: 'text-only', reason: first ? reasonLine(first) : 'not kpatch-able (no reason given)', reasons, objects, liveWithNewData: false };
    }
  }
}

/**
 * One line out of a pipeline error: its first line, plus the most telling line of the build
 * output below it (a compiler or configure error rather than make's closing "Error 2").
 */
export function failureReason(message: string): string {
  const lines = message.trim().split('\n').map((l) => l.trim()).filter(Boolean);
  const [first, ...rest] = lines;
  if (rest.length === 0) return first ?? 'failed (no message)';
  const telling = [...rest].reverse().find((l) => /(error|cannot|not found|no such|undefined reference|does not apply|FAILED)/i.test(l) && !/^make(\[\d+\])?: \*\*\*/.test(l));
  return `${first} … ${(telling ?? rest[rest.length - 1]!).slice(0, 240)}`;
}

export interface ClassifyUnitInput {
  readonly patchFile: string;
  readonly tree: string;
  /** A build command line (null: the pipeline's default, debian/rules build-arch). */
  readonly buildCmd: string | null;
}

/** Never throws for a unit that cannot be classified: that is a 'failed' verdict with its reason. */
export async function classifyUnit(input: ClassifyUnitInput): Promise<UnitClassification> {
  // The bundles are written so the loader's dry run can check each against its binary.
  const out = await mkdtemp(join(tmpdir(), 'wfpatch-corpus-bundles-'));
  try {
    const report = await classifyPatch({
      patch: input.patchFile,
      source: input.tree,
      buildCmd: input.buildCmd ?? undefined,
      out,
      bundles: true,
      renderer: 'silent',
    });
    const verdict = verdictOf(report);
    const checks: BundleCheck[] = [];
    if (verdict.verdict === 'kpatchable') {
      for (const b of report.bundles) {
        if (b.file !== null) checks.push(await checkBundle(join(out, b.file), b.originalPath, b.binary));
      }
    }
    return { ...confirmVerdict(verdict, checks), timings: report.timings, originalBuild: report.originalBuild, originalBuildFailed: false };
  } catch (error) {
    if (error instanceof UserError) {
      const reason = failureReason(error.message);
      const originalBuildFailed = error instanceof BuildFailed && error.step === 'original';
      return { verdict: 'failed', reason, reasons: [error.message], objects: 0, timings: {}, originalBuild: null, originalBuildFailed };
    }
    throw error;
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}
