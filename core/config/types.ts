/**
 * The validated, defaults-merged gateway configuration (the public config shape; gateway.schema.json is
 * generated from core/config/schema.ts and must agree with these types).
 */
export interface PluginEntry {
  name: string;
  /** disable without removing the entry (hot-reloadable) */
  enabled: boolean;
  options: Record<string, unknown>;
}

export interface HeaderEdits {
  add: Record<string, string>;
  remove: string[];
}

export interface StaticResponse {
  status: number;
  headers: Record<string, string>;
  /** string is sent as-is; an object/array/number/boolean is sent as JSON with application/json */
  body: unknown;
}

export interface RouteConfig {
  /** optional name, used as the per-route metrics label (defaults to the path) */
  name?: string;
  path: string;
  /** methods, or ['*'] for any */
  methods: string[];
  /** exactly one of response / upstream / handler */
  response?: StaticResponse;
  upstream?: string;
  handler?: string;
  /** traffic splitting and mirroring (core/proxy/backends.ts, core/proxy/mirror.ts); `backends` replaces `upstream` */
  backends?: RouteBackendConfig[];
  canary?: CanaryConfig;
  mirror?: MirrorConfig;
  /** proxy options (upstream routes) */
  stripPrefix?: boolean | string;
  rewrite?: string;
  preserveHost?: boolean;
  timeoutMs?: number;
  requestHeaders?: HeaderEdits;
  responseHeaders?: HeaderEdits;
  plugins: PluginEntry[];
}

/** One upstream a route splits its traffic over, by weight (0: drained, only a canary rule reaches it). */
export interface RouteBackendConfig {
  upstream: string;
  weight: number;
  /** merged over the route's requestHeaders for requests sent to this backend */
  requestHeaders?: HeaderEdits;
}

/**
 * Sends some requests to one backend whatever the weights: those whose header or cookie (exactly one) equals
 * `value`, or a sticky `percent` of clients, by a hash of that header's or cookie's value (exactly one of the two).
 */
export interface CanaryConfig {
  /** the `upstream` of one of the route's backends */
  backend: string;
  header?: string;
  cookie?: string;
  value?: string;
  percent?: number;
}

/** A copy of a share of the route's requests, sent to another upstream; its answers are thrown away (or compared). */
export interface MirrorConfig {
  upstream: string;
  percent: number;
  /** copy the request body (up to maxBodyBytes: a request with a larger body is not mirrored) */
  body: boolean;
  maxBodyBytes: number;
  /** mirrored requests in flight per worker; past it a request is not mirrored (counted as dropped) */
  maxConcurrent: number;
  /** whole mirrored exchange, request sent → response body read */
  timeoutMs: number;
  compare: boolean;
  /** response headers the comparison looks at (lower-cased) */
  compareHeaders: string[];
  /** differing pairs kept per route and worker for GET /mirror/differences */
  keepDifferences: number;
}

export type BalancerName = 'round-robin' | 'weighted-round-robin' | 'least-connections' | 'p2c' | 'consistent-hash';

export interface UpstreamTargetConfig {
  url: string;
  weight: number;
}

export interface UpstreamConfig {
  targets: UpstreamTargetConfig[];
  balancer: BalancerName;
  /** consistent-hash key: 'ip' or 'header:<name>' */
  hashKey: string;
  timeouts: { connectMs: number; headersMs: number; idleMs: number; requestMs: number };
  retries: { count: number; methods: string[]; on: string[]; budgetRatio: number };
  healthCheck: {
    active: { enabled: boolean; path: string; intervalMs: number; timeoutMs: number; healthyThreshold: number; unhealthyThreshold: number };
    passive: { enabled: boolean; failures: number; windowMs: number };
  };
  circuitBreaker: { enabled: boolean; failureRatio: number; minRequests: number; windowMs: number; openMs: number; halfOpenRequests: number };
  keepAlive: { maxSockets: number; maxIdleSockets: number; idleMs: number };
  /** how the gateway connects to https:// targets (core/proxy/upstream-tls.ts); absent = system roots, no client certificate */
  tls?: UpstreamTlsConfig;
  /** gateway-side name resolution of host-name targets (core/proxy/discovery.ts); absent = the OS resolves per connection */
  dns?: UpstreamDnsConfig;
}

