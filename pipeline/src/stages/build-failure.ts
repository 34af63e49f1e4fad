/**
 * What a failed build's message says: the lines that tell why (configure's `configure: error:`,
 * a compiler's `error:`), not only the output's tail — for a Debian build the tail is dh's
 * wrapper line and make's `Error 2`, and configure's reason was printed much earlier — and
 * where the whole log was kept, since the failed tree itself is removed.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

/** Lines that name a cause, strongest first; each pattern's matches keep the output's order. */
const causes: readonly RegExp[] = [
  // Unanchored: AC_MSG_CHECKING leaves no newline, so it often follows "checking for x... ".
  /configure: error: /,
  /^CMake Error/,
  /^meson\.build:\d+:\d+: ERROR: /,
  /: fatal error: /,
  /:\d+(?::\d+)?: error: /,
  /undefined reference to /,
  /^(?:dh|dh_\w+|dpkg-\w+): error: (?!.* returned exit code)/,
  /Can't exec "|: command not found$|: not found$/,
  /No rule to make target/,
  /^(?:E|ERROR|Error): /,
  /\*\*\* .*(?:missing|not found|required)/i,
];

/** Wrapper lines that only repeat that something below failed. */
const noise = /^make(?:\[\d+\])?: \*\*\* |returned exit code \d+|^dh: error: debian\/rules .* returned exit code/;

/**
 * The most telling lines of a build's output and its config.log files (at most `max`): the
 * first pattern that matches anything wins, so a configure error is not drowned by the
 * compiler errors of configure's own probes. From config.log only configure's own error lines
 * count (`configure:1234: error: …`): its failed probes (`conftest.c: fatal error: …`) are normal.
 * A configure error keeps the lines right after it (pkg-config's "No package 'x' found").
 */
export function tellingLines(output: string, configLogs: readonly string[] = [], max = 6): string[] {
  const lines = output.split('\n').map((l) => l.trimEnd());
  const fromConfigLog = configLogs.flatMap((text) =>
    text
      .split('\n')
      .map((l) => /^configure:\d+: (error: .*)$/.exec(l.trimEnd())?.[1])
      .filter((l): l is string => l !== undefined)
      .map((l) => `configure: ${l}`),
  );
  for (const pattern of causes) {
    const found: string[] = [];
    for (const [i, line] of lines.entries()) {
      if (!pattern.test(line.trim()) || noise.test(line.trim())) continue;
      if (pattern !== causes[0]) found.push(line.trim());
      else {
        // From configure's own words on, so the same error from config.log is one line.
        found.push(line.slice(line.indexOf('configure: error: ')).trim());
        // pkg-config and friends explain on the next lines, until a blank one.
        for (const next of lines.slice(i + 1, i + 4)) {
          if (next.trim() === '' || causes[0].test(next) || noise.test(next.trim()) || /returned exit code/.test(next)) break;
          found.push(`  ${next.trim()}`);
        }
      }
    }
    if (pattern === causes[0]) found.push(...fromConfigLog);
    const unique = [...new Set(found)];
    if (unique.length > 0) return unique.slice(0, max);
  }
  return [];
}

/** config.log files in the tree (autoconf writes one per configured folder), by path. */
export async function findConfigLogs(tree: string): Promise<string[]> {
  const result = await execa('find', ['.', '-maxdepth', '4', '-name', 'config.log', '-type', 'f'], { cwd: tree, reject: false });
  return result.stdout.split('\n').filter(Boolean).map((p) => p.replace(/^\.\//, '')).sort();
}

/**
 * Keeps a failed build's output (build.log) and config.log files in `dir` (created), so the
 * message can name them after the tree is gone. Returns the folder and the config.log texts.
 */
export async function keepFailedBuild(dir: string, tree: string, output: string): Promise<{ dir: string; configLogs: string[] }> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'build.log'), output);
  const configLogs: string[] = [];
  for (const path of await findConfigLogs(tree)) {
    const kept = join(dir, path.replace(/\//g, '__'));
    await copyFile(join(tree, path), kept).catch(() => undefined);
    configLogs.push(await readFile(join(tree, path), 'utf8').catch(() => ''));
  }
  return { dir, configLogs };
}
