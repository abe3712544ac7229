// The injector's metrics (weft controller): admission reviews by result and skip/refuse
// reason, and how long answering one took.
import { withProcessMetrics } from './process-metrics.js';
import { Counter, Histogram } from './prom.js';
import { createRegistry, type Registry } from './registry.js';

export type AdmissionResult = 'injected' | 'skipped' | 'refused' | 'error';

export interface InjectorMetrics {
  registry: Registry;
  /** `reason` is a skip reason, a refusal's annotation code, or '' when injected/allowed. */
  review(result: AdmissionResult, reason: string, seconds: number): void;
}

export function createInjectorMetrics(registry: Registry = withProcessMetrics(createRegistry())): InjectorMetrics {
  const reviews = new Counter({
    name: 'weft_injector_admission_reviews_total',
    help: 'AdmissionReviews answered by the injector, by result and reason',
    labelNames: ['result', 'reason'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'weft_injector_admission_review_duration_seconds',
    help: 'Time to decode, decide and answer one AdmissionReview',
    labelNames: ['result'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  return {
    registry,
    review(result, reason, seconds) {
      reviews.inc({ result, reason });
      duration.observe({ result }, seconds);
    },
  };
}
