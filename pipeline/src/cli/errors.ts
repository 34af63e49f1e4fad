/** Exit codes shared by every wfbuild command (documented in pipeline/README.md). */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  /** (build/classify) No compiled code changed: nothing to patch. */
  noCompiledCode: 3,
  /** (build/classify) The patch changes data (or a data layout). */
  notTextOnly: 4,
  /** (build/classify) Text-only, but no loadable bundle for every affected binary. */
  notKpatchable: 5,
  /** A guest kernel reported BUG/WARNING/Oops/panic/lockdep/KASAN. */
  kernelFailure: 10,
  /** A guest did not finish before its timeout. */
  guestTimeout: 11,
  /** A build (kernel, package, native) failed. */
  buildFailed: 12,
  /** A prerequisite (Debian package, root, registry) is missing. */
  missingPrerequisite: 13,
} as const;

/**
 * An error the user can act on: printed as one line, no stack trace, with its exit code.
 */
export class UserError extends Error {
  constructor(message: string, readonly exitCode: number = ExitCode.usage) {
    super(message);
    this.name = 'UserError';
  }
}
