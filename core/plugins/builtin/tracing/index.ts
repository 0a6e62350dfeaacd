import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace, type Span } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { RequestContext } from '../../../data/context.js';
import type { GatewayPlugin, PluginInstance } from '../../types.js';
import { MemoryExporter, OtlpHttpExporter } from './exporters.js';

export { finishedSpans, resetFinishedSpans } from './exporters.js';

export interface TracingOptions {
  serviceName: string;
  exporter: 'none' | 'memory' | 'otlp';
  otlpUrl: string;
  otlpTimeoutMs: number;
  /** batch export delay for otlp */
  otlpBatchDelayMs: number;
  /** share of new traces recorded (a sampled incoming traceparent is always followed) */
  sampleRatio: number;
}

interface TraceState {
  server: Span;
  client: Span | null;
}

const STATE = 'tracing';
const propagator = new W3CTraceContextPropagator();

/**
 * W3C Trace Context propagation and OpenTelemetry spans: a SERVER span per request (parent: the incoming
 * traceparent), a CLIENT span around the upstream call whose context is what the upstream receives in
 * traceparent/tracestate, and span events for the plugin phases. Exporters: none (propagation only), memory
 * (tests), otlp (OTLP/HTTP JSON to a collector, batched).
 */
export const tracingPlugin: GatewayPlugin<TracingOptions> = {
  name: 'tracing',
  version: '1.0.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      serviceName: { type: 'string', minLength: 1, default: 'ts-gateway' },
      exporter: { enum: ['none', 'memory', 'otlp'], default: 'none' },
      otlpUrl: { type: 'string', pattern: '^https?://', default: 'http://127.0.0.1:4318/v1/traces' },
      otlpTimeoutMs: { type: 'integer', minimum: 1, default: 10_000 },
      otlpBatchDelayMs: { type: 'integer', minimum: 1, default: 5_000 },
      sampleRatio: { type: 'number', minimum: 0, maximum: 1, default: 1 },
    },
  },
  init(options, api): PluginInstance {
    const processors: SpanProcessor[] = [];
    if (options.exporter === 'memory') processors.push(new SimpleSpanProcessor(new MemoryExporter()));
    else if (options.exporter === 'otlp') {
      let lastLog = 0;
      const exporter = new OtlpHttpExporter(options.otlpUrl, options.otlpTimeoutMs, (err) => {
        const now = Date.now();
        if (now - lastLog > 10_000) {
          lastLog = now;
          api.logger.warn({ err: err.message, url: options.otlpUrl }, 'tracing: OTLP export failed');
        }
      });
      processors.push(new BatchSpanProcessor(exporter, { scheduledDelayMillis: options.otlpBatchDelayMs, maxQueueSize: 4096, maxExportBatchSize: 512 }));
    }
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': options.serviceName }),
      // With no exporter new traces are not recorded, but ids are generated so traceparent propagates, and a
      // caller's sampled flag is kept (parent-based) so services further down still record their part.
      sampler: new ParentBasedSampler({ root: processors.length === 0 ? new AlwaysOffSampler() : new TraceIdRatioBasedSampler(options.sampleRatio) }),
      spanProcessors: processors,
    });
    const tracer = provider.getTracer('ts-gateway', tracingPlugin.version);

    const start = (ctx: RequestContext): TraceState => {
      let st = ctx.get(STATE) as TraceState | undefined;
      if (st !== undefined) return st;
      const req = ctx.req!;
      const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
      const server = tracer.startSpan(
        `${ctx.method} ${ctx.pathname}`,
        {
          kind: SpanKind.SERVER,
          startTime: performance.timeOrigin + ctx.startTime,
          attributes: {
            'http.request.method': ctx.method,
            'url.path': ctx.pathname,
            'url.query': ctx.search,
            'network.peer.address': req.socket.remoteAddress ?? '',
            'client.address': ctx.clientIp,
          },
        },
        parent,
      );
      st = { server, client: null };
      ctx.set(STATE, st);
      // What the upstream sees unless this route proxies (then the CLIENT span's context replaces it).
      propagator.inject(trace.setSpan(ROOT_CONTEXT, server), req.headers, defaultTextMapSetter);
      if (req.headers.tracestate === undefined) delete req.headers.tracestate;
      const finish = (status: number, complete: boolean): void => {
        const s = st!;
        if (s.client !== null) {
          s.client.setStatus({ code: SpanStatusCode.ERROR, message: 'no upstream response' });
          s.client.end();
          s.client = null;
        }
        s.server.setAttribute('http.response.status_code', status);
        if (status >= 500 || !complete) s.server.setStatus({ code: SpanStatusCode.ERROR, message: complete ? undefined : 'response not completed' });
        s.server.addEvent('response.sent');
        s.server.end();
      };
      const res = ctx.res;
      // On close rather than in postResponse: that hook does not run for unmatched routes or upgrades.
      if (res !== null) res.once('close', () => finish(res.statusCode, res.writableFinished));
      else req.socket.once('close', () => finish(101, true));
      return st;
    };

    return {
      preRoute(ctx) {
        start(ctx).server.addEvent('preRoute');
      },
      preHandler(ctx) {
        const st = start(ctx);
        const route = ctx.route as { name?: string; config?: { path?: string; upstream?: string; backends?: Array<{ upstream: string }> } } | null;
        if (route?.config?.path !== undefined) {
          st.server.setAttribute('http.route', route.config.path);
          st.server.updateName(`${ctx.method} ${route.config.path}`);
        }
        st.server.addEvent('preHandler');
        // A route with backends picks one after this hook: the span names the candidates (a|b), and the trace context
        // is propagated to whichever is picked.
        const upstream = route?.config?.upstream ?? route?.config?.backends?.map((b) => b.upstream).join('|');
        if (upstream !== undefined && st.client === null) {
          st.client = tracer.startSpan(
            `${ctx.method} upstream ${upstream}`,
            { kind: SpanKind.CLIENT, attributes: { 'gateway.upstream': upstream } },
            trace.setSpan(ROOT_CONTEXT, st.server),
          );
          propagator.inject(trace.setSpan(ROOT_CONTEXT, st.client), ctx.req!.headers, defaultTextMapSetter);
        }
      },
      postHandler(ctx) {
        const st = ctx.get(STATE) as TraceState | undefined;
        if (st === undefined) return;
        st.server.addEvent('postHandler');
        if (st.client !== null) {
          // The upstream's response head has arrived (its body streams on through the server span).
          st.client.setAttribute('http.response.status_code', ctx.statusCode);
          if (ctx.statusCode >= 500) st.client.setStatus({ code: SpanStatusCode.ERROR });
          st.client.end();
          st.client = null;
        }
      },
      onError(ctx, err) {
        const st = ctx.get(STATE) as TraceState | undefined;
        if (st === undefined) return;
        const e = err instanceof Error ? err : new Error(String(err));
        (st.client ?? st.server).recordException(e);
        if (st.client !== null) {
          st.client.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
          st.client.end();
          st.client = null;
        }
      },
      async destroy() {
        await provider.shutdown();
      },
    };
  },
};

export default tracingPlugin;
