// Adds the gateway's option table to a commander command, so `--help` lists every
// flag with its environment variable and default.
import type { Command } from 'commander';
import { ConfigError, optionTable } from '../core/config.js';
import { exitWith } from './failures.js';

export function addGatewayOptions(cmd: Command, only?: readonly (keyof typeof optionTable)[]): Command {
  for (const [name, opt] of Object.entries(optionTable)) {
    if (only && !only.includes(name as keyof typeof optionTable)) continue;
    if (!opt.flag) continue;
    const dflt = opt.default === undefined ? '' : `, default ${String(opt.default)}`;
    cmd.option(opt.flag, `${opt.help} [env ${opt.env}${dflt}]`);
  }
  return cmd;
}

/**
 * Runs a command's configuration step; a ConfigError (a bad flag, variable or file)
 * ends the process with exit code 2 and the message that names the bad value.
 */
export async function configOrExit<T>(command: string, load: () => T | Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if (err instanceof ConfigError) exitWith(command, err);
    throw err;
  }
}
