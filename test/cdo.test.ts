/**
 * create-diff-object: the C cases. Each test compiles a small original/patched pair with
 * -O2 -g -ffunction-sections -fdata-sections (as -fPIE and as -fPIC), runs the tool and checks
 * exit code, verdict and the patch object (readelf).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { repoRoot } from '../pipeline/src/paths.ts';
import { cleanup, definedSym, names, readElf, relocsOf, runCase, undefinedSyms, type CodeModel } from '../kpatch-fork/tests/harness.ts';

beforeAll(async () => {
  await execa('make', ['-C', `${repoRoot}/kpatch-fork`, 'bin/create-diff-object']);
});
afterAll(cleanup);

const models: CodeModel[] = ['pie', 'pic'];

const base = `#include <stdio.h>
int glob = 3;
static int counter;
int __attribute__((noinline)) util(int x) { return x * 2 + glob; }
static int __attribute__((noinline)) helper(int x) { counter++; return x * 3 + counter; }
int f(int x) { return helper(x) + util(x) + glob; }
int g(int x) { return printf("g %d\\n", x); }
`;

describe.each(models)('create-diff-object, C, -f%s', (model) => {
  it('anonymous pointer constants in .data.rel.ro.local (GCC\'s vectorised local arrays) come along with their user', async () => {
    // samba's dirsync_ldb_search loads a string pointer for a local attrs[] from such a
    // section: no symbol, writable only until relocated. The same shape, written directly:
    const anon = `__asm__(".section .rodata.attrs.str1.1,\\"aMS\\",@progbits,1\\n.Lstr0: .string \\"objectGUID\\"\\n"
        ".section .data.rel.ro.local,\\"aw\\"\\n.balign 8\\n.Lattr0: .quad .Lstr0\\n.quad 0\\n.previous\\n");
const char *first(int n) { const char *p; __asm__("movq .Lattr0(%%rip), %0" : "=r"(p)); return n ? p : 0; }
int other(int x) { return x + 1; }
`;
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': anon }, patched: { 'x.c': anon.replace('return n ? p : 0', 'return n > 1 ? p : 0') } });
    expect(r.exitCode, JSON.stringify(r.verdict.reasons)).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['first']);
    expect(relocsOf(r.out!, '.text.first').some((x) => x.symbol.startsWith('.data.rel.ro.local'))).toBe(true);
  });

  it('changed function: only it is replaced, with a record and unwind info', async () => {
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': base }, patched: { 'x.c': base.replace('helper(x) + util(x)', 'helper(x) - util(x)') } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['f']);
    expect(r.verdict.newFunctions).toEqual([]);
    expect(r.verdict.changedFunctions[0]!.record).toBe('f');
    const out = r.out!;
    // the new f is local (the undefined f names the old one)
    expect(definedSym(out, 'f')).toMatchObject({ type: 'FUNC', bind: 'LOCAL' });
    expect(undefinedSyms(out)).toContain('f');
    const recs = relocsOf(out, '.wfpatch.funcs');
    expect(recs.map((x) => [x.offset, x.type, x.symbol])).toEqual([
      [0, 'R_X86_64_64', 'f'],
      [8, 'R_X86_64_64', 'f'],
    ]);
    expect(out.sections.find((s) => s.name === '.wfpatch.funcs')).toMatchObject({ size: 32 });
    expect(out.sections.map((s) => s.name)).not.toContain('.text.g');
    // unwinding: an FDE for the new f
    expect(relocsOf(out, '.eh_frame').map((x) => x.symbol)).toEqual(['.text.f']);
    // unchanged callees are load-time references: global by name, static by __wfsym
    expect(undefinedSyms(out)).toEqual(expect.arrayContaining(['util', 'glob', '__wfsym:1:helper:x.c']));
  });

  it('new function called by a changed one is included without a record', async () => {
    const patched = base.replace('int f(int x) { return helper(x) + util(x) + glob; }',
      'int __attribute__((noinline)) added(int x) { return x ^ glob; }\nint f(int x) { return helper(x) + added(x) + glob; }');
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': base }, patched: { 'x.c': patched } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['f']);
    expect(names(r.verdict.newFunctions)).toEqual(['added']);
    expect(r.verdict.newFunctions[0]!.record).toBeNull();
    expect(definedSym(r.out!, 'added')).toMatchObject({ bind: 'GLOBAL' });
    expect(relocsOf(r.out!, '.wfpatch.funcs')).toHaveLength(2);
    expect(relocsOf(r.out!, '.text.f').some((x) => x.symbol === 'added')).toBe(true);
  });

  it('new static function called by a changed one', async () => {
    const patched = base.replace('int f(int x) { return helper(x) + util(x) + glob; }',
      'static int __attribute__((noinline)) fresh(int x) { return x ^ (glob << 2); }\nint f(int x) { return helper(x) + fresh(x) + glob; }');
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': base }, patched: { 'x.c': patched } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.newFunctions)).toEqual(['fresh']);
    expect(definedSym(r.out!, 'fresh')).toMatchObject({ type: 'FUNC', bind: 'LOCAL' });
    expect(undefinedSyms(r.out!)).not.toContain('fresh');
  });

  it('changed static function: the record names it by __wfsym with file and position', async () => {
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': base }, patched: { 'x.c': base.replace('x * 3 + counter', 'x * 5 + counter') } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['helper']);
    expect(r.verdict.changedFunctions[0]!.record).toBe('__wfsym:1:helper:x.c');
    expect(undefinedSyms(r.out!)).toEqual(['__wfsym:1:counter:x.c', '__wfsym:1:helper:x.c']);
  });

  it('two statics of the same name in two files of one binary: sympos from the binary', async () => {
    const u = (k: number): string => `static int __attribute__((noinline)) helper(int x) { return x * ${k}; }
static int seen;
int entry${k}(int x) { seen += x; return helper(x) + seen; }
`;
    const main = 'int entry3(int), entry7(int);\nint main(int c, char **v) { (void)v; return entry3(c) + entry7(c); }\n';
    const r = await runCase({
      model,
      link: true,
      file: 'b/u.c',
      orig: { 'a/u.c': u(3), 'b/u.c': u(7), 'main.c': main },
      patched: { 'b/u.c': u(7).replace('x * 7', 'x * 7 + 1').replace('seen += x', 'seen += x + 1') },
    });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['entry7', 'helper']);
    const helper = r.verdict.changedFunctions.find((f) => f.name === 'helper')!;
    // a/u.c comes first in .symtab, so b/u.c's helper is the second "helper" in files named u.c
    expect(helper.record).toBe('__wfsym:2:helper:u.c');
    expect(undefinedSyms(r.out!)).toContain('__wfsym:2:seen:u.c');
    expect(r.verdict.unresolved).toEqual([]);
    expect(r.verdict.references.every((x) => x.resolved === true)).toBe(true);
  });

  it('static locals: the patch uses the original variable even when GCC renumbers it', async () => {
    const orig = `#include <stdio.h>
int second(int x) { static int count; count += x; return count; }
int first(int x) { return x + 1; }
`;
    // GCC numbers from the end of the file: __func__ in first() takes count's number, count.0 becomes count.1
    const patched = orig.replace('int first(int x) { return x + 1; }', 'int first(int x) { printf("%s\\n", __func__); return x + 1; }')
      .replace('count += x;', 'count += 2 * x;');
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': orig }, patched: { 'x.c': patched } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['first', 'second']);
    expect(r.verdict.newData).toEqual([]);
    const und = undefinedSyms(r.out!);
    expect(und).toContain('__wfsym:1:count.0:x.c');
    expect(und.some((n) => n.includes('count.1'))).toBe(false);
    expect(r.out!.symbols.some((s) => s.name.startsWith('count') && s.ndx !== 'UND')).toBe(false);
  });

  it('static locals of one name in two functions stay apart when renumbered', async () => {
    const orig = `#include <stdio.h>
int first(int x) { return x + 100; }
int f(int x) { static int count; count += x; return count; }
int g(int x) { static int count; count -= x; return count * 2; }
`;
    // GCC numbers static locals from the end of the file: a new one after g() renumbers both counts
    const patched = `${orig.replace('count -= x;', 'count -= 2 * x;')}int last(int x) { static int seen_last; seen_last += x; return seen_last; }\n`;
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': orig }, patched: { 'x.c': patched } });
    // last() brings a new static: not text-only, but g's count must still be g's original count
    expect(r.exitCode).toBe(4);
    expect(r.verdict.newData.map((d) => d.name)).toEqual([expect.stringMatching(/^seen_last\.\d+$/)]);
    const origElf = await readElf(`${r.dir}/orig/x.o`);
    const gCount = origElf.relocs.find((x) => x.section === '.text.g' && x.symbol.startsWith('.bss.count'))!.symbol.replace('.bss.', '');
    const refs = r.verdict.references.map((x) => x.symbol);
    expect(refs).toContain(`__wfsym:1:${gCount}:x.c`);
    expect(r.verdict.changedData).toEqual([]);
  });

  it('string literals and __func__ travel with the new code', async () => {
    const orig = `#include <stdio.h>
void hello(const char *w) { printf("hello, %s\\n", w); }
void other(void) { puts("other"); }
`;
    const patched = orig.replace('printf("hello, %s\\n", w);', 'printf("%s: greetings, %s!\\n", __func__, w);');
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': orig }, patched: { 'x.c': patched } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['hello']);
    const secs = r.out!.sections.map((s) => s.name);
    const strSec = r.out!.sections.find((s) => /^\.rodata\..*str1\.1$/.test(s.name));
    expect(strSec?.flags).toContain('MS');
    expect(secs.some((n) => n.startsWith('.rodata.__func__'))).toBe(true);
    expect(definedSym(r.out!, r.out!.symbols.find((s) => s.name.startsWith('__func__'))!.name)).toMatchObject({ type: 'OBJECT', bind: 'LOCAL' });
    const { stdout } = await execa('readelf', ['-p', strSec!.name, r.outPath]);
    expect(stdout).toContain('%s: greetings, %s!');
    expect(secs).not.toContain('.text.other');
  });

  it('moved literals: an unchanged user of a shifted string is not a change', async () => {
    const orig = `#include <stdio.h>
void a(void) { puts("alpha"); puts("shared literal"); }
void b(void) { puts("shared literal"); }
`;
    const patched = orig.replace('puts("alpha");', 'puts("alpha, longer now");');
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': orig }, patched: { 'x.c': patched } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['a']);
  });

  it('switch jump tables are copied with relocations back into the new code', async () => {
    const orig = `extern int a(int), b(int), c(int), d(int), e(int);
int sw(int x) {
  switch (x) { case 0: return a(x); case 1: return b(x) + 1; case 2: return c(x); case 3: return d(x) * 3; case 4: return e(x) + 123; case 5: return a(x + 9); case 6: return b(x - 2); default: return -1; }
}
`;
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': orig }, patched: { 'x.c': orig.replace('+ 123', '+ 124') } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['sw']);
    const table = relocsOf(r.out!, '.rodata.sw');
    expect(table.length).toBeGreaterThanOrEqual(7);
    expect(table.every((x) => x.symbol === '.text.sw' && x.type === 'R_X86_64_PC32')).toBe(true);
    expect(relocsOf(r.out!, '.text.sw').some((x) => x.symbol === '.rodata.sw')).toBe(true);
  });

  it('switch-conversion tables (CSWTCH) and float constants are compared by value and copied', async () => {
    const orig = `double scale(double x) { return x * 1.25 + 0.5; }
double keep(double x) { return x * 2.75; }
int lut(unsigned x) { switch (x) { case 0: return 10; case 1: return 25; case 2: return 31; case 3: return 47; case 4: return 59; case 5: return 61; default: return 0; } }
int lut2(unsigned x) { switch (x) { case 0: return 7; case 1: return 3; case 2: return 9; case 3: return 1; case 4: return 8; default: return -1; } }
`;
    const patched = orig.replace('x * 1.25 + 0.5', 'x - 0.5').replace('case 3: return 47;', 'case 3: return 48;');
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': orig }, patched: { 'x.c': patched } });
    expect(r.exitCode).toBe(0);
    // a new table value or constant changes only the function that uses it
    expect(names(r.verdict.changedFunctions)).toEqual(['lut', 'scale']);
    const secs = r.out!.sections.map((s) => s.name);
    expect(secs.some((n) => n.includes('CSWTCH'))).toBe(true);
    expect(secs.some((n) => n.startsWith('.rodata.cst'))).toBe(true);
    expect(undefinedSyms(r.out!).filter((n) => n.includes('CSWTCH'))).toEqual([]);
  });

  it('libc calls go through PLT32 to plain undefined symbols', async () => {
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': base }, patched: { 'x.c': base.replace('"g %d\\n"', '"g = %d\\n"') } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['g']);
    expect(relocsOf(r.out!, '.text.g').find((x) => x.symbol === 'printf')?.type).toBe('R_X86_64_PLT32');
    expect(r.out!.symbols.find((s) => s.name === 'printf')).toMatchObject({ ndx: 'UND', bind: 'GLOBAL' });
  });

  it('a changed inline function in a header changes all its callers', async () => {
    const h = 'static inline int clamp(int v) { return v < 0 ? 0 : v > 100 ? 100 : v; }\n';
    const x = `#include "h.h"
int one(int v) { return clamp(v) + 1; }
int two(int v) { return clamp(v * 2) * 3; }
int three(int v) { return v - 1; }
`;
    const r = await runCase({ model, file: 'x.c', orig: { 'h.h': h, 'x.c': x }, patched: { 'h.h': h.replace('v > 100 ? 100', 'v > 99 ? 99') } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['one', 'two']);
  });

  it('comments and blank lines only: nothing to patch (exit 3), no output', async () => {
    const orig = `#include <stdio.h>
#include <string.h>
static int table[4] = { 1, 2, 3, 4 };
int lookup(int i) { return table[i & 3]; }
int say(const char *s) { return printf("%s %zu\\n", s, strlen(s)); }
int sw(int x) { switch (x) { case 0: return 3; case 1: return 9; case 2: return 27; case 3: return lookup(x); case 4: return say("four"); default: return 0; } }
`;
    const patched = `/* a new comment
   spanning lines */

