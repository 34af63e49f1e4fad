/**
 * create-diff-object: C++ — mangled names, COMDAT groups (inline functions, template
 * instances), constructor aliases, exception tables and personality, vtables as data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';
import { cleanup, definedSym, names, relocsOf, runCase, undefinedSyms, type CodeModel } from '../kpatch-fork/tests/harness.ts';

beforeAll(async () => {
  await execa('make', ['-C', `${repoRoot}/kpatch-fork`, 'bin/create-diff-object']);
});
afterAll(cleanup);

const src = `#include <stdexcept>
#include <string>
#include <vector>
#include <cstdio>
struct Foo {
  int v;
  explicit Foo(int v_);
  int bar(int x) const;
  virtual ~Foo() {}
  virtual int virt(int x) { return x + v; }
};
Foo::Foo(int v_) : v(v_ * 2) {}
int Foo::bar(int x) const { return v * x; }
template <class T> __attribute__((noinline)) T sq(T t) { return t * t + 1; }
inline __attribute__((noinline)) int twice(int x) { return 2 * x + 1; }
int parse(const std::string &s) {
  try {
    if (s.empty()) throw std::runtime_error("empty");
    return std::stoi(s);
  } catch (const std::invalid_argument &e) {
    std::printf("bad: %s\\n", e.what());
    return -1;
  } catch (int code) {
    return code;
  }
}
int use(int x) { Foo f(3); return f.bar(x) + sq(x) + sq<long>(x) + twice(x) + f.virt(1); }
std::vector<int> make(int n) { std::vector<int> v; for (int i = 0; i < n; i++) v.push_back(sq(i)); return v; }
`;
const main = 'int use(int);\nint main(int c, char **) { return use(c); }\n';

const models: CodeModel[] = ['pie', 'pic'];

describe.each(models)('create-diff-object, C++, -f%s', (model) => {
  it('mangled member function: replaced by its mangled name', async () => {
    const r = await runCase({ model, file: 'x.cc', orig: { 'x.cc': src }, patched: { 'x.cc': src.replace('return v * x;', 'return v * x + 1;') } });
    expect(r.exitCode).toBe(0);
    // with -fPIE GCC may also inline bar() into use(): then use() changed too
    expect(names(r.verdict.changedFunctions).filter((n) => n !== '_Z3usei')).toEqual(['_ZNK3Foo3barEi']);
    expect(relocsOf(r.out!, '.wfpatch.funcs').map((x) => x.symbol)).toEqual(expect.arrayContaining(['_ZNK3Foo3barEi']));
  });

  it('template instances (COMDAT): replaced, copied out of their groups, callers untouched', async () => {
    const r = await runCase({ model, link: true, file: 'x.cc', orig: { 'x.cc': src, 'main.cc': main }, patched: { 'x.cc': src.replace('return t * t + 1;', 'return t * t + 2;') } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['_Z2sqIiET_S0_', '_Z2sqIlET_S0_']);
    expect(r.verdict.changedFunctions.every((f) => f.binding === 'weak')).toBe(true);
    const out = r.out!;
    expect(out.sections.some((s) => s.type === 'GROUP')).toBe(false);
    expect(out.sections.filter((s) => s.flags.includes('G'))).toEqual([]);
    expect(definedSym(out, '_Z2sqIiET_S0_')).toMatchObject({ bind: 'LOCAL' });
    // the old instances are named plainly and must exist: strong undefined references
    expect(out.symbols.find((s) => s.name === '_Z2sqIiET_S0_' && s.ndx === 'UND')).toMatchObject({ bind: 'GLOBAL' });
    expect(r.verdict.references.every((x) => x.resolved)).toBe(true);
  });

  it('inline function in a COMDAT group: only it changes when not inlined', async () => {
    const r = await runCase({ model, file: 'x.cc', orig: { 'x.cc': src }, patched: { 'x.cc': src.replace('return 2 * x + 1;', 'return 2 * x + 3;') } });
    expect(r.exitCode).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['_Z5twicei']);
  });

  it('constructor aliases (C1/C2 at one address) get one record', async () => {
    const r = await runCase({ model, file: 'x.cc', orig: { 'x.cc': src }, patched: { 'x.cc': src.replace('v(v_ * 2)', 'v(v_ * 4)') } });
    expect(r.exitCode).toBe(0);
    const changed = names(r.verdict.changedFunctions);
    expect(changed).toEqual(expect.arrayContaining(['_ZN3FooC1Ei', '_ZN3FooC2Ei']));
    const olds = relocsOf(r.out!, '.wfpatch.funcs').filter((x) => x.offset % 32 === 0).map((x) => x.symbol);
    expect(olds.filter((n) => /^_ZN3FooC[12]Ei$/.test(n))).toHaveLength(1);
  });

  it('exceptions: landing pads, .gcc_except_table, personality and typeinfo slots come along', async () => {
    const r = await runCase({ model, link: true, file: 'x.cc', orig: { 'x.cc': src, 'main.cc': main }, patched: { 'x.cc': src.replace('"bad: %s\\n"', '"invalid: %s\\n"').replace('return code;', 'return code + 1;') } });
    expect(r.exitCode).toBe(0);
    const parse = '_Z5parseRKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE';
    const all = names([...r.verdict.changedFunctions, ...r.verdict.includedFunctions]);
    expect(all).toEqual([parse, `${parse}.cold`]);
    const out = r.out!;
    const secs = out.sections.map((s) => s.name);
    expect(secs).toContain(`.gcc_except_table.${parse}`);
    expect(secs).toContain('.eh_frame');
    // the CIE's personality goes through a copied DW.ref slot to the real personality routine
    expect(definedSym(out, 'DW.ref.__gxx_personality_v0')).toMatchObject({ type: 'OBJECT', bind: 'LOCAL' });
    expect(relocsOf(out, '.eh_frame').map((x) => x.symbol)).toEqual(expect.arrayContaining(['DW.ref.__gxx_personality_v0', `.gcc_except_table.${parse}`, `.text.${parse}`]));
    expect(undefinedSyms(out)).toEqual(expect.arrayContaining(['__gxx_personality_v0', '_ZTIi', '_ZTISt16invalid_argument']));
    // the LSDA's type table points at typeinfo through DW.ref slots
    expect(relocsOf(out, `.gcc_except_table.${parse}`).map((x) => x.symbol)).toEqual(expect.arrayContaining(['DW.ref._ZTIi']));
    expect(r.verdict.unresolved).toEqual([]);
  });

  it('a changed dynamic initializer already ran: not text-only, named', async () => {
    const g = `${src}std::string greeting = "hello";\nconst char *greet() { return greeting.c_str(); }\n`;
    const r = await runCase({ model, file: 'x.cc', orig: { 'x.cc': g }, patched: { 'x.cc': g.replace('"hello"', '"howdy"') } });
    expect(r.exitCode).toBe(4);
    expect(r.verdict.reasons.find((x) => x.kind === 'data')?.symbol).toMatch(/^_GLOBAL__sub_I_/);
  });

  it("lines moved above CHECK()-style static const info: users replaced with copies, not a data change", async () => {
    // Node.js's CHECK(): a function-local static const struct holding "file:line" — the
    // research prototype called every Node.js patch "not text-only" because of these
    const check = `#include <cstdio>
#include <cstdlib>
struct AssertionInfo { const char *file_line; const char *message; const char *function; };
[[noreturn]] void Assert(const AssertionInfo &info);
#define STR2(x) #x
#define STR(x) STR2(x)
#define CHECK(expr) do { if (!(expr)) { static const AssertionInfo args = { __FILE__ ":" STR(__LINE__), #expr, __PRETTY_FUNCTION__ }; Assert(args); } } while (0)
int first(int x) { CHECK(x > 0); return x * 2; }
int second(int x) { CHECK(x < 100); CHECK(x != 42); return x + 7; }
`;
    const moved = check.replace('int first', '// a comment\n// and another\nint first');
    const r = await runCase({ model, file: 'x.cc', orig: { 'x.cc': check }, patched: { 'x.cc': moved } });
    expect(r.exitCode).toBe(0);
    expect(r.verdict.textOnly).toBe(true);
    expect(names(r.verdict.changedFunctions)).toEqual(['_Z5firsti', '_Z6secondi']);
    expect(r.verdict.copiedData.length).toBe(3);
    expect(r.verdict.copiedData.every((d) => /^_ZZ.*E4args(_\d+)?$/.test(d.name))).toBe(true);
  });

  it('CHECK() inside templates and inline functions (vague-linkage static const info): copied, not a data change', async () => {
    // Node.js's crypto_util.h: CHECK()s in template constructors and inline functions, whose
    // static const AssertionInfo is a unique/weak object in a COMDAT group, shared by every
    // object that instantiates it — a header edit above them moves their lines.
    const check = `struct AssertionInfo { const char *file_line; const char *message; const char *function; };
[[noreturn]] void Assert(const AssertionInfo &info);
#define STR2(x) #x
#define STR(x) STR2(x)
#define CHECK(expr) do { if (!(expr)) { static const AssertionInfo args = { __FILE__ ":" STR(__LINE__), #expr, __PRETTY_FUNCTION__ }; Assert(args); } } while (0)
template <class T> struct Contents { T v; __attribute__((noinline)) explicit Contents(T x) : v(x) { CHECK(x != 0); } };
inline __attribute__((noinline)) int checked(int x) { CHECK(x < 1000); return x - 1; }
int use(int x) { return Contents<int>(x).v + Contents<char>((char)x).v + checked(x); }
`;
    const moved = check.replace('template <class T>', '// moved\ntemplate <class T>');
    const r = await runCase({ model, file: 'x.cc', orig: { 'x.cc': check }, patched: { 'x.cc': moved } });
    expect(r.exitCode, JSON.stringify(r.verdict.reasons)).toBe(0);
    expect(r.verdict.textOnly).toBe(true);
    expect(r.verdict.copiedData.length).toBe(3);
    expect(r.verdict.copiedData.every((d) => /^_ZZ.*E4args$/.test(d.name))).toBe(true);
  });

  it('a function static named after __LINE__ (TRACE_EVENT) is the same variable after lines moved', async () => {
    const traced = `#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define TRACE() static int CAT(trace_state, __LINE__) = 0; CAT(trace_state, __LINE__)++
int traced(int x) { if (x > 5) { TRACE(); } else { TRACE(); } return x * 3; }
int other(int x) { return x + 1; }
`;
    const moved = traced.replace('int traced', '// one\n// two\nint traced').replace('x + 1', 'x + 2');
    const r = await runCase({ model, file: 'x.cc', orig: { 'x.cc': traced }, patched: { 'x.cc': moved } });
    expect(r.exitCode, JSON.stringify(r.verdict.reasons)).toBe(0);
    expect(names(r.verdict.changedFunctions)).toEqual(['_Z5otheri']);
    // several statics of one line in one function (GCC's discriminators) each find theirs
    const syms = await execa('readelf', ['-sW', join(r.dir, 'orig', 'x.o')]);
    expect(syms.stdout.split('\n').filter((l) => / OBJECT .*_ZZ6tracediE\d+trace_state\d+(_\d+)?$/.test(l))).toHaveLength(2);
  });

  it('a mutable static inside an inline function changes value: not text-only', async () => {
    // The same vague linkage, but writable: the program's one copy holds state.
    const counter = 'inline __attribute__((noinline)) int next() { static int n = 5; return ++n; }\nint use(int x) { return next() + x; }\n';
    const r = await runCase({ model, file: 'x.cc', orig: { 'x.cc': counter }, patched: { 'x.cc': counter.replace('n = 5', 'n = 7') } });
    expect(r.exitCode).toBe(4);
    expect(r.verdict.reasons.find((x) => x.kind === 'data')?.symbol).toMatch(/next.*1n/);
  });

  it('a new virtual function changes the vtable: not text-only', async () => {
    const patched = src.replace('virtual int virt(int x) { return x + v; }', 'virtual int virt(int x) { return x + v; }\n  virtual int more(int x) { return x - v; }');
    const r = await runCase({ model, file: 'x.cc', orig: { 'x.cc': src }, patched: { 'x.cc': patched } });
    expect(r.exitCode).toBe(4);
    expect(r.verdict.changedData.map((d) => d.name)).toContain('_ZTV3Foo');
  });
});
