import { GatewayError, type ErrorCode } from '../base/errors.js';

/**
 * A proxying failure before any response byte: the core answers the code's status (core/base/errors.ts) with
 * `headers` (e.g. Retry-After on GW_ERR_UPSTREAM_UNAVAILABLE); GW_ERR_UPSTREAM_STATUS passes the upstream's own.
 */
export class ProxyError extends GatewayError {
  constructor(code: ErrorCode, message: string, headers?: Record<string, string>, statusCode?: number) {
    super(code, message, headers, statusCode);
    this.name = 'ProxyError';
  }
}