${orig.replace('int lookup', '\n\n// explain lookup\nint lookup')}`;
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': orig }, patched: { 'x.c': patched } });
    expect(r.exitCode).toBe(3);
    expect(r.verdict.changedFunctions).toEqual([]);
    expect(r.verdict.newFunctions).toEqual([]);
    expect(r.verdict.includedFunctions).toEqual([]);
    expect(r.verdict.output).toBeNull();
  });

  it('lines moved above assert(): only __LINE__ changed, nothing to patch; a real change still counts', async () => {
    const orig = `#include <assert.h>
#include <stdio.h>
int checked(int x) { assert(x >= 0); assert(x < 1000); return x * 2; }
int other(int x) { assert(x != 7); return printf("%d\\n", x); }
`;
    const moved = orig.replace('#include <stdio.h>', '#include <stdio.h>\n/* three\n   more\n   lines */');
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': orig }, patched: { 'x.c': moved } });
    expect(r.exitCode).toBe(3);
    expect(r.verdict.notes.join('\n')).toMatch(/only assert\(\) line numbers changed/);
    const real = await runCase({ model, file: 'x.c', orig: { 'x.c': orig }, patched: { 'x.c': moved.replace('return x * 2;', 'return x * 3;') } });
    expect(real.exitCode).toBe(0);
    expect(names(real.verdict.changedFunctions)).toEqual(['checked']);
  });

  it('data: a changed initializer is not text-only (exit 4, symbol named)', async () => {
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': base }, patched: { 'x.c': base.replace('int glob = 3;', 'int glob = 4;') } });
    expect(r.exitCode).toBe(4);
    expect(r.verdict.textOnly).toBe(false);
    expect(r.verdict.changedData.map((d) => d.name)).toEqual(['glob']);
    expect(r.verdict.changedData[0]!.reason).toMatch(/initializer/);
    expect(r.verdict.reasons.find((x) => x.kind === 'data')?.symbol).toBe('glob');
    expect(r.stderr).toContain('glob');
  });

  it('a changed constructor function already ran: not text-only', async () => {
    const c = `${base}static void __attribute__((constructor)) setup(void) { glob = 5; }\n`;
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': c }, patched: { 'x.c': c.replace('glob = 5', 'glob = 6') } });
    expect(r.exitCode).toBe(4);
    expect(r.verdict.reasons[0]).toMatchObject({ kind: 'data', symbol: 'setup' });
  });

  it('a changed static const table: its users are replaced and get a copy (not a data change)', async () => {
    const t = `static const int primes[] = { 2, 3, 5, 7, 11, 13 };
