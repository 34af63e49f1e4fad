/**
 * Which programs load a binary: a dynamic module (nginx's objs/ngx_mail_module.so) takes
 * symbols from the program that dlopen()s it (objs/nginx, linked with -Wl,-E), as libwfpatch's
 * dlsym(RTLD_DEFAULT) finds them at run time. create-diff-object --binary and `wfpatch-ctl
 * check` see them only when told (`--loaded-by PROGRAM`). The rules come from the corpus
 * manifest (services.loadedBy, corpus/README.md). Pure.
 */
import { posix } from 'node:path';

export interface LoaderRule {
  /** A regular expression over a binary's tree-relative path, e.g. nginx's `^(.*\/)?objs/[^/]+\.so$`. */
  readonly modules: string;
  /** The loading program's tree-relative path; `$1`… stand for the groups of `modules`' match (`$&` the whole match), e.g. `$1objs/nginx`. */
  readonly program: string;
  readonly why?: string;
}

/** The loading programs of `binary` (tree-relative), in rule order, each once; none when no rule matches. */
export function loadingPrograms(rules: readonly LoaderRule[] | undefined, binary: string): string[] {
  const out: string[] = [];
  for (const rule of rules ?? []) {
    const m = new RegExp(rule.modules).exec(binary);
    if (!m) continue;
    // the template expanded with the match's groups (not a replacement inside the path)
    const program = posix.normalize(rule.program.replace(/\$(\d+|&)/g, (_, g: string) => (g === '&' ? m[0] : (m[Number(g)] ?? ''))));
    if (program !== binary && !out.includes(program)) out.push(program);
  }
  return out;
}

/**
 * The file of a loading program next to a binary's file: `binaryPath` is where the build's
 * `binary` (tree-relative) lies (the wrapper's captured copy or the tree), so the program is
 * at the same root.
 */
export function siblingPath(binaryPath: string, binary: string, program: string): string {
  const root = binaryPath.endsWith(binary) ? binaryPath.slice(0, binaryPath.length - binary.length) : `${posix.dirname(binaryPath)}/`;
  return `${root}${program}`;
}

/** create-diff-object's and wfpatch-ctl check's arguments for them. */
export function loadedByArgs(programs: readonly string[]): string[] {
  return programs.flatMap((p) => ['--loaded-by', p]);
}