export interface UpstreamTlsConfig {
  /** PEM file paths */
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  verify: boolean;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
}

export interface UpstreamDnsConfig {
  refreshMs: number;
  respectTtl: boolean;
  /** host:port of DNS servers used instead of the system resolver */
  servers?: string[];
}

export interface ServerConfig {
  host: string;
  port: number;
  /** worker processes; 0 = serve in the orchestrator's own process (no cluster) */
  workers: number;
  /** 'cluster' processes (Node 20) or 'threads' with reusePort (runtimes that support it) */
  workerMode: 'cluster' | 'threads';
  keepAliveTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  maxHeaderSize: number;
  /** drain deadline on SIGTERM/SIGINT */
  shutdownTimeoutMs: number;
  /**
   * longest the pipeline waits for one plugin hook's (or plugin handler's) promise before it gives up on it:
   * 504 in a stage before the answer, the error answer sent for onError, the request finished for postResponse
   * (0 = wait forever). Applies on reload.
   */
  hookTimeoutMs: number;
  /**
   * cluster mode: longest a worker may take from fork to listening (plugin inits included) before it is killed
   * and counted as a failed start: the gateway exits 1 at first start, a restart is retried with backoff
   * (0 = wait forever)
   */
  workerStartTimeoutMs: number;
  /**
   * cluster mode: longest a serving worker may leave the primary's heartbeat unanswered (its event loop frozen)
   * before it is killed with SIGKILL and replaced with the usual restart backoff (0 = no watchdog). Applies on
   * reload.
   */
  watchdogMs: number;
  /** trusted proxies (IPs/CIDRs) whose X-Forwarded-* / Forwarded headers are believed */
  trustedProxies: string[];
  /** pooled request state objects (RequestState) kept per worker */
  contextPoolSize: number;
  /** longest request target before 414 (a request line past maxHeaderSize is 414 too) */
  maxUrlLength: number;
  /** most header fields per request before 431 */
  maxHeaderCount: number;
  /** concurrent connections per client IP, per worker (0 = unlimited); excess connections get 503 and are closed */
  maxConnectionsPerIp: number;
  /** how often Node checks headersTimeoutMs/requestTimeoutMs (its `connectionsCheckingInterval`) */
  connectionsCheckingIntervalMs: number;
  /** load shedding (core/data/overload.ts): every threshold 0 = off */
  overload: OverloadSettings;
  /** TLS termination (core/base/tls.ts); absent = cleartext listener */
  tls?: TlsConfig;
  /**
   * HTTP/2 on the client side (node:http2 on both server engines: variants/server/shared/h2-sessions.ts).
   * true: with `tls`, ALPN offers h2 and falls back to http/1.1 on the same listener (no effect without tls);
   * false: HTTP/1.1 only; "h2c": cleartext HTTP/2 with prior knowledge (internal hops; no HTTP/1.1 on that
   * listener; not combinable with tls)
   */
  http2: boolean | 'h2c';
  http2Limits: Http2Limits;
  /** extra cleartext listener answering every request with 308 to https (needs tls) */
  redirectHttp?: RedirectHttpConfig;
  /** Strict-Transport-Security on every TLS response (needs tls) */
  hsts?: HstsConfig;
}

export interface TlsKeyPair {
  /** PEM file paths */
  cert: string;
  key: string;
}

