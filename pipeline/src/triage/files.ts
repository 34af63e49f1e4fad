/** What kind of file a patch touches, judged from its path alone. */
export type FileKind =
  | 'c-source'
  | 'cxx-source'
  | 'asm'
  | 'header'
  | 'build-system'
  | 'tests'
  | 'docs'
  | 'debian-packaging'
  | 'other';

/** Kinds whose change can change the compiled program (so the patch must be built). */
export const compiledKinds: ReadonlySet<FileKind> = new Set(['c-source', 'cxx-source', 'asm', 'header', 'build-system']);

const cExt = /\.(c|y|l)$/;
const cxxExt = /\.(cc|cpp|cxx|c\+\+|C|ypp|ll)$/;
const asmExt = /\.(s|S|sx|asm)$/;
const headerExt = /\.(h|hh|hpp|hxx|h\+\+|H|inc|def|inl|tcc|ipp)$/;
const buildBase = /^(Makefile|GNUmakefile|makefile|Makefile\.(am|in)|configure|configure\.(ac|in)|CMakeLists\.txt|meson\.build|meson_options\.txt|meson\.options|SConstruct|SConscript|Kbuild|Kconfig|acinclude\.m4|aclocal\.m4|config\.h\.in|libtool|ltmain\.sh|BUILD|build\.ninja)$/;
const buildExt = /\.(m4|mk|cmake|am|in|pc\.in|map|ld|lds|sym|vers)$/;
const docsBase = /^(README|NEWS|ChangeLog|CHANGES|CHANGELOG|AUTHORS|COPYING|LICENSE|LICENCE|INSTALL|TODO|HACKING|THANKS|CONTRIBUTING|NOTICE)([._-].*)?$/i;
const docsExt = /\.(md|markdown|txt|rst|pod|texi|texinfo|info|html?|xml|sgml|adoc|asciidoc|org|[1-9][a-z]?|man|tex|pdf|svg|png)$/;
const testDir = /(^|\/)(t|test|tests|testing|testsuite|unittests?|spec|regress(ion)?)\//;
const docsDir = /(^|\/)(doc|docs|man|manual|documentation)\//i;

/** Classifies a path relative to the tree root (after stripping a/ b/). */
export function classifyPath(path: string): FileKind {
  const base = path.slice(path.lastIndexOf('/') + 1);
  if (path.startsWith('debian/')) return 'debian-packaging';
  if (testDir.test(path)) return 'tests';
  if (docsDir.test(path) && !cExt.test(base) && !headerExt.test(base)) return 'docs';
  if (buildBase.test(base)) return 'build-system';
  // A template configure fills in is what it becomes: apxs.in a script, ap_config_layout.h.in
  // a header; build files (foo.pc.in, rules.mk.in) stay build files.
  if (base.endsWith('.in') && base.length > 3 && !/\.(pc|mk|am|m4|cmake|sh|spec|map|ld|lds|sym|vers)\.in$/.test(base)) {
    const made = classifyPath(path.slice(0, -3));
    return made === 'other' || made === 'docs' ? made : made === 'debian-packaging' || made === 'tests' ? made : 'build-system';
  }
  if (buildExt.test(base)) return 'build-system';
  if (headerExt.test(base)) return 'header';
  if (cExt.test(base)) return 'c-source';
  if (cxxExt.test(base)) return 'cxx-source';
  if (asmExt.test(base)) return 'asm';
  if (docsBase.test(base) || docsExt.test(base)) return 'docs';
  return 'other';
}

/**
 * Whether a file of this kind may change the compiled program. Test folders count when they
 * hold compilable files: a build may compile its tests (we cannot know before building).
 */
export function mayChangeCompiledCode(path: string, kind: FileKind): boolean {
  if (compiledKinds.has(kind)) return true;
  if (kind !== 'tests') return false;
  const base = path.slice(path.lastIndexOf('/') + 1);
  return cExt.test(base) || cxxExt.test(base) || asmExt.test(base) || headerExt.test(base) || buildBase.test(base);
}
