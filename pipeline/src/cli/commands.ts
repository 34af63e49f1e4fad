import type { Command } from './command.ts';
import { setupCommand } from '../setup/command.ts';
import { kernelCommand } from '../kernel/command.ts';
import { vmCommand } from '../vm/command.ts';
import { corpusCommand } from '../corpus/command.ts';
import { buildCommand, classifyCommand } from '../stages/command.ts';
import { reportCommand } from '../report/command.ts';
import { applyCommand } from '../apply/command.ts';
import { demoCommand } from '../demo/command.ts';
import { enableCommand } from '../enable/command.ts';
import { liveCommand } from '../live/command.ts';
import { packageCommand } from '../package/command.ts';
import { statusCommand } from '../status/command.ts';
import { revertCommand } from '../apply/revert-command.ts';

/** Every sub-command, in the order `wfbuild --help` lists them. */
export const commands: readonly Command[] = [
  setupCommand,
  demoCommand,
  kernelCommand,
  vmCommand,
  corpusCommand,
  buildCommand,
  classifyCommand,
  reportCommand,
  applyCommand,
  enableCommand,
  liveCommand,
  packageCommand,
  statusCommand,
  revertCommand,
];