int nth_prime(int i) { return primes[i % 6]; }
int sum_primes(void) { int s = 0; for (int i = 0; i < 6; i++) s += primes[i]; return s; }
int unrelated(int x) { return x + 1; }
`;
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': t }, patched: { 'x.c': t.replace('11, 13', '11, 17') } });
    expect(r.exitCode).toBe(0);
    expect(r.verdict.textOnly).toBe(true);
    // sum_primes is folded to a constant by GCC: it changes too
    expect(names(r.verdict.changedFunctions)).toEqual(['nth_prime', 'sum_primes']);
    expect(r.verdict.copiedData.map((d) => d.name)).toEqual(['primes']);
    expect(definedSym(r.out!, 'primes')).toMatchObject({ type: 'OBJECT', bind: 'LOCAL' });
    expect(undefinedSyms(r.out!)).not.toContain('__wfsym:1:primes:x.c');
    expect(relocsOf(r.out!, '.text.nth_prime').map((x) => x.symbol)).toEqual(['.rodata.primes']);
  });

  it('a changed constant: its only user is compared by value; a changed global behind a const pointer is data', async () => {
    const t = `static const int table[] = { 1, 2, 3 };
const int *get_table(void) { return table; }
`;
    // the function's code is the same (a pointer to the table); only the table differs: its
    // user is compared by value, so it is replaced and gets the copy
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': t }, patched: { 'x.c': t.replace('1, 2, 3', '1, 2, 4') } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['get_table']);
    const g = 'int counter_base = 5;\nstatic const int *const ptr = &counter_base;\nint *unused;\n';
    const w = await runCase({ model, file: 'x.c', orig: { 'x.c': g }, patched: { 'x.c': g.replace('counter_base = 5', 'counter_base = 6') } });
    expect(w.exitCode).toBe(4);
  });

  it('data: a new global is not text-only', async () => {
    const patched = base.replace('int glob = 3;', 'int glob = 3;\nint added_counter;').replace('return x * 2 + glob;', 'added_counter++; return x * 2 + glob;');
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': base }, patched: { 'x.c': patched } });
    expect(r.exitCode).toBe(4);
    expect(r.verdict.newData.map((d) => d.name)).toEqual(['added_counter']);
    expect(r.verdict.changedFunctions.map((f) => f.name)).toEqual(['util']);
  });

  it('data: a global whose size changes (struct layout) is named with both sizes', async () => {
    const orig = 'struct conf { int a; int b; };\nstruct conf settings = { 1, 2 };\nint get(void) { return settings.b; }\n';
    const patched = 'struct conf { int a; long extra; int b; };\nstruct conf settings = { 1, 0, 2 };\nint get(void) { return settings.b; }\n';
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': orig }, patched: { 'x.c': patched } });
    expect(r.exitCode).toBe(4);
    expect(r.verdict.changedData).toEqual([expect.objectContaining({ name: 'settings', reason: 'size changed from 8 to 24 bytes' })]);
  });
});

const scaleSrc = `static int scale(const int *v, int n, int k) {
  int s = 0;
  for (int i = 0; i < n; i++) { s += v[i] / k + v[i] % k; if (s > 1000 * k) s -= v[i] * k; s ^= (s >> 3) * k; }
  for (int i = 0; i < n; i += 2) s += v[i] / (k + 1);
  return s;
}
int p5(const int *v, int n) { return scale(v, n, 5) + scale(v + 1, n - 1, 5); }
int p7(const int *v, int n) { return scale(v, n, 7) + scale(v, n / 2, 7) + 1; }
int p9(const int *v, int n) { return scale(v, n, 9) + scale(v, n / 3, 9) + 2; }
`;

const coldSrc = `#include <stdio.h>
extern int g;
static void __attribute__((noinline, cold)) complain(int v, int i) { fprintf(stderr, "bad %d at %d\\n", v, i); }
int api4(int *v, int n) {
  int s = 0;
  for (int i = 0; i < n; i++) {
    if (v[i] < 0) { complain(v[i], i); g++; continue; }
    s += v[i] * g;
  }
  return s;
}
static int split(int x) {
  if (__builtin_expect(x > 0, 1)) return x;
  for (int i = 0; i < x * 3; i++) { printf("neg %d %d\\n", i, x); fflush(stdout); printf("more %d\\n", i); g += i; printf("again %d %d\\n", g, x); }
  return -x;
}
int api3(int x) { return split(x) + split(x + 1); }
int api5(int x) { return split(x * 2) + split(x - 1); }
struct big { int a, b, c, d; char pad[64]; };
static int __attribute__((noinline)) use_b(struct big *p) { return p->b * 7 + g; }
int api1(struct big *p) { return use_b(p) + 3; }
`;

describe.each(models)('create-diff-object, GCC clones and splits, -f%s', (model) => {
  it('.constprop clones renumbered by the patch bind to the original clone', async () => {
    // dropping p9's clone renumbers the others: p7's clone is .1 in the original, .0 after
    const patched = scaleSrc.replace('return scale(v, n, 9) + scale(v, n / 3, 9) + 2;', 'return n * 13;').replace('scale(v, n / 2, 7) + 1', 'scale(v, n / 2, 7) + 3');
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': scaleSrc }, patched: { 'x.c': patched }, flags: ['-fipa-cp-clone'] });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['p7', 'p9']);
    expect(r.verdict.newFunctions).toEqual([]);
    const und = undefinedSyms(r.out!).filter((n) => n.includes('scale'));
    expect(und).toEqual(['__wfsym:1:scale.constprop.1:x.c']);
    // p9's clone is gone from the patched build
    expect(r.verdict.removedFunctions).toEqual(['scale.constprop.0']);
  });

  it('.cold: a changed function brings its cold part, without a record for it', async () => {
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': coldSrc }, patched: { 'x.c': coldSrc.replace('s += v[i] * g;', 's += v[i] * g + 1;') } });
    expect(r.exitCode).toBe(0);
    // the cold part usually changes too (its jumps back into api4 move); either way it comes along
    const all = [...r.verdict.changedFunctions, ...r.verdict.includedFunctions];
    expect(names(all)).toEqual(['api4', 'api4.cold']);
    expect(all.find((f) => f.name === 'api4.cold')!.record).toBeNull();
    expect(r.out!.sections.map((s) => s.name)).toEqual(expect.arrayContaining(['.text.api4', '.text.unlikely.api4']));
    expect(relocsOf(r.out!, '.wfpatch.funcs').filter((x) => x.offset % 32 === 0).map((x) => x.symbol)).toEqual(['api4']);
    // the cold part jumps back into the new body, not the old one
    expect(relocsOf(r.out!, '.text.unlikely.api4').some((x) => x.symbol === '.text.api4')).toBe(true);
  });

  it('.cold: a change only in the cold part replaces its function', async () => {
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': coldSrc }, patched: { 'x.c': coldSrc.replace('complain(v[i], i); g++;', 'complain(v[i], i); g += 2;') } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['api4.cold']);
    expect(r.verdict.includedFunctions).toEqual([expect.objectContaining({ name: 'api4', reason: 'its .cold part changed', record: 'api4' })]);
  });

  it('.part: a change in the split-off slow path replaces only the part', async () => {
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': coldSrc }, patched: { 'x.c': coldSrc.replace('g += i;', 'g += 2 * i;') } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['split.part.0']);
    expect(r.verdict.changedFunctions[0]!.record).toBe('__wfsym:1:split.part.0:x.c');
  });

  it('.isra: a changed caller refers to the original clone', async () => {
    const r = await runCase({ model, file: 'x.c', orig: { 'x.c': coldSrc }, patched: { 'x.c': coldSrc.replace('use_b(p) + 3', 'use_b(p) + 4') } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['api1']);
    expect(undefinedSyms(r.out!)).toContain('__wfsym:1:use_b.isra.0:x.c');
  });
});

describe('create-diff-object, relocation types', () => {
  const src = `#include <stdio.h>
