import { parseArgs } from 'node:util';
import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from '../cli/command.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { ControlError, controlRequest, type ControlOutcome } from './client.ts';
import { describeEvent } from './format.ts';
import { applyToAll } from './all.ts';

const help = `Usage: wfbuild apply --pid PID [--json] [--timeout S] BUNDLE...
       wfbuild apply --pid PID --rollback | --status
       wfbuild apply --all [--json] [--timeout S] BUNDLE...   (wfbuild revert --all: roll back)

Asks the libwfpatch runtime inside process PID (its control socket @wfpatch.PID) to apply
each BUNDLE (a patch object from create-diff-object or a wfbuild bundle), in order, and waits
for the outcome: in local mode until every thread has migrated, in global mode until the
barrier was passed. Prints the runtime's events as they arrive.

Options:
  --pid PID      the process (same user or root)
  --all          every libwfpatch process that has a module of the bundle's target build-id
                 (with --rollback: every libwfpatch process)
  --rollback     undo the newest patch instead
  --status       list the applied patches
  --json         print the runtime's JSON lines unchanged
  --timeout S    give up waiting after S seconds (default 120; the process carries on)

Exit: 0 all applied; 2 bad usage, no such process/socket, or a patch was rejected (the
process keeps running unpatched; the reason is printed); 1 internal error.`;

async function runOne(pid: number, request: string, json: boolean, timeoutMs: number): Promise<ControlOutcome> {
  try {
    return await controlRequest(pid, request, {
      timeoutMs,
      onEvent: (e) => console.log(json ? JSON.stringify(e) : describeEvent(e)),
    });
  } catch (error) {
    if (error instanceof ControlError) throw new UserError(error.message, ExitCode.usage);
    throw error;
  }
}

export const applyCommand: Command = {
  name: 'apply',
  summary: 'apply patch bundles to a running process that uses libwfpatch (or roll back)',
  help,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      options: {
        pid: { type: 'string' },
        all: { type: 'boolean' },
        rollback: { type: 'boolean' },
        status: { type: 'boolean' },
        json: { type: 'boolean' },
        timeout: { type: 'string' },
      },
      allowPositionals: true,
      strict: true,
    });
    if (values.all) {
      if (values.pid !== undefined) throw new UserError('give --pid PID or --all, not both');
      if (values.status) throw new UserError('--all with --status: use wfbuild status');
      return applyToAll(values.rollback ? null : positionals, values.json === true, values.timeout === undefined ? 120 : Number(values.timeout));
    }
    if (values.pid === undefined || !/^[1-9][0-9]*$/.test(values.pid)) {
      throw new UserError('--pid PID is required (a process id)');
    }
    const pid = Number(values.pid);
    const timeoutSec = values.timeout === undefined ? 120 : Number(values.timeout);
    if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) throw new UserError(`--timeout must be a positive number, got '${values.timeout}'`);
    const modes = [values.rollback, values.status, positionals.length > 0].filter(Boolean).length;
    if (modes !== 1) throw new UserError('give either BUNDLE..., --rollback or --status');
    const requests: string[] = [];
    if (values.rollback) requests.push('rollback');
    else if (values.status) requests.push('status');
    else {
      for (const bundle of positionals) {
        const path = resolve(bundle);
        if (/[\n\r]/.test(path)) throw new UserError(`bad file name: ${JSON.stringify(bundle)}`);
        await access(path).catch(() => {
          throw new UserError(`cannot read ${bundle}`);
        });
        // The process opens the file itself: it gets the absolute path.
        requests.push(`apply ${path}`);
      }
    }
    for (const request of requests) {
      const outcome = await runOne(pid, request, values.json === true, timeoutSec * 1000);
      if (outcome.outcome === 'rejected') {
        console.error(`wfbuild apply: ${request}: rejected by process ${pid}: ${outcome.reason ?? 'no reason given'}`);
        return ExitCode.usage;
      }
      if (outcome.outcome === 'closed') {
        throw new UserError(`process ${pid} closed the connection before an outcome (did it exit?)`, ExitCode.usage);
      }
    }
    return ExitCode.ok;
  },
};
