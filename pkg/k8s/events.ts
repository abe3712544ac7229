// Fire-and-forget core/v1 Events (the webhook's skip Events). Admission never waits on the
// API server: record() only enqueues; one sender posts in order, each POST bounded by a
// timeout. When the queue is full (an API server outage during a rollout), new Events are
// dropped and counted in the log: an Event is a hint for `kubectl describe`, not a record.
import type { KubeEvent } from '../api/k8s-types.js';
import type { Logger } from '../log/index.js';
import { statusMessage, type KubeHttp } from './client.js';

export interface EventQueueOptions {
  /** Events waiting to be sent at most (default 256). */
  maxQueue?: number;
  /** One POST at most this long (default 10 s). */
  timeoutMs?: number;
}

export interface EventQueue {
  /** Enqueue and return at once; false when the queue was full and the Event was dropped. */
  record(event: KubeEvent): boolean;
  /** Resolves when everything queued so far was sent or failed (tests, shutdown). */
  flush(): Promise<void>;
  /** Stop: abort the POST in flight and drop what is queued. */
  close(): void;
}

/** POST one Event, stamped with the time (what `kubectl describe` sorts and shows). */
export async function createEvent(http: KubeHttp, event: KubeEvent, signal?: AbortSignal): Promise<void> {
  const now = new Date().toISOString();
  const body = { ...event, message: event.message.slice(0, 1024), firstTimestamp: now, lastTimestamp: now, count: 1 };
  const path = `/api/v1/namespaces/${encodeURIComponent(event.metadata.namespace)}/events`;
  const r = await http.request('POST', path, { body, ...(signal ? { signal } : {}) });
  if (r.status !== 201 && r.status !== 200) throw new Error(`create event in ${event.metadata.namespace}: ${statusMessage(r)}`);
}

export function createEventQueue(http: KubeHttp, log: Logger, opts: EventQueueOptions = {}): EventQueue {
  const max = opts.maxQueue ?? 256;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const queue: KubeEvent[] = [];
  const abort = new AbortController();
  let sending: Promise<void> | undefined;
  let dropped = 0;

  const pump = async () => {
    for (let e = queue.shift(); e && !abort.signal.aborted; e = queue.shift()) {
      try {
        await createEvent(http, e, AbortSignal.any([abort.signal, AbortSignal.timeout(timeoutMs)]));
      } catch (err) {
        if (!abort.signal.aborted) log.warn({ err: (err as Error).message, reason: e.reason, ns: e.metadata.namespace, pod: e.involvedObject.name }, 'could not record a Kubernetes Event');
      }
    }
    sending = undefined;
  };

  return {
    record(event) {
      if (abort.signal.aborted) return false;
      if (queue.length >= max) {
        // Log the first drop of a burst and then every 100th, not one line per pod.
        if (dropped++ % 100 === 0) log.warn({ dropped, queued: queue.length, reason: event.reason }, 'Event queue full: dropping Kubernetes Events');
        return false;
      }
      queue.push(event);
      sending ??= pump();
      return true;
    },
    async flush() {
      while (sending) await sending;
    },
    close() {
      abort.abort();
      queue.length = 0;
    },
  };
}