int table[16] = { 1, 2, 3 };
extern int a(int), b(int), c(int), d(int), e(int);
int pick(int i) { return table[i & 15]; }
int say(int x) { return printf("value %d\\n", x); }
int sw(int x) {
  switch (x) { case 0: return a(x); case 1: return b(x) + 1; case 2: return c(x); case 3: return d(x) * 3; case 4: return e(x) + 123; case 5: return a(x + 9); case 6: return b(x - 2); default: return -1; }
}
`;
  const patched = src.replace('table[i & 15]', 'table[i & 7]').replace('"value %d', '"value: %d').replace('+ 123', '+ 124');

  it('fixed-address code: R_X86_64_32, 32S and 64 (jump table entries)', async () => {
    const r = await runCase({ model: 'nopic', link: true, file: 'x.c', orig: { 'x.c': src, 'main.c': 'int a(int x){return x;} int b(int x){return x;} int c(int x){return x;} int d(int x){return x;} int e(int x){return x;}\nint sw(int);\nint main(void){return sw(0);}\n' }, patched: { 'x.c': patched } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['pick', 'say', 'sw']);
    const types = new Set(r.out!.relocs.map((x) => x.type));
    for (const t of ['R_X86_64_32', 'R_X86_64_32S', 'R_X86_64_64', 'R_X86_64_PLT32']) expect(types).toContain(t);
    expect(relocsOf(r.out!, '.text.pick').find((x) => x.symbol === 'table')?.type).toBe('R_X86_64_32S');
    expect(relocsOf(r.out!, '.rodata.sw').every((x) => x.type === 'R_X86_64_64' && x.symbol === '.text.sw')).toBe(true);
    expect(r.verdict.references.every((x) => x.resolved)).toBe(true);
  });

  it('PIC: PC32, PLT32, REX_GOTPCRELX; -fno-plt: GOTPCRELX', async () => {
    const r = await runCase({ model: 'pic', file: 'x.c', orig: { 'x.c': src }, patched: { 'x.c': patched }, flags: ['-fno-plt'] });
    expect(r.exitCode).toBe(0);
    const types = new Set(r.out!.relocs.map((x) => x.type));
    for (const t of ['R_X86_64_PC32', 'R_X86_64_GOTPCRELX', 'R_X86_64_REX_GOTPCRELX']) expect(types).toContain(t);
    expect(relocsOf(r.out!, '.text.say').find((x) => x.symbol === 'printf')?.type).toBe('R_X86_64_GOTPCRELX');
    expect(relocsOf(r.out!, '.text.pick').find((x) => x.symbol === 'table')?.type).toBe('R_X86_64_REX_GOTPCRELX');
    const plt = await runCase({ model: 'pic', file: 'x.c', orig: { 'x.c': src }, patched: { 'x.c': patched } });
    expect(relocsOf(plt.out!, '.text.say').find((x) => x.symbol === 'printf')?.type).toBe('R_X86_64_PLT32');
  });

  it('unrelaxable GOTPCREL (assembler relaxation off)', async () => {
    const r = await runCase({ model: 'pic', file: 'x.c', orig: { 'x.c': src }, patched: { 'x.c': patched }, flags: ['-Wa,-mrelax-relocations=no'] });
    expect(r.exitCode).toBe(0);
    expect(relocsOf(r.out!, '.text.pick').find((x) => x.symbol === 'table')?.type).toBe('R_X86_64_GOTPCREL');
  });
});

describe('create-diff-object --binary', () => {
  const lib = `#include <stdio.h>
