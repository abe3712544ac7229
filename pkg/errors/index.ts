// Every weft error is a WeftError with a stable code (WEFT_ERR_…) and a message that says
// what was wrong, where (the field, flag or annotation), and what is allowed.
import { ZodError } from 'zod';

export const ErrorCodes = {
  /** A command-line flag or WEFT_* environment variable is invalid. */
  BAD_FLAG: 'WEFT_ERR_BAD_FLAG',
  /** An unknown subcommand. */
  UNKNOWN_COMMAND: 'WEFT_ERR_UNKNOWN_COMMAND',
  /** A pod annotation or label value is invalid. */
  BAD_ANNOTATION: 'WEFT_ERR_BAD_ANNOTATION',
  /** A config or values file is invalid. */
  BAD_CONFIG: 'WEFT_ERR_BAD_CONFIG',
  /** YAML or JSON input could not be parsed or has the wrong shape. */
  BAD_INPUT: 'WEFT_ERR_BAD_INPUT',
  /** An AdmissionReview request is malformed. */
  BAD_ADMISSION_REVIEW: 'WEFT_ERR_BAD_ADMISSION_REVIEW',
  /** A policy CRD is invalid. */
  BAD_POLICY: 'WEFT_ERR_BAD_POLICY',
  /** The native addon is missing or failed. */
  NATIVE: 'WEFT_ERR_NATIVE',
  /** The host lacks a kernel feature or tool weft needs. */
  MISSING_FEATURE: 'WEFT_ERR_MISSING_FEATURE',
  /** Applying an interception plan failed (the step is named in the message). */
  APPLY_FAILED: 'WEFT_ERR_APPLY_FAILED',
  /** A sandbox (e2e) operation failed. */
  SANDBOX: 'WEFT_ERR_SANDBOX',
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class WeftError extends Error {
  readonly code: ErrorCode;
  /** Where the problem is: a flag, annotation, JSON path or step name. */
  readonly field: string | undefined;
  constructor(code: ErrorCode, message: string, options: { field?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WeftError';
    this.code = code;
    this.field = options.field;
  }
}

/** One line per zod issue: `<prefix><path>: <message>` so the field is always named. */
export function describeZodError(err: ZodError, prefix = ''): string {
  return err.issues
    .map((i) => {
      const path = i.path.map(String).join('.');
      return `${prefix}${path || '(root)'}: ${i.message}`;
    })
    .join('; ');
}

/** Wrap a zod failure as a WeftError naming every bad field. */
export function fromZod(code: ErrorCode, err: ZodError, prefix = ''): WeftError {
  const first = err.issues[0];
  const field = first ? `${prefix}${first.path.map(String).join('.')}` : undefined;
  return new WeftError(code, describeZodError(err, prefix), field === undefined ? {} : { field });
}

export function isWeftError(e: unknown): e is WeftError {
  return e instanceof WeftError;
}
