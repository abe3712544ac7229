// The one place that loads weft_native.node. Other pkg/native modules import `loadAddon`.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Native } from '../../addon/index.js';
import { ErrorCodes, WeftError } from '../errors/index.js';

/** Repository (or image) root: dist/pkg/native → ../../.. ; pkg/native → ../.. */
function findRoot(): string {
  let dir = fileURLToPath(new URL('.', import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(`${dir}/package.json`) && existsSync(`${dir}/addon`)) return dir;
    dir = `${dir}/..`;
  }
  throw new WeftError(ErrorCodes.NATIVE, 'cannot find the weft install root (package.json next to addon/)');
}

export const ROOT = findRoot();
export const ADDON_PATH = process.env.WEFT_ADDON_PATH ?? `${ROOT}/addon/build/Release/weft_native.node`;

let cached: Native | undefined;
export function loadAddon(): Native {
  if (cached) return cached;
  if (!existsSync(ADDON_PATH)) {
    throw new WeftError(ErrorCodes.NATIVE, `native addon not built: ${ADDON_PATH} is missing; run 'npm run build:addon'`);
  }
  const require = createRequire(import.meta.url);
  cached = require(ADDON_PATH) as Native;
  return cached;
}
