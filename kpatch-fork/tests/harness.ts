/**
 * Test harness for create-diff-object: compiles an original/patched pair of small C or C++
 * sources, optionally links the original into a binary, runs the tool and reads its output
 * with readelf. Used by test/cdo*.test.ts.
 */
import { mkdtemp, mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../../pipeline/src/paths.ts';

export const cdo: string = join(repoRoot, 'kpatch-fork/bin/create-diff-object');

/** How the objects are compiled: position-independent executable, shared-library code, or fixed-address. */
export type CodeModel = 'pie' | 'pic' | 'nopic';

export const cflags = ['-O2', '-g', '-ffunction-sections', '-fdata-sections'] as const;

export interface Sources {
  /** file name (e.g. x.c, sub/y.c) → source text */
  readonly [file: string]: string;
}

export interface CaseSpec {
  /** the original tree */
  readonly orig: Sources;
  /** files that differ in the patched tree (others are copied from orig) */
  readonly patched: Sources;
  /** the object to diff (a key of orig/patched, e.g. 'x.c') */
  readonly file: string;
  readonly model: CodeModel;
  /** link the original objects into a binary and pass --binary */
  readonly link?: boolean;
  /** extra compiler flags */
  readonly flags?: readonly string[];
  /** extra link flags */
  readonly ldflags?: readonly string[];
}

export interface Section { readonly name: string; readonly type: string; readonly flags: string; readonly size: number }
export interface Sym { readonly name: string; readonly type: string; readonly bind: string; readonly ndx: string; readonly size: number }
export interface Reloc { readonly section: string; readonly offset: number; readonly type: string; readonly symbol: string; readonly addend: number }

export interface ElfView {
  readonly sections: readonly Section[];
  readonly symbols: readonly Sym[];
  readonly relocs: readonly Reloc[];
}

export interface CaseResult {
  readonly dir: string;
  readonly exitCode: number;
  readonly stderr: string;
  readonly verdict: Verdict;
  /** the output object, when exit 0 */
  readonly out: ElfView | null;
  readonly outPath: string;
  readonly binary: string | null;
}

export interface VFunction { name: string; origName: string | null; section: string; binding: string; size: number; origSize: number | null; reason: string; record: string | null }
export interface VData { name: string; section: string; binding: string; size: number; reason: string }
export interface VReference { symbol: string; name: string; local: boolean; resolved: boolean | null; how: string | null }
export interface Verdict {
  format: number;
  exitCode: number;
  error: string | null;
  output: string | null;
  file: string | null;
  target: { path: string; buildId: string } | null;
  changedFunctions: VFunction[];
  newFunctions: VFunction[];
  includedFunctions: VFunction[];
  removedFunctions: string[];
  changedData: VData[];
  newData: VData[];
  copiedData: VData[];
  /** --new-data: the new variables the patch defines (FORMAT.md) */
  newDataCarried?: VData[];
  liveWithNewData?: boolean;
  textOnly: boolean;
  textOnlyReasons: string[];
  patchable: boolean;
  patchableReasons: string[];
  reasons: { kind: string; symbol: string | null; what: string }[];
  references: VReference[];
  unresolved: string[];
  notes: string[];
}

function isCxx(file: string): boolean {
  return /\.(cc|cpp|cxx)$/.test(file);
}

function modelFlags(model: CodeModel): string[] {
  return model === 'pie' ? ['-fPIE'] : model === 'pic' ? ['-fPIC'] : ['-fno-pic'];
}

async function writeTree(root: string, files: Sources): Promise<void> {
  for (const [name, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, name)), { recursive: true });
    await writeFile(join(root, name), text);
  }
}

/**
 * Compiles every source of a tree from the source's own directory, as recursive makefiles do:
 * STT_FILE is then the bare file name, so a/u.c and b/u.c both say "u.c" (the sympos case).
 */
async function compileTree(root: string, files: string[], spec: CaseSpec): Promise<void> {
  for (const f of files) {
    if (!/\.(c|cc|cpp|cxx)$/.test(f)) continue;
    const cc = isCxx(f) ? 'g++' : 'gcc';
    const src = basename(f);
    await execa(cc, [...cflags, ...modelFlags(spec.model), ...(spec.flags ?? []), '-I', root, '-c', src, '-o', src.replace(/\.\w+$/, '.o')], {
      cwd: join(root, dirname(f)),
    });
  }
}

async function linkTree(root: string, files: string[], spec: CaseSpec): Promise<string> {
  const objs = files.filter((f) => /\.(c|cc|cpp|cxx)$/.test(f)).map((f) => f.replace(/\.\w+$/, '.o'));
  const cxx = files.some(isCxx);
  const out = spec.model === 'pic' ? 'libcase.so' : 'prog';
  const ldflags = spec.model === 'pic' ? ['-shared'] : spec.model === 'pie' ? ['-pie'] : ['-no-pie'];
  await execa(cxx ? 'g++' : 'gcc', [...ldflags, ...(spec.ldflags ?? []), '-Wl,--build-id', '-o', out, ...objs], { cwd: root });
  return join(root, out);
}