export interface TlsConfig extends TlsKeyPair {
  /** PEM file of extra CA certificates (chain sent to clients) */
  ca?: string;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** OpenSSL cipher list (TLS 1.2 suites; TLS 1.3 suites are OpenSSL's defaults) */
  ciphers?: string;
  /** per server name (SNI) certificates; "*.example.com" matches one label */
  sni: Record<string, TlsKeyPair>;
}

export interface Http2Limits {
  maxConcurrentStreams: number;
  /** uncompressed header list bytes per request; default server.maxHeaderSize */
  maxHeaderListSize?: number;
  /** an HTTP/2 session without any frame for this long is closed gracefully (GOAWAY); 0 = never */
  idleTimeoutMs: number;
  /** CVE-2023-44487 guard: more than maxResets client-reset streams within windowMs closes the session */
  rapidReset: { maxResets: number; windowMs: number };
}

export interface RedirectHttpConfig {
  port: number;
  /** address of the redirect listener (default server.host) */
  host?: string;
  /** port put in the Location header (default: the TLS listener's bound port; omitted when 443) */
  httpsPort?: number;
}

export interface HstsConfig {
  maxAgeS: number;
  includeSubDomains: boolean;
  preload: boolean;
}

export interface OverloadSettings {
  maxEventLoopDelayMs: number;
  maxHeapUsedRatio: number;
  maxHeapUsedBytes: number;
  checkIntervalMs: number;
  retryAfterS: number;
}

/** Who may use the admin listener: one bearer token, or HTTP Basic users (plain passwords, compared as digests). */
export type AdminAuthConfig = { type: 'bearer'; token: string } | { type: 'basic'; users: Array<{ username: string; password: string }> };

export interface AdminConfig {
  enabled: boolean;
  host: string;
  port: number;
  /** absent: no authentication (fine on loopback; configWarnings flags any other address) */
  auth?: AdminAuthConfig;
}

/** Names from the registry of core/variants.ts; resolved to factories once per config generation (core/control/). */
export interface VariantsConfig {
  router: string;
  pool: string;
  metrics: string;
  upstream: string;
  /** the HTTP/1.1 server engine (variants/server/): `node-http` or `own`; restart-only */
  server: string;
}

export interface LoggingConfig {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  pretty: boolean;
  /** as written: a boolean, a format, a field list or an object; the validator turns it into an AccessLogConfig */
  accessLog: AccessLogConfig;
}

/** `logging.accessLog` once validated (core/observe/access-log.ts writes it; docs/observability.md describes it). */
export interface AccessLogConfig {
  enabled: boolean;
  /** "json", "combined", or a template naming `$field`s */
  format: string;
  /** the JSON format's fields, in order */
  fields: string[];
  /** fraction of answers below 400 that are logged; 4xx and 5xx always are */
  sampleSuccess: number;
  /** '' for stdout (the gateway's log stream), else a file appended to and reopened on SIGUSR2 */
  file: string;
}

/** What an alert rule measures (core/alerts/measure.ts says how each is computed). */
export type AlertMetric =
  | 'error_ratio'
  | 'p50_ms'
  | 'p95_ms'
  | 'p99_ms'
  | 'rps'
  | 'unhealthy_targets'
  | 'open_circuits'
  | 'reload_failures'
  | 'overloaded'
  | 'worker_restarts'
  | 'watchdog_kills';

export interface AlertRuleConfig {
  name: string;
  metric: AlertMetric;
  /** the condition holds while the value is > above (and/or < below; at least one is set) */
  above?: number;
  below?: number;
  /** scope to one route (by route name): error_ratio, p*_ms, rps */
  route?: string;
  /** scope to one upstream: unhealthy_targets, open_circuits */
  upstream?: string;
  /** the window rates, ratios, percentiles and counts are taken over */
  windowMs: number;
  /** how long the condition must hold before the alert fires */
  forMs: number;
  severity: string;
  summary?: string;
  description?: string;
}

export interface WebhookNotifierConfig {
  type: 'webhook';
  url: string;
  headers: Record<string, string>;
  /** the Alertmanager payload's `receiver` */
  name: string;
  /** one delivery attempt, connect to last byte */
  timeoutMs: number;
  maxAttempts: number;
  /** first retry delay; doubles per attempt up to maxBackoffMs */
  backoffMs: number;
  maxBackoffMs: number;
  /** notifications waiting for delivery; the oldest is dropped when full */
  maxQueue: number;
}

export type NotifierConfig = WebhookNotifierConfig | { type: 'log' };

export interface AlertsConfig {
  evaluateEveryMs: number;
  /** a firing alert is notified again after this long */
  repeatIntervalMs: number;
  /** base of generatorURL and the payload's externalURL (default: the admin listener's address) */
  externalUrl?: string;
  rules: AlertRuleConfig[];
  notify: NotifierConfig[];
}

export interface GatewayConfig {
  server: ServerConfig;
  admin: AdminConfig;
  alerts: AlertsConfig;
  variants: VariantsConfig;
  logging: LoggingConfig;
  upstreams: Record<string, UpstreamConfig>;
  routes: RouteConfig[];
  plugins: PluginEntry[];
  /** directories to load plugin modules from (each .js/.mjs file default-exports a GatewayPlugin) */
  pluginDirs: string[];
}
