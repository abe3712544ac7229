// A zod shape of the Pod fields the injector reads: a field weft reads with the wrong type is
// rejected with its path named, before injection. Unknown fields pass through because
// parsePod returns the object it was given, not zod's output; so the shapes strip (z.object)
// rather than copy every unknown key (z.looseObject), which halves the cost per admission.
import { z } from 'zod';
import { ErrorCodes, WeftError, describeZodError } from '../errors/index.js';
import type { Pod } from './k8s-types.js';

const portRef = z.union([z.number().int(), z.string()]);
const probe = z
  .looseObject({
    httpGet: z
      .looseObject({ port: portRef, path: z.string().optional(), scheme: z.string().optional(), host: z.string().optional(), httpHeaders: z.array(z.object({ name: z.string(), value: z.string() })).optional() })
      .optional(),
    tcpSocket: z.object({ port: portRef, host: z.string().optional() }).optional(),
    grpc: z.object({ port: z.number().int(), service: z.string().optional() }).optional(),
    timeoutSeconds: z.number().int().min(1).optional(),
  })
  .optional();
const securityContext = z.object({ runAsUser: z.number().int().optional(), runAsGroup: z.number().int().optional() }).optional();
const container = z.object({
  name: z.string().min(1),
  ports: z.array(z.object({ containerPort: z.number().int(), name: z.string().optional() })).optional(),
  securityContext,
  livenessProbe: probe,
  readinessProbe: probe,
  startupProbe: probe,
  restartPolicy: z.string().optional(),
});
const stringMap = z.record(z.string(), z.string());

export const PodShape = z.object({
  metadata: z
    .looseObject({
      name: z.string().optional(),
      generateName: z.string().optional(),
      namespace: z.string().optional(),
      labels: stringMap.optional(),
      annotations: stringMap.optional(),
      // The skip Event of a pod without a name goes to its first owner.
      ownerReferences: z.array(z.object({ apiVersion: z.string(), kind: z.string(), name: z.string(), uid: z.string() })).optional(),
    })
    .optional(),
  spec: z.object({
    containers: z.array(container).min(1),
    initContainers: z.array(container).optional(),
    volumes: z.array(z.object({ name: z.string() })).optional(),
    hostNetwork: z.boolean().optional(),
    securityContext,
    terminationGracePeriodSeconds: z.number().int().min(0).optional(),
  }),
});

/** Validate `obj` as a Pod (or pod template); the error names the path under `where`. */
export function parsePod(obj: unknown, where: string): Pod {
  const r = PodShape.safeParse(obj);
  if (!r.success) throw new WeftError(ErrorCodes.BAD_INPUT, describeZodError(r.error, `${where}.`), { field: where });
  return obj as Pod;
}
