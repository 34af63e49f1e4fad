/**
 * Benchmark: create-diff-object on a large real object — SQLite's amalgamation (Debian's
 * sqlite3 source, ~243k lines, an ~8.8 MB object with -g) — original vs a one-line patch.
 *
 *   npx tsx kpatch-fork/tests/bench/bench-cdo.ts [--runs N]
 *
 * Prints the median and best wall time of each variant side by side with a baseline that only
 * reads and rewrites the same object (`ld -r`), and their ratio. The sqlite3 source, the
 * amalgamation and the compiled objects are cached under $WFPATCH_CACHE/cdo-bench (keyed by
 * the source hash and flags), so only the first run compiles (several minutes on 2 busy cores).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { cacheRoot, repoRoot } from '../../../pipeline/src/paths.ts';

const cdo = join(repoRoot, 'kpatch-fork/bin/create-diff-object');
const benchDir = join(cacheRoot, 'cdo-bench');
const flags = ['-O2', '-g', '-ffunction-sections', '-fdata-sections', '-fPIC'];
const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 7;

/** the one-line patch: a changed return value in a small exported function */
const patchFrom = 'SQLITE_API int sqlite3_libversion_number(void){ return SQLITE_VERSION_NUMBER; }';
const patchTo = 'SQLITE_API int sqlite3_libversion_number(void){ return SQLITE_VERSION_NUMBER + 1; }';

async function amalgamation(): Promise<string> {
  await mkdir(benchDir, { recursive: true });
  const src = join(benchDir, 'src');
  if (existsSync(src)) {
    for (const d of await readdir(src)) if (existsSync(join(src, d, 'sqlite3.c'))) return join(src, d, 'sqlite3.c');
  }
  console.log('fetching the sqlite3 source package (apt-get source --download-only sqlite3)…');
  await execa('apt-get', ['source', '--download-only', 'sqlite3'], { cwd: benchDir, stdio: 'inherit' });
  const tarball = (await readdir(benchDir)).find((f) => /^sqlite3_[\d.]+\.orig\.tar\.xz$/.test(f));
  if (!tarball) throw new Error('apt-get source sqlite3 gave no orig tarball');
  await rm(src, { recursive: true, force: true });
  await mkdir(src);
  await execa('tar', ['xJf', join(benchDir, tarball), '-C', src]);
  const top = join(src, (await readdir(src))[0]!);
  console.log('building the amalgamation (configure && make sqlite3.c)…');
  await execa('nice', ['-n', '10', './configure'], { cwd: top });
  await execa('nice', ['-n', '10', 'make', '-j2', 'sqlite3.c'], { cwd: top });
  return join(top, 'sqlite3.c');
}

async function objects(source: string): Promise<{ orig: string; patched: string; lines: string; lib: string }> {
  const text = await readFile(source, 'utf8');
  if (!text.includes(patchFrom)) throw new Error(`the patch site is not in ${source}`);
  const key = createHash('sha256').update(text).update(flags.join(' ')).digest('hex').slice(0, 16);
  const dir = join(benchDir, `obj-${key}`);
  const orig = join(dir, 'o/sqlite3.o');
  const patched = join(dir, 'p/sqlite3.o');
  const lines = join(dir, 'l/sqlite3.o');
  const lib = join(dir, 'o/libsqlite3-bench.so');
  if (!existsSync(lib) || !existsSync(lines)) {
    // l: one comment line on top moves every __LINE__ (SQLITE_CORRUPT_BKPT & co.): many functions change
    for (const [sub, body] of [['o', text], ['p', text.replace(patchFrom, patchTo)], ['l', `/* one more line */\n${text}`]] as const) {
      await mkdir(join(dir, sub), { recursive: true });
      await writeFile(join(dir, sub, 'sqlite3.c'), body);
      await execa('cp', [source.replace(/\.c$/, '.h'), join(dir, sub, 'sqlite3.h')]);
    }
    console.log('compiling original and patched sqlite3.c (several minutes, cached afterwards)…');
    for (const sub of ['o', 'p', 'l']) {
      if (!existsSync(join(dir, sub, 'sqlite3.o'))) await execa('nice', ['-n', '10', 'gcc', ...flags, '-c', 'sqlite3.c'], { cwd: join(dir, sub) });
    }
    await execa('gcc', ['-shared', '-Wl,--build-id', '-o', lib, orig, '-lm']);
  }
  return { orig, patched, lines, lib };
}

async function time(cmd: string, args: string[], okCodes: number[]): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = await execa(cmd, args, { reject: false });
    const dt = Number(process.hrtime.bigint() - t0) / 1e6;
    if (!okCodes.includes(r.exitCode ?? -1)) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.exitCode}\n${r.stderr}`);
    out.push(dt);
  }
  return out.sort((a, b) => a - b);
}

const median = (v: number[]): number => v[Math.floor(v.length / 2)]!;

async function main(): Promise<void> {
  await execa('make', ['-C', join(repoRoot, 'kpatch-fork'), 'bin/create-diff-object']);
  const { orig, patched, lines, lib } = await objects(await amalgamation());
  const tmp = join(benchDir, 'run');
  await mkdir(tmp, { recursive: true });
  const size = (await readFile(orig)).length;
  const rows: [string, number[]][] = [
    ['baseline: ld -r of the object (read+write)', await time('ld', ['-r', orig, '-o', join(tmp, 'ldr.o')], [0])],
    ['create-diff-object, one-line patch', await time(cdo, [orig, patched, '--output', join(tmp, 'p.o'), '--verdict', join(tmp, 'v.json')], [0])],
    ['create-diff-object, one-line patch, --binary', await time(cdo, [orig, patched, '--output', join(tmp, 'pb.o'), '--verdict', join(tmp, 'vb.json'), '--binary', lib], [0])],
    ['create-diff-object, identical objects (exit 3)', await time(cdo, [orig, orig, '--output', join(tmp, 'n.o')], [3])],
    ['create-diff-object, a line inserted on top (__LINE__ moves)', await time(cdo, [orig, lines, '--output', join(tmp, 'l.o'), '--verdict', join(tmp, 'vl.json')], [0])],
  ];
  const many = JSON.parse(await readFile(join(tmp, 'vl.json'), 'utf8')) as { changedFunctions: unknown[] };
  const verdict = JSON.parse(await readFile(join(tmp, 'vb.json'), 'utf8')) as { changedFunctions: { name: string }[]; references: unknown[] };
  const base = median(rows[0]![1]);
  console.log(`\nsqlite3.c amalgamation object: ${(size / 1e6).toFixed(1)} MB; ${runs} runs each; changed: ${verdict.changedFunctions.map((f) => f.name).join(', ')}\n`);
  console.log(`(the line-on-top variant changes ${many.changedFunctions.length} functions)\n`);
  console.log('| variant | median ms | best ms | ratio to baseline |');
  console.log('|---|---|---|---|');
  for (const [name, v] of rows) console.log(`| ${name} | ${median(v).toFixed(0)} | ${v[0]!.toFixed(0)} | ${(median(v) / base).toFixed(2)} |`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
