/**
 * Reads wfbuild output folders (report.json + bundle) into the fixes of one hot-fix package and
 * checks they belong together: every live fix kpatch-able, one bundle each, all for the same
 * target build-id, each bundle's bytes as report.json recorded them. Nothing is written here.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { UserError } from '../cli/errors.ts';
import type { BundleReport, Report } from '../report/types.ts';

/** A fix that goes into the package as a .wfp. */
export interface LiveFix {
  readonly outDir: string;
  readonly report: Report;
  readonly bundle: BundleReport;
  readonly bundleBytes: Buffer;
  /** The patch's name without .patch/.diff, e.g. 0007-uninitialized-variables. */
  readonly name: string;
}

/** A fix that could not be made live: listed in the description, the service needs a restart. */
export interface NotLiveFix {
  readonly outDir: string;
  readonly report: Report;
  readonly name: string;
  /** report.json's reasons, one line each. */
  readonly reasons: readonly string[];
}

export function fixName(report: Report): string {
  return basename(report.patch.name).replace(/\.(patch|diff)$/, '');
}

async function readReport(outDir: string): Promise<Report> {
  const path = join(outDir, 'report.json');
  const text = await readFile(path, 'utf8').catch(() => {
    throw new UserError(`${outDir}: no report.json (not a wfbuild output folder?)`);
  });
  let report: Report;
  try {
    report = JSON.parse(text) as Report;
  } catch (error) {
    throw new UserError(`${path}: not JSON: ${(error as Error).message}`);
  }
  if (report.format !== 1 || typeof report.outcome !== 'string' || typeof report.patch?.name !== 'string' || !Array.isArray(report.bundles)) {
    throw new UserError(`${path}: not a wfbuild report (format 1 with outcome, patch and bundles)`);
  }
  return report;
}

function reasonLines(report: Report): string[] {
  const lines = report.reasons.map((r) => (r.object ? `${r.object}: ${r.what}` : r.what));
  return lines.length > 0 ? lines : [`outcome ${report.outcome}`];
}

export async function readLiveFix(dir: string): Promise<LiveFix> {
  const outDir = resolve(dir);
  const report = await readReport(outDir);
  if (report.outcome !== 'kpatchable') {
    throw new UserError(
      `${outDir}: ${report.patch.name} is ${report.outcome}, not kpatch-able, so it cannot be a live fix: ${reasonLines(report).join('; ')} ` +
        `(give it with --not-live to list it as needing a restart)`,
    );
  }
  // Binaries the package does not install (memcached-debug beside memcached) are built and
  // patched too, but no process runs them: the installed one is the target.
  const withFile = report.bundles.filter((b) => b.file !== null);
  const installed = withFile.filter((b) => b.installedPath !== null);
  const candidates = installed.length > 0 ? installed : withFile;
  if (candidates.length !== 1) {
    throw new UserError(
      `${outDir}: ${report.patch.name} has ${candidates.length} bundles for ${installed.length > 0 ? 'installed binaries' : 'binaries'} (${candidates.map((b) => b.installedPath ?? b.binary).join(', ') || 'none'}); a hot-fix package targets one binary`,
    );
  }
  const bundle = candidates[0];
  if (!bundle.buildId) throw new UserError(`${outDir}: the bundle for ${bundle.binary} names no target build-id`);
  const path = join(outDir, bundle.file!);
  const bundleBytes = await readFile(path).catch(() => {
    throw new UserError(`${outDir}: bundle ${bundle.file} is missing`);
  });
  const sha = createHash('sha256').update(bundleBytes).digest('hex');
  if (bundle.sha256 !== null && sha !== bundle.sha256) {
    throw new UserError(`${path}: sha256 ${sha} differs from report.json's ${bundle.sha256} (changed or corrupted after wfbuild wrote it)`);
  }
  return { outDir, report, bundle, bundleBytes, name: fixName(report) };
}

export async function readNotLiveFix(dir: string): Promise<NotLiveFix> {
  const outDir = resolve(dir);
  const report = await readReport(outDir);
  if (report.outcome === 'kpatchable') {
    throw new UserError(`${outDir}: ${report.patch.name} is kpatch-able: give it as a live fix, not with --not-live`);
  }
  return { outDir, report, name: fixName(report), reasons: reasonLines(report) };
}

/** The one target every live fix patches; refuses fixes for different builds or binaries. */
export function commonTarget(fixes: readonly LiveFix[]): { buildId: string; path: string } {
  if (fixes.length === 0) throw new UserError('no live fix given: wfbuild package OUT1 [OUT2 ...] --out DIR');
  const first = fixes[0];
  for (const f of fixes.slice(1)) {
    if (f.bundle.buildId !== first.bundle.buildId) {
      throw new UserError(
        `outputs for two different targets: ${first.outDir} patches ${first.bundle.installedPath ?? first.bundle.binary} build-id ${first.bundle.buildId}, ` +
          `${f.outDir} patches ${f.bundle.installedPath ?? f.bundle.binary} build-id ${f.bundle.buildId}; one package is for one build`,
      );
    }
  }
  const names = new Set<string>();
  for (const f of fixes) {
    if (names.has(f.report.patch.sha256)) throw new UserError(`${f.outDir}: ${f.report.patch.name} is given twice`);
    names.add(f.report.patch.sha256);
  }
  return { buildId: first.bundle.buildId!, path: first.bundle.installedPath ?? first.bundle.binary };
}
