import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { parsePatch } from 'diff';
import { ExitCode, UserError } from '../cli/errors.ts';
import { tail } from '../common/text.ts';

/** One patch of a quilt-style series, with its content (so a later edit on disk cannot confuse a revert). */
export interface SeriesPatch {
  readonly name: string;
  readonly content: string;
  readonly sha256: string;
}

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Reads `<dir>/series` (quilt format: one patch file name a line, `#` comments). A missing
 * series file is an empty series; a listed patch that cannot be read is a usage error.
 */
export async function readSeries(dir: string): Promise<SeriesPatch[]> {
  let text: string;
  try {
    text = await readFile(join(dir, 'series'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UserError(`cannot read ${join(dir, 'series')}: ${(error as Error).message}`);
  }
  const patches: SeriesPatch[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const [name, ...options] = line.split(/\s+/);
    if (options.some((o) => o !== '-p1')) {
      throw new UserError(`${join(dir, 'series')}:${index + 1}: only -p1 patches are supported ('${line}')`);
    }
    let content: string;
    try {
      content = await readFile(join(dir, name), 'utf8');
    } catch (error) {
      throw new UserError(`${join(dir, 'series')}:${index + 1}: cannot read patch ${name}: ${(error as Error).message}`);
    }
    patches.push({ name, content, sha256: sha256(content) });
  }
  return patches;
}

/** The text of hunk `hunkNumber` (1-based) for `file` in a unified diff, for error messages. */
export function hunkText(patchContent: string, file: string, hunkNumber: number): string | undefined {
  let parsed;
  try {
    parsed = parsePatch(patchContent);
  } catch {
    return undefined;
  }
  const strip = (name: string | undefined): string => (name ?? '').replace(/^[ab]\//, '');
  const entry = parsed.find((p) => strip(p.newFileName) === file || strip(p.oldFileName) === file);
  const hunk = entry?.hunks[hunkNumber - 1];
  if (!hunk) return undefined;
  const header = `@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`;
  const body = hunk.lines.slice(0, 12);
  if (hunk.lines.length > body.length) body.push(`  … (${hunk.lines.length - body.length} more lines)`);
  return [header, ...body].join('\n');
}

/** Turns GNU patch's dry-run output into "file: hunk #N at line L" reports with the hunk's text. */
export function describeRejects(patch: SeriesPatch, output: string): string {
  const reports: string[] = [];
  let file = '';
  for (const line of output.split('\n')) {
    const fileMatch = /^(?:checking|patching) file '?([^']+?)'?$/.exec(line);
    if (fileMatch) file = fileMatch[1];
    const hunk = /^Hunk #(\d+) FAILED at (\d+)/.exec(line);
    if (hunk) {
      const text = hunkText(patch.content, file, Number(hunk[1]));
      reports.push(`${file}: hunk #${hunk[1]} rejected (at line ${hunk[2]})${text ? `\n${text}` : ''}`);
    }
    if (/can't find file to patch|No file to patch|Reversed \(or previously applied\)|malformed patch|Only garbage/.test(line)) {
      reports.push(line.trim());
    }
  }
  return reports.length > 0 ? reports.join('\n') : tail(output.trim(), 10);
}

const patchArgs = ['-p1', '--batch', '--forward', '--fuzz=0', '--no-backup-if-mismatch', '-r', '-'];

/**
 * Applies one patch to `tree`. A dry run first, so a patch that does not apply leaves the
 * tree untouched; the error names the patch and each rejected hunk.
 */
export async function applyPatch(tree: string, patch: SeriesPatch): Promise<void> {
  const dry = await execa('patch', [...patchArgs, '--dry-run'], { cwd: tree, input: patch.content, reject: false, all: true });
  if (dry.exitCode !== 0) {
    throw new UserError(`patch ${patch.name} does not apply:\n${describeRejects(patch, dry.all ?? '')}`, ExitCode.buildFailed);
  }
  const real = await execa('patch', patchArgs, { cwd: tree, input: patch.content, reject: false, all: true });
  if (real.exitCode !== 0) {
    throw new Error(`patch ${patch.name} passed its dry run but failed to apply:\n${real.all}`);
  }
}

/** Reverts a patch applied earlier; false when it does not reverse cleanly (tree must be re-unpacked). */
export async function revertPatch(tree: string, patch: SeriesPatch): Promise<boolean> {
  const dry = await execa('patch', [...patchArgs, '-R', '--dry-run'], { cwd: tree, input: patch.content, reject: false });
  if (dry.exitCode !== 0) return false;
  const real = await execa('patch', [...patchArgs, '-R'], { cwd: tree, input: patch.content, reject: false });
  return real.exitCode === 0;
}
