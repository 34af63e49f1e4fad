/**
 * Which translation units a patch can change: the sources it touches, and every unit that
 * includes a header it touches, directly or through other headers. Found by reading #include
 * lines (grep), not by preprocessing every unit: a package's thousands of units would cost
 * more than the compiles saved. Matching by file name over-approximates (two headers with one
 * name); a unit compiled needlessly gives identical objects and costs only time.
 */
import { basename } from 'node:path';
import { execa } from 'execa';
import type { TranslationUnit } from './database.ts';

export const headerName = /\.(h|hh|hpp|hxx|inc|inl|def|tbl|ipp)$/;
const includable = ['*.c', '*.cc', '*.cpp', '*.cxx', '*.C', '*.h', '*.hh', '*.hpp', '*.hxx', '*.inc', '*.inl', '*.def', '*.tbl', '*.ipp'];

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Files under `tree` (tree-relative) with an #include naming one of these file names. */
async function includers(tree: string, names: readonly string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const alternatives = names.map(escapeRegex).join('|');
  const pattern = `^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^">]*/)?(${alternatives})[">]`;
  const include = includable.map((g) => `--include=${g}`);
  const result = await execa('grep', ['-rlE', ...include, '--exclude-dir=.pc', '--exclude-dir=.git', pattern, '.'], { cwd: tree, reject: false, maxBuffer: 256 * 1024 * 1024 });
  if (result.exitCode !== 0 && result.exitCode !== 1) throw new Error(`grep for includers failed: ${result.stderr}`);
  return result.stdout.split('\n').filter(Boolean).map((p) => p.replace(/^\.\//, ''));
}

export interface Affected {
  /** Units to compile, with why each one is affected. */
  readonly units: readonly { unit: TranslationUnit; why: string }[];
  /** Touched headers when no unit of the database includes any of them. */
  readonly unusedHeaders: readonly string[];
  /** Touched sources the database does not compile (not built in this configuration). */
  readonly uncompiledSources: readonly string[];
}

/**
 * The units affected by changes to these tree-relative files. Headers are followed through
 * other headers up to `depth` levels.
 */
export async function affectedUnits(tree: string, touched: readonly string[], database: readonly TranslationUnit[], depth = 8): Promise<Affected> {
  const bySource = new Map(database.map((u) => [u.source, u]));
  const why = new Map<string, string>();
  const uncompiledSources: string[] = [];
  for (const file of touched) {
    if (headerName.test(file)) continue;
    if (bySource.has(file)) why.set(file, 'touched');
    else if (/\.(c|cc|cpp|cxx|C)$/.test(file)) uncompiledSources.push(file);
  }
  const headers = touched.filter((f) => headerName.test(f));
  const reached = new Map<string, string>(); // header name -> the touched header it leads to
  let frontier = headers.map((h) => ({ name: basename(h), origin: h }));
  for (const f of frontier) reached.set(f.name, f.origin);
  for (let level = 0; level < depth && frontier.length > 0; level++) {
    const files = await includers(tree, frontier.map((f) => f.name));
    const next: { name: string; origin: string }[] = [];
    // Which header of the frontier a file includes is not in grep -l's answer: the touched
    // headers this level leads back to are named (a few).
    const origins = [...new Set(frontier.map((f) => f.origin))];
    const originText = origins.slice(0, 3).join(', ') + (origins.length > 3 ? ', …' : '');
    for (const file of files) {
      const origin = origins.length === 1 ? origins[0]! : originText;
      if (bySource.has(file) && !why.has(file)) {
        why.set(file, `includes ${origin}`);
      }
      const name = basename(file);
      if (headerName.test(file) && !reached.has(name)) {
        reached.set(name, origins[0]!);
        next.push({ name, origin: origins[0]! });
      }
    }
    frontier = next;
  }
  const units = [...why.entries()].map(([source, reason]) => ({ unit: bySource.get(source)!, why: reason }));
  const viaHeaders = units.some((u) => u.why !== 'touched');
  return { units, unusedHeaders: viaHeaders ? [] : headers, uncompiledSources };
}
