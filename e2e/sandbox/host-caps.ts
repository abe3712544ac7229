// The host kernel's capability range, read once: privileged containers and `add: [ALL]`
// get every capability up to /proc/sys/kernel/cap_last_cap, as containerd gives them.
import { readFileSync } from 'node:fs';
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import type { HostCaps } from './caps.js';

const CAP_LAST_CAP = '/proc/sys/kernel/cap_last_cap';
let cached: HostCaps | undefined;

export function hostCaps(): HostCaps {
  if (cached) return cached;
  const text = readFileSync(CAP_LAST_CAP, 'utf8').trim();
  if (!/^\d+$/.test(text)) throw new WeftError(ErrorCodes.SANDBOX, `${CAP_LAST_CAP}: "${text}" is not a capability number`, { field: 'cap_last_cap' });
  cached = { lastCap: Number(text) };
  return cached;
}
