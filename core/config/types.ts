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
  /** proxy options (upstream routes) */
  stripPrefix?: boolean | string;
  rewrite?: string;
  preserveHost?: boolean;
  timeoutMs?: number;
  requestHeaders?: HeaderEdits;
  responseHeaders?: HeaderEdits;
  plugins: PluginEntry[];
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
  /** trusted proxies (IPs/CIDRs) whose X-Forwarded-* / Forwarded headers are believed */
  trustedProxies: string[];
  /** pooled RequestContext objects kept per worker */
  contextPoolSize: number;
  /** longest request target before 414 (a request line past maxHeaderSize is 414 too) */
  maxUrlLength: number;
  /** most header fields per request before 431 */
  maxHeaderCount: number;
  /** concurrent connections per client IP, per worker (0 = unlimited); excess connections get 503 and are closed */
  maxConnectionsPerIp: number;
  /** how often Node checks headersTimeoutMs/requestTimeoutMs (its `connectionsCheckingInterval`) */
  connectionsCheckingIntervalMs: number;
  /** load shedding (core/overload.ts): every threshold 0 = off */
  overload: OverloadSettings;
}

export interface OverloadSettings {
  maxEventLoopDelayMs: number;
  maxHeapUsedRatio: number;
  maxHeapUsedBytes: number;
  checkIntervalMs: number;
  retryAfterS: number;
}

export interface AdminConfig {
  enabled: boolean;
  host: string;
  port: number;
}

export interface VariantsConfig {
  router: string;
  pool: string;
  metrics: string;
  upstream: string;
}

export interface LoggingConfig {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  pretty: boolean;
  accessLog: boolean;
}

export interface GatewayConfig {
  server: ServerConfig;
  admin: AdminConfig;
  variants: VariantsConfig;
  logging: LoggingConfig;
  upstreams: Record<string, UpstreamConfig>;
  routes: RouteConfig[];
  plugins: PluginEntry[];
  /** directories to load plugin modules from (each .js/.mjs file default-exports a GatewayPlugin) */
  pluginDirs: string[];
}