export async function readElf(path: string): Promise<ElfView> {
  const s = await execa('readelf', ['-SW', path]);
  const sections: Section[] = [];
  for (const line of s.stdout.split('\n')) {
    const m = /^\s*\[\s*(\d+)\]\s+(\S*)\s+(\S+)\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([A-Za-z]*)\s+\d+/.exec(line);
    if (m && m[1] !== '0') sections.push({ name: m[2]!, type: m[3]!, size: parseInt(m[4]!, 16), flags: m[5]! });
  }
  const y = await execa('readelf', ['-sW', path]);
  const symbols: Sym[] = [];
  for (const line of y.stdout.split('\n')) {
    const m = /^\s*\d+:\s+[0-9a-f]+\s+(\d+)\s+(\S+)\s+(\S+)\s+\S+\s+(\S+)\s*(.*)$/.exec(line);
    if (m) symbols.push({ size: Number(m[1]), type: m[2]!, bind: m[3]!, ndx: m[4]!, name: m[5]!.trim() });
  }
  const r = await execa('readelf', ['-rW', path]);
  const relocs: Reloc[] = [];
  let current = '';
  for (const line of r.stdout.split('\n')) {
    const h = /^Relocation section '([^']+)'/.exec(line);
    if (h) {
      current = h[1]!.replace(/^\.rela/, '');
      continue;
    }
    const m = /^([0-9a-f]+)\s+[0-9a-f]+\s+(R_X86_64_\w+)\s+[0-9a-f]+\s+(.+?)\s+([+-])\s+([0-9a-f]+)\s*$/.exec(line);
    if (m) relocs.push({ section: current, offset: parseInt(m[1]!, 16), type: m[2]!, symbol: m[3]!, addend: (m[4] === '-' ? -1 : 1) * parseInt(m[5]!, 16) });
  }
  return { sections, symbols, relocs };
}

/** Runs create-diff-object with the given arguments; returns exit code, stderr and the verdict. */
export async function runCdo(args: string[], verdictPath?: string): Promise<{ exitCode: number; stderr: string; verdict: Verdict | null }> {
  const res = await execa(cdo, verdictPath ? [...args, '--verdict', verdictPath] : args, { reject: false });
  let verdict: Verdict | null = null;
  if (verdictPath && existsSync(verdictPath)) verdict = JSON.parse(await readFile(verdictPath, 'utf8')) as Verdict;
  return { exitCode: res.exitCode ?? -1, stderr: res.stderr, verdict };
}

const dirs: string[] = [];

export async function runCase(spec: CaseSpec): Promise<CaseResult> {
  const dir = await mkdtemp(join(tmpdir(), 'cdo-'));
  dirs.push(dir);
  const orig = join(dir, 'orig');
  const patched = join(dir, 'patched');
  const all = { ...spec.orig, ...spec.patched };
  await writeTree(orig, spec.orig);
  await writeTree(patched, all);
  await compileTree(orig, Object.keys(spec.orig), spec);
  await compileTree(patched, Object.keys(all), spec);
  const binary = spec.link ? await linkTree(orig, Object.keys(spec.orig), spec) : null;
  const obj = spec.file.replace(/\.\w+$/, '.o');
  const outPath = join(dir, 'patch.o');
  const verdictPath = join(dir, 'verdict.json');
  const args = [join(orig, obj), join(patched, obj), '--output', outPath, ...(binary ? ['--binary', binary] : [])];
  const res = await runCdo(args, verdictPath);
  if (!res.verdict) throw new Error(`no verdict written (exit ${res.exitCode}): ${res.stderr}`);
  const out = res.exitCode === 0 ? await readElf(outPath) : null;
  return { dir, exitCode: res.exitCode, stderr: res.stderr, verdict: res.verdict, out, outPath, binary };
}

export async function cleanup(): Promise<void> {
  if (process.env.CDO_KEEP) return;
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
}

/** Names in a verdict function list. */
export function names(list: readonly { name: string }[]): string[] {
  return list.map((f) => f.name).sort();
}

/** Relocations in the output that apply to section `sec`. */
export function relocsOf(out: ElfView, sec: string): Reloc[] {
  return out.relocs.filter((r) => r.section === sec);
}

export function undefinedSyms(out: ElfView): string[] {
  return out.symbols.filter((s) => s.ndx === 'UND' && s.name).map((s) => s.name).sort();
}

export function definedSym(out: ElfView, name: string): Sym | undefined {
  return out.symbols.find((s) => s.name === name && s.ndx !== 'UND' && s.type !== 'SECTION');
}
