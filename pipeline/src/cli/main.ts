import { commands } from './commands.ts';
import { ExitCode, UserError } from './errors.ts';

const exitCodeHelp = `Exit codes:
  0   success
  1   internal error (a bug in wfbuild: please report it)
  2   bad usage or bad input (unknown option, unreadable file, malformed patch)
  3   (build/classify) no compiled code changed: nothing to patch
  4   (build/classify) not text-only: the patch changes data
  5   (build/classify) text-only but not kpatch-able
  10  a guest kernel reported BUG/WARNING/Oops/panic/lockdep/KASAN
  11  a guest hung and was killed at its timeout
  12  a build failed (kernel, package, native code)
  13  a prerequisite is missing (root, a Debian package, a registry)
  other: vm run passes through the guest program's exit status`;

export function globalHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `wfbuild — wait-free live patching of multi-threaded processes

Usage: wfbuild <command> [options]
       wfbuild PATCH.diff [options]     (same as: wfbuild build PATCH.diff)
       wfbuild <command> --help

Commands:
${lines.join('\n')}

${exitCodeHelp}`;
}

/** Runs one wfbuild invocation and returns its exit code; never throws. */
export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    console.log(globalHelp());
    return first === undefined ? ExitCode.usage : ExitCode.ok;
  }
  let command = commands.find((c) => c.name === first);
  let args = rest;
  if (!command && !first.startsWith('-') && /\.(diff|patch)$/.test(first)) {
    command = commands.find((c) => c.name === 'build');
    args = argv;
  }
  if (!command) {
    console.error(`wfbuild: unknown command '${first}' (see wfbuild --help)`);
    return ExitCode.usage;
  }
  // Only options before `--` are wfbuild's: after it they belong to a program (vm run).
  const end = args.indexOf('--');
  const own = end === -1 ? args : args.slice(0, end);
  if (own.includes('--help') || own.includes('-h')) {
    console.log(command.help);
    return ExitCode.ok;
  }
  try {
    return await command.run(args);
  } catch (error) {
    if (error instanceof UserError) {
      console.error(`wfbuild ${command.name}: ${error.message}`);
      return error.exitCode;
    }
    // parseArgs reports unknown or malformed options with this code.
    if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
      console.error(`wfbuild ${command.name}: ${error.message}`);
      return ExitCode.usage;
    }
    console.error(`wfbuild ${command.name}: internal error`);
    console.error(error);
    return ExitCode.internal;
  }
}
