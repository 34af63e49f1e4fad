/**
 * Compiling chosen translation units into a folder, a few at a time, with the package's own
 * compiler calls (from the compile database).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { TranslationUnit } from './database.ts';

export interface CompileFailure {
  readonly source: string;
  /** The first compiler error line (or the last line of output). */
  readonly error: string;
}

/** Object file name for a source: flat, so all objects of one side share a folder. */
export function objectName(source: string): string {
  return `${source.replace(/\//g, '__')}.o`;
}

/** The most telling line of a compiler's output: its first "error", else its last line. */
export function firstError(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  return (lines.find((l) => /\berror\b/i.test(l)) ?? lines[lines.length - 1] ?? 'no output').slice(0, 300);
}

/**
 * Compiles each unit into `outDir/<objectName>`; returns the failures (none: all compiled).
 * `jobs` compilers run at once.
 */
export async function compileUnits(units: readonly TranslationUnit[], outDir: string, jobs: number, env: Record<string, string>): Promise<CompileFailure[]> {
  await mkdir(outDir, { recursive: true });
  const failures: CompileFailure[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < units.length) {
      const unit = units[next++]!;
      const result = await execa(unit.compiler, [...unit.args, '-o', join(outDir, objectName(unit.source))], {
        cwd: unit.directory,
        env,
        extendEnv: true,
        reject: false,
        all: true,
        stdin: 'ignore',
      });
      if (result.exitCode !== 0) failures.push({ source: unit.source, error: firstError(result.all ?? '') });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, units.length)) }, worker));
  return failures;
}
