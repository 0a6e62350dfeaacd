import { HttpError } from '../base/errors.js';

/**
 * A failure before any response byte: the core answers `statusCode` with `headers` (e.g. Retry-After on 503).
 * 400: the request target would leave the route's prefix; 502: the upstream refused/reset/broke the exchange;
 * 503: no available target (all unhealthy or circuit-open); 504: no response headers in time.
 */
export class ProxyError extends HttpError {
  constructor(statusCode: number, message: string, headers?: Record<string, string>) {
    super(statusCode, message, headers);
    this.name = 'ProxyError';
  }
}
