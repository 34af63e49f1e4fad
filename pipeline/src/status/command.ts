import { parseArgs } from 'node:util';
import type { Command } from '../cli/command.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { ControlError } from '../apply/client.ts';
import { collectStatus, type ProcessStatus } from './collect.ts';
import { libwfpatchPids } from './discover.ts';
import { formatStatus } from './format.ts';

const help = `Usage: wfbuild status [--pid PID | --all] [--json]

Every process on the machine that runs libwfpatch (default, or --all), or one (--pid): its
executable and build-id, the fixes applied (name, CVEs, when, mode, generation), the fixes
installed for its build-ids (/usr/lib/wfpatch/<build-id>/) but not applied and why, its
generations, and per thread the generation it runs in — the tracked threads that still run
older code are named.

Options:
  --pid PID   one process
  --all       every libwfpatch process (the default)
  --json      one JSON array of process states

Exit: 0; 2 bad usage or PID runs no libwfpatch.`;

export const statusCommand: Command = {
  name: 'status',
  summary: 'live-patch state of every libwfpatch process: fixes applied / pending, generations per thread',
  help,
  async run(args) {
    const { values } = parseArgs({ args, strict: true, options: { pid: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' } } });
    if (values.pid !== undefined && values.all) throw new UserError('give --pid PID or --all, not both');
    if (values.pid !== undefined && !/^[1-9][0-9]*$/.test(values.pid)) throw new UserError(`--pid must be a process id, got '${values.pid}'`);
    const pids = values.pid !== undefined ? [Number(values.pid)] : await libwfpatchPids();
    const states: ProcessStatus[] = [];
    const errors: string[] = [];
    for (const pid of pids) {
      try {
        states.push(await collectStatus(pid));
      } catch (error) {
        if (values.pid !== undefined && error instanceof ControlError) throw new UserError(error.message);
        errors.push(`pid ${pid}: ${(error as Error).message}`);
      }
    }
    if (values.json) console.log(JSON.stringify(states, null, 2));
    else {
      if (states.length === 0) console.log('no process runs libwfpatch');
      console.log(states.map(formatStatus).join('\n\n'));
    }
    for (const e of errors) console.error(`wfbuild status: ${e}`);
    return ExitCode.ok;
  },
};