static int hits;
static int __attribute__((noinline)) bump(int x) { hits += x; return hits; }
int api(int x) { return bump(x) + printf("api %d\\n", x); }
`;
  const main = 'int api(int);\nint main(int c, char **v) { (void)v; return api(c); }\n';

  it('records the build-id and checks every reference', async () => {
    const r = await runCase({ model: 'pie', link: true, file: 'x.c', orig: { 'x.c': lib, 'main.c': main }, patched: { 'x.c': lib.replace('"api %d', '"api(%d)') } });
    expect(r.exitCode).toBe(0);
    const { stdout } = await execa('readelf', ['-n', r.binary!]);
    const id = /Build ID: ([0-9a-f]+)/.exec(stdout)![1]!;
    expect(r.verdict.target?.buildId).toBe(id);
    const target = await execa('readelf', ['-p', '.wfpatch.target', r.outPath]);
    expect(target.stdout).toContain(`build-id=${id}`);
    const refs = Object.fromEntries(r.verdict.references.map((x) => [x.symbol, x]));
    expect(refs['__wfsym:1:bump:x.c']).toMatchObject({ local: true, resolved: true });
    expect(refs['printf']).toMatchObject({ resolved: true });
    expect(refs['printf']!.how).toMatch(/shared library/);
    expect(refs['api']).toMatchObject({ resolved: true, how: 'defined in the binary' });
  });

  it('names references that do not resolve in the binary (exit 5)', async () => {
    const patched = `extern int nowhere_to_be_found(int);\n${lib.replace('return bump(x) +', 'return bump(x) + nowhere_to_be_found(x) +')}`;
    const r = await runCase({ model: 'pie', link: true, file: 'x.c', orig: { 'x.c': lib, 'main.c': main }, patched: { 'x.c': patched } });
    expect(r.exitCode).toBe(5);
    expect(r.verdict.patchable).toBe(false);
    expect(r.verdict.unresolved).toEqual(['nowhere_to_be_found']);
    expect(r.verdict.reasons.find((x) => x.kind === 'unpatchable')?.symbol).toBe('nowhere_to_be_found');
  });

  it('hidden-visibility globals are named as the linker-made locals they become', async () => {
    const src = `__attribute__((visibility("hidden"))) int __attribute__((noinline)) hid(int x) { return x * 5 + 1; }
