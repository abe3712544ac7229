// `weft proxy --policy-file PATH`: AuthorizationPolicies from a YAML file, re-read when it
// changes. A directory watch gives quick reloads (editors and ConfigMap updates replace the
// file by rename, which a watch on the file itself would lose), and a 1 s poll catches
// what the watch misses (network filesystems, symlink swaps). A bad file is logged and the
// last good policy stays in force; a bad file at start-up is an error (nothing good yet).
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { ErrorCodes, WeftError, isWeftError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { policySourceMetrics } from '../metrics/policy.js';
import type { Registry } from '../metrics/registry.js';
import { mapResolver, selectPolicies, type WorkloadSelf } from './eval.js';
import { LiveAuthorizer, normalizeSelf, type PolicySource, type SourceSelf } from './live.js';
import { parsePolicyFile } from './load.js';


export interface FileSourceOptions {
  registry?: Registry;
  /** Poll interval in ms (default 1000). */
  pollMs?: number;
}

export async function watchPolicyFile(path: string, pod: SourceSelf, log: Logger, opts: FileSourceOptions = {}): Promise<PolicySource> {
  const metrics = policySourceMetrics(opts.registry);
  const self: WorkloadSelf = normalizeSelf(pod);
  const live = new LiveAuthorizer(self.defaultInbound);
  let lastText: string | undefined;
  let lastError: string | undefined;

  const load = async (initial: boolean): Promise<void> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      const msg = `cannot read policy file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
      if (initial) throw new WeftError(ErrorCodes.BAD_CONFIG, msg, { field: '--policy-file', cause: e });
      if (lastError !== msg) log.warn({ code: ErrorCodes.BAD_CONFIG, path }, `${msg}; keeping the last good policy`);
      lastError = msg;
      metrics.connected('file', false);
      return;
    }
    metrics.connected('file', true);
    if (text === lastText) return;
    try {
      const file = parsePolicyFile(text, path, self.namespace);
      const compiled = selectPolicies(file.policies, self);
      live.set(compiled, self.defaultInbound, mapResolver(file.peers));
      lastText = text;
      lastError = undefined;
      metrics.update('file', true, compiled.length);
      log.info({ path, policies: compiled.map((p) => p.ref), total: file.policies.length }, 'policy file loaded');
    } catch (e) {
      if (initial || !isWeftError(e)) throw e;
      // Remember the bad text so an unchanged bad file is reported once, not every poll.
      lastText = text;
      metrics.update('file', false);
      log.error({ code: e.code, path, field: e.field }, `invalid policy file, keeping the last good policy: ${e.message}`);
    }
  };

  await load(true);

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const trigger = () => {
    if (timer) return;
    // Coalesce the burst of events one save produces, then read once.
    timer = setTimeout(() => {
      timer = undefined;
      running = running.then(() => load(false)).catch((e: unknown) => log.error({ err: e, path }, 'policy file reload failed'));
    }, 50);
  };
  let watcher: FSWatcher | undefined;
  try {
    const name = basename(path);
    watcher = watch(dirname(path), (_event, file) => {
      if (file === null || file === name || file.startsWith('..')) trigger();
    });
    watcher.on('error', (e) => log.warn({ err: e, path }, 'policy file watch failed; polling only'));
  } catch (e) {
    log.warn({ err: e, path }, 'cannot watch the policy file directory; polling only');
  }
  const poll = setInterval(trigger, opts.pollMs ?? 1000);
  poll.unref();

  return {
    authorizer: live,
    async close() {
      clearInterval(poll);
      if (timer) clearTimeout(timer);
      timer = undefined;
      watcher?.close();
      await running;
    },
  };
}
