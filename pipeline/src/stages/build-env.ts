/**
 * The environment a package build runs in: a clean one, as Debian's own build tools (sbuild,
 * pbuilder) give it, never the caller's. A user's CFLAGS, PYTHONPATH, LD_LIBRARY_PATH or a
 * pyenv/cargo folder first in PATH would otherwise change what the build compiles or which
 * interpreter runs its generators, and so the binary we patch would not be Debian's.
 */
import { userInfo } from 'node:os';

/** Debian's PATH for package builds (no /usr/local, no user shims). */
export const debianPath = '/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The fixed part of every build's environment. HOME points nowhere, as under sbuild and
 * pbuilder (a build must not depend on or write to the builder's home); the locale is fixed so
 * tools print the same messages (and our error extraction reads English).
 */
export function cleanBuildEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  // USER/LOGNAME: some build systems record or check them; sbuild sets them to the builder's.
  const user = safeUserName();
  return {
    PATH: debianPath,
    HOME: '/nonexistent',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    TZ: 'UTC',
    USER: user,
    LOGNAME: user,
    ...extra,
  };
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'root';
  }
}

/**
 * The environment a build process gets: the command's clean environment plus the compiler
 * wrapper's variables. The wrapper puts its shim folder in front of the PATH it was given (by
 * default the caller's); that PATH is rebased onto the clean one here, so the shim still comes
 * first but nothing of the caller's PATH follows it.
 */
export function buildProcessEnv(base: Readonly<Record<string, string>>, wrapper: Readonly<Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = { ...base, ...wrapper };
  const cleanPath = base.PATH;
  const realPath = wrapper.WFBUILD_REAL_PATH;
  const wrapped = wrapper.PATH;
  if (cleanPath !== undefined && realPath !== undefined && wrapped !== undefined && wrapped.endsWith(realPath)) {
    env.PATH = `${wrapped.slice(0, wrapped.length - realPath.length)}${cleanPath}`;
    env.WFBUILD_REAL_PATH = cleanPath;
  } else if (cleanPath !== undefined && wrapped === undefined) {
    env.PATH = cleanPath;
  }
  return env;
}