__attribute__((visibility("hidden"))) int hidden_count;
int pub(int x) { hidden_count++; return hid(x) * 2; }
`;
    const r = await runCase({ model: 'pic', link: true, file: 'x.c', orig: { 'x.c': src }, patched: { 'x.c': src.replace('* 2;', '* 3;').replace('x * 5 + 1', 'x * 5 + 2') } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['hid', 'pub']);
    expect(r.verdict.changedFunctions.find((f) => f.name === 'hid')!.record).toBe('__wfsym:1:hid:');
    const refs = Object.fromEntries(r.verdict.references.map((x) => [x.symbol, x]));
    expect(refs['__wfsym:1:hidden_count:']).toMatchObject({ local: true, resolved: true });
    expect(refs['__wfsym:1:hid:']).toMatchObject({ local: true, resolved: true });
    expect(undefinedSyms(r.out!)).not.toContain('hid');
  });

  it('the binary must hold the original code: an overridden weak function is refused', async () => {
    const weak = `int __attribute__((weak, noinline)) hook(int x) { return x + 1; }
int use_hook(int x) { return hook(x) * 2; }
`;
    const strong = 'int hook(int x) { return x * 100 + 7; }\nint use_hook(int);\nint main(int c, char **v) { (void)v; return use_hook(c); }\n';
    const r = await runCase({ model: 'pie', link: true, file: 'x.c', orig: { 'x.c': weak, 'main.c': strong }, patched: { 'x.c': weak.replace('x + 1', 'x + 2') } });
    expect(r.exitCode).toBe(5);
    expect(r.verdict.reasons.find((x) => x.kind === 'unpatchable')).toMatchObject({ symbol: 'hook' });
    expect(r.verdict.patchableReasons.join('\n')).toMatch(/hook in .* is not the code of/);
  });

  it('a function the linker dropped gets no record', async () => {
    const extra = (k: number): string => `int unused_api(int x) { return x * ${k}; }\n`;
    const patched = `${lib.replace('hits += x;', 'hits += 2 * x;')}${extra(4)}`;
    const r = await runCase({ model: 'pie', link: true, ldflags: ['-Wl,--gc-sections'], file: 'x.c', orig: { 'x.c': `${lib}${extra(3)}`, 'main.c': main }, patched: { 'x.c': patched } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['bump', 'unused_api']);
    expect(r.verdict.changedFunctions.find((f) => f.name === 'unused_api')!.record).toBeNull();
    expect(r.verdict.notes.join('\n')).toContain('unused_api is not in the binary');
    expect(relocsOf(r.out!, '.wfpatch.funcs').map((x) => x.symbol)).toEqual(['__wfsym:1:bump:x.c', 'bump']);
    expect(undefinedSyms(r.out!)).not.toContain('unused_api');
  });
});

