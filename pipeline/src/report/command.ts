import { parseArgs } from 'node:util';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from '../cli/command.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { reportTable } from './table.ts';
import type { Report } from './types.ts';

const help = `Usage: wfbuild report DIR|REPORT.json... [--json]

Prints the classification table of wfbuild outputs: each DIR is a folder 'wfbuild build'
or 'wfbuild classify' wrote (its report.json is read), or a report.json itself.
  --json   print the reports as one JSON array instead`;

/** Reads a report.json (or DIR/report.json); UserError when it is missing or not a report. */
export async function loadReport(path: string): Promise<Report> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new UserError(`${path}: no such file or folder`);
  const file = info.isDirectory() ? join(path, 'report.json') : path;
  const text = await readFile(file, 'utf8').catch(() => {
    throw new UserError(`${path}: no report.json (not a wfbuild output folder)`);
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${file}: not JSON (${(error as Error).message})`);
  }
  const r = parsed as Partial<Report>;
  if (r.format !== 1 || typeof r.outcome !== 'string' || !r.patch) throw new UserError(`${file}: not a wfbuild report (format 1)`);
  return r as Report;
}

export const reportCommand: Command = {
  name: 'report',
  summary: 'print the classification table of wfbuild output folders (report.json)',
  help,
  async run(args) {
    const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' } }, allowPositionals: true, strict: true });
    if (positionals.length === 0) throw new UserError('report: give at least one output folder or report.json');
    const reports: Report[] = [];
    for (const p of positionals) reports.push(await loadReport(p));
    console.log(values.json ? JSON.stringify(reports, null, 2) : reportTable(reports));
    return ExitCode.ok;
  },
};
