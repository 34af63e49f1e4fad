/**
 * A package's compile database: one entry per translation unit, with the compiler call that
 * builds it. Read from CMake's compile_commands.json, from `make -n` output (gyp's Makefiles)
 * or from the compiler wrapper's build log, then normalised so the compile-only corpus mode can
 * rebuild exactly the units a patch touches, in any copy of the configured tree.
 */
import { isAbsolute, join, normalize, relative } from 'node:path';
import type { BuildLogEntry } from '../../wrapper/index.ts';

/** A compiler call as a build system states it (paths may be relative to `directory`). */
export interface RawCommand {
  /** Absolute directory the compiler runs in. */
  readonly directory: string;
  /** argv, compiler first. */
  readonly arguments: readonly string[];
  /** The source file (absolute or relative to `directory`). */
  readonly file: string;
}

/** One translation unit, normalised. */
export interface TranslationUnit {
  /** Absolute directory the compiler runs in. */
  readonly directory: string;
  readonly compiler: string;
  /** Arguments without the compiler, the output (-o) and dependency-file options; ends with the source. */
  readonly args: readonly string[];
  /** The source, relative to the tree root. */
  readonly source: string;
}

/**
 * Splits a shell command line into words: single and double quotes and backslash escapes, as
 * CMake and gyp write them. Not a shell: no expansion, no operators (a command with any is
 * not a plain compiler call and is dropped by the callers).
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in: ${line.slice(0, 120)}`);
      word += line.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      i++;
      for (; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) i++;
        word += line[i];
      }
      if (i >= line.length) throw new Error(`unterminated " in: ${line.slice(0, 120)}`);
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (c === ' ' || c === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

const compilerName = /(^|\/)((x86_64-linux-gnu-)?(gcc|g\+\+|cc|c\+\+)(-\d+)?)$/;
const sourceName = /\.(c|cc|cpp|cxx|C)$/;
/** Options whose value is the next word and that name an output, not an input. */
const outputOptions = new Set(['-o', '-MF', '-MT', '-MQ']);
const droppedFlags = new Set(['-MD', '-MMD', '-MP']);

/**
 * The translation unit of a compiler call, or null when the call is not one (a link, a
 * preprocessor run, assembly). The tree root makes the source tree-relative; calls outside
 * the tree (a configure test in /tmp) are dropped too.
 */
export function toTranslationUnit(cmd: RawCommand, root: string): TranslationUnit | null {
  const [compiler, ...rest] = cmd.arguments;
  if (compiler === undefined || !compilerName.test(compiler) || !rest.includes('-c')) return null;
  const file = isAbsolute(cmd.file) ? cmd.file : join(cmd.directory, cmd.file);
  const source = relative(root, normalize(file));
  if (source.startsWith('..') || !sourceName.test(source)) return null;
  const args: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (outputOptions.has(a)) {
      i++;
      continue;
    }
    if (droppedFlags.has(a) || a.startsWith('-flto') || a === '-fuse-linker-plugin' || a === '-ffat-lto-objects') continue;
    if (/^-M[FTQ]./.test(a) || /^-o./.test(a)) continue;
    args.push(a);
  }
  // create-diff-object compares one function and one data object per section.
  for (const flag of ['-ffunction-sections', '-fdata-sections']) if (!args.includes(flag)) args.push(flag);
  return { directory: cmd.directory, compiler, args, source };
}

/**
 * CMake's compile_commands.json ("command" strings or "arguments" arrays). `every`: each
 * compiler call, a source compiled for several targets once per target (configure-unit.ts
 * compares them all); else one per source.
 */
export function fromCompileCommands(json: string, root: string, every = false): TranslationUnit[] {
  const entries = JSON.parse(json) as { directory: string; command?: string; arguments?: string[]; file: string }[];
  if (!Array.isArray(entries)) throw new Error('compile_commands.json: not an array');
  const units = entries.map((e) => toTranslationUnit({ directory: e.directory, arguments: e.arguments ?? splitWords(e.command ?? ''), file: e.file }, root));
  return every ? units.filter((u): u is TranslationUnit => u !== null) : unique(units);
}

/**
 * `make -n` output: each line that is a plain compiler call with -c (gyp prints them with a
 * leading `printf` echo line, which is not a compiler call and is skipped). `directory` is
 * where make runs the recipes.
 */
export function fromMakeDryRun(text: string, directory: string, root: string, every = false): TranslationUnit[] {
  const units: (TranslationUnit | null)[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!/^\S*(gcc|g\+\+|cc|c\+\+)(-\d+)?\s/.test(line) || /[;&|<>`$]/.test(line.replace(/'[^']*'/g, ''))) continue;
    let words: string[];
    try {
      words = splitWords(line);
    } catch {
      continue;
    }
    const file = words.slice(1).reverse().find((w, i, all) => sourceName.test(w) && !outputOptions.has(all[i + 1] ?? ''));
    if (file) units.push(toTranslationUnit({ directory, arguments: words, file }, root));
  }
  return every ? units.filter((u): u is TranslationUnit => u !== null) : unique(units);
}

/** The compiler wrapper's build log (pipeline/src/wrapper): compile entries, tree-relative. */
export function fromBuildLog(log: readonly BuildLogEntry[], root: string): TranslationUnit[] {
  return unique(
    log.flatMap((e) =>
      e.kind === 'compile' && e.sources.length === 1
        ? [toTranslationUnit({ directory: join(root, e.cwd), arguments: [e.tool, ...e.args], file: join(root, e.sources[0]!) }, root)]
        : [],
    ),
  );
}

/** One unit per source (a source compiled twice — PIC and not — keeps its first call). */
export function unique(units: readonly (TranslationUnit | null)[]): TranslationUnit[] {
  const bySource = new Map<string, TranslationUnit>();
  for (const u of units) if (u && !bySource.has(u.source)) bySource.set(u.source, u);
  return [...bySource.values()];
}

/** The same unit in a copy of the tree: every occurrence of the old root becomes the new one. */
export function rebase(unit: TranslationUnit, from: string, to: string): TranslationUnit {
  const swap = (s: string) => s.split(from).join(to);
  return { ...unit, directory: swap(unit.directory), args: unit.args.map(swap) };
}
