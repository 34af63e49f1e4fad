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
import { groupByBinary, type BinaryGroup, type Services } from './services.ts';
import { classifyOutcome } from '../stages/classify.ts';
import { checkBundle, confirmVerdict, type BundleCheck } from './confirm.ts';
import { loadingPrograms, siblingPath } from '../stages/loaded-by.ts';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { triagePatch } from '../triage/index.ts';
import { changesBuildSystem, classifyOnUnitTree } from './unit-tree-build.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface UnitClassification extends UnitVerdict {
  /** The pipeline's timings (ms per stage), when it produced a report. */
  readonly timings: Readonly<Record<string, number>>;
  readonly originalBuild: { key: string; cached: boolean } | null;
  /** The original (unpatched) tree did not build: the unit says nothing, another base tree may. */
  readonly originalBuildFailed: boolean;
  /** The tree built but not with the unit applied (optional: results read back lack it). */
  readonly patchedBuildFailed?: boolean;
}

function reasonLine(r: { object: string | null; symbol: string | null; what: string; kind?: string }): string {
  return [r.object, r.symbol, r.what].filter((x) => x !== null && x !== '').join(': ');
}

type ReportPart = Pick<Report, 'outcome' | 'textOnly' | 'reasons' | 'notes' | 'objects'>;
type Mapped = Omit<UnitClassification, 'timings' | 'originalBuild' | 'originalBuildFailed'>;

/**
 * Maps a pipeline report to a corpus verdict: pure, tested in test/corpus-table.test.ts. With
 * the package's services (its manifest), the verdict is given per binary and the unit's
 * verdict counts only the long-running ones (services.ts).
 */
export function verdictOf(report: ReportPart, services?: Services): Mapped {
  const whole = wholeVerdict(report);
  if (!services || report.objects.length === 0) return whole;
  const groups = groupByBinary(services, report.objects, report.reasons);
  const sub = (objects: BinaryGroup['objects'], reasons: BinaryGroup['reasons']): Mapped => {
    const unbundled = [...new Set(reasons.filter((r) => r.kind === 'bundle').map((r) => r.what))];
    const cls = classifyOutcome({ touchesCompiledCode: true, objects, reasons, unbundled });
    return wholeVerdict({ outcome: cls.outcome, textOnly: cls.textOnly, reasons, notes: report.notes, objects });
  };
  const perBinary = groups.map((g) => {
    const v = sub(g.objects, g.reasons);
    return { binary: g.binary, longRunning: g.longRunning, verdict: v.verdict, reason: v.reason };
  });
  const service = groups.filter((g) => g.longRunning);
  const others = perBinary.filter((b) => !b.longRunning);
  if (others.length === 0) return { ...whole, perBinary };
  const otherText = others.map((b) => `${b.binary}: ${b.verdict}${b.reason ? ` (${b.reason})` : ''}`).join('; ');
  if (service.length === 0) {
    return { verdict: 'no-code', reason: `no long-running binary changes, only ${others.map((b) => b.binary).join(', ')} — ${otherText}`, reasons: whole.reasons, objects: whole.objects, perBinary };
  }
  const objects = [...new Set(service.flatMap((g) => g.objects))];
  const reasons = [...new Set(service.flatMap((g) => g.reasons))];
  const v = sub(objects, reasons);
  const note = `not counted, not long-running: ${otherText}`;
  return { ...v, reason: v.reason ? `${v.reason}; ${note}` : note, reasons: whole.reasons, objects: whole.objects, perBinary };
}

function wholeVerdict(report: ReportPart): Mapped {
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
  /** The package's long-running binaries (its manifest): verdicts per binary. */
  readonly services?: Services;
}

/** Never throws for a unit that cannot be classified: that is a 'failed' verdict with its reason. */
export async function classifyUnit(input: ClassifyUnitInput): Promise<UnitClassification> {
  // The bundles are written so the loader's dry run can check each against its binary.
  const out = await mkdtemp(join(tmpdir(), 'wfpatch-corpus-bundles-'));
  try {
    // A build-system unit is measured on its own tree built from scratch (unit-tree-build.ts).
    const classify = changesBuildSystem(triagePatch(await readFile(input.patchFile, 'utf8'), input.patchFile)) ? classifyOnUnitTree : classifyPatch;
    const report = await classify({
      patch: input.patchFile,
      source: input.tree,
      buildCmd: input.buildCmd ?? undefined,
      out,
      bundles: true,
      renderer: 'silent',
      ...(input.services?.loadedBy ? { loaders: input.services.loadedBy } : {}),
    });
    const verdict = verdictOf(report, input.services);
    const checks: BundleCheck[] = [];
    if (verdict.verdict === 'kpatchable') {
      for (const b of report.bundles) {
        if (b.file === null) continue;
        // A utility's bundle (written beside the daemon's) does not decide the service.
        if (verdict.perBinary?.some((g) => g.binary === b.binary && !g.longRunning)) continue;
        // the loading programs of a module, from the same original build as the module
        const loaders = loadingPrograms(input.services?.loadedBy, b.binary).map((p) => siblingPath(b.originalPath, b.binary, p));
        checks.push(await checkBundle(join(out, b.file), b.originalPath, b.binary, loaders, b.libraryDir));
      }
    }
    return { ...confirmVerdict(verdict, checks), timings: report.timings, originalBuild: report.originalBuild, originalBuildFailed: false };
  } catch (error) {
    if (error instanceof UserError) {
      const reason = failureReason(error.message);
      const originalBuildFailed = error instanceof BuildFailed && error.step === 'original';
      const patchedBuildFailed = error instanceof BuildFailed && error.step === 'patched';
      return { verdict: 'failed', reason, reasons: [error.message], objects: 0, timings: {}, originalBuild: null, originalBuildFailed, patchedBuildFailed };
    }
    throw error;
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}
