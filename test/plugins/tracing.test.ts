import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { finishedSpans, resetFinishedSpans } from '../../core/plugins/builtin/tracing/index.js';
import { request } from '../support/http.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { sleep, until } from '../support/wait.js';
import { gatewayFor } from './helpers.js';

let gw: RunningGateway;
let up: RecordingUpstream;
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

beforeAll(async () => {
  up = await startUpstream('up', (req, res) => {
    res.statusCode = req.url === '/fail' ? 500 : 200;
    res.end('up');
  });
  gw = await gatewayFor({
    upstreams: { up: { targets: [up.url], retries: { count: 0 } } },
    plugins: [{ name: 'tracing', options: { exporter: 'memory', serviceName: 'gw-test' } }],
    routes: [
      { path: '/up/*', methods: ['GET'], upstream: 'up', stripPrefix: '/up' },
      { path: '/split/*', methods: ['GET'], backends: [{ upstream: 'up', weight: 1 }], stripPrefix: '/split' },
      { path: '/local', methods: ['GET'], handler: 'echo' },
    ],
  });
});
afterAll(async () => {
  await gw.close();
  await up.close();
});
beforeEach(() => resetFinishedSpans());

async function spansSettled(n: number): Promise<ReturnType<typeof finishedSpans>> {
  await until(() => finishedSpans().length >= n, { timeoutMs: 5000, message: () => `${n} finished spans (have ${finishedSpans().length})` });
  return finishedSpans();
}

describe('tracing', () => {
  it('continues an incoming trace: SERVER span child of the caller, CLIENT span for the upstream, propagated', async () => {
    const r = await request(`${gw.url}/up/ok`, { headers: { traceparent: `00-${TRACE_ID}-${PARENT}-01`, tracestate: 'vendor=abc' } });
    expect(r.status).toBe(200);
    const spans = await spansSettled(2);
    const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
    const client = spans.find((s) => s.kind === SpanKind.CLIENT)!;
    expect(server.spanContext().traceId).toBe(TRACE_ID);
    expect(server.parentSpanContext?.spanId).toBe(PARENT);
    expect(server.name).toBe('GET /up/*');
    expect(server.attributes['http.response.status_code']).toBe(200);
    expect(server.attributes['http.route']).toBe('/up/*');
    expect(server.resource.attributes['service.name']).toBe('gw-test');
    expect(server.events.map((e) => e.name)).toEqual(['preRoute', 'preHandler', 'postHandler', 'response.sent']);
    expect(client.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(client.attributes['gateway.upstream']).toBe('up');

    // what the upstream received: same trace, parent = the CLIENT span, tracestate passed on
    const got = up.received.at(-1)!.headers;
    expect(got.traceparent).toBe(`00-${TRACE_ID}-${client.spanContext().spanId}-01`);
    expect(got.tracestate).toBe('vendor=abc');
  });

  it('a route with backends has its CLIENT span too, and the backend picked gets the trace context', async () => {
    const r = await request(`${gw.url}/split/ok`, { headers: { traceparent: `00-${TRACE_ID}-${PARENT}-01` } });
    expect(r.status).toBe(200);
    const client = (await spansSettled(2)).find((s) => s.kind === SpanKind.CLIENT)!;
    expect(client.attributes['gateway.upstream']).toBe('up');
    expect(up.received.at(-1)!.headers.traceparent).toBe(`00-${TRACE_ID}-${client.spanContext().spanId}-01`);
  });

  it('starts a new trace without traceparent, and marks 5xx as errors', async () => {
    const r = await request(`${gw.url}/up/fail`);
    expect(r.status).toBe(500);
    const spans = await spansSettled(2);
    const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
    expect(server.parentSpanContext).toBeUndefined();
    expect(server.status.code).toBe(SpanStatusCode.ERROR);
    expect(spans.find((s) => s.kind === SpanKind.CLIENT)!.status.code).toBe(SpanStatusCode.ERROR);
    expect(up.received.at(-1)!.headers.traceparent).toMatch(new RegExp(`^00-${server.spanContext().traceId}-[0-9a-f]{16}-01$`));
  });

  it('ends spans of unmatched requests too', async () => {
    expect((await request(`${gw.url}/nowhere`)).status).toBe(404);
    const spans = await spansSettled(1);
    expect(spans[0]!.attributes['http.response.status_code']).toBe(404);
  });

  it('follows an unsampled parent: nothing recorded, flag propagated', async () => {
    const r = await request(`${gw.url}/local`, { headers: { traceparent: `00-${TRACE_ID}-${PARENT}-00` } });
    expect(JSON.parse(r.body).headers.traceparent).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-00$`));
    await sleep(30);
    expect(finishedSpans().length).toBe(0);
  });
});

describe('tracing: exporter none', () => {
  it("propagates without recording, keeping the caller's sampled flag", async () => {
    const g = await gatewayFor({
      plugins: [{ name: 'tracing', options: {} }],
      routes: [{ path: '/e', methods: ['GET'], handler: 'echo' }],
    });
    try {
      const sampled = JSON.parse((await request(`${g.url}/e`, { headers: { traceparent: `00-${TRACE_ID}-${PARENT}-01` } })).body).headers.traceparent as string;
      expect(sampled).toMatch(new RegExp(`^00-${TRACE_ID}-(?!${PARENT})[0-9a-f]{16}-01$`));
      const fresh = JSON.parse((await request(`${g.url}/e`)).body).headers.traceparent as string;
      expect(fresh).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    } finally {
      await g.close();
    }
  });
});

describe('tracing: OTLP/HTTP exporter', () => {
  it('posts spans as OTLP JSON to the collector', async () => {
    const collector = await startUpstream('collector', (req, res) => {
      req.resume();
      req.on('end', () => res.end('{}'));
    });
    const otlpUrl = `${collector.url}/v1/traces`;
    const g = await gatewayFor({
      plugins: [{ name: 'tracing', options: { exporter: 'otlp', otlpUrl, otlpBatchDelayMs: 50, serviceName: 'otlp-test' } }],
      routes: [{ path: '/x', methods: ['GET'], response: { body: 'x' } }],
    });
    await request(`${g.url}/x`, { headers: { traceparent: `00-${TRACE_ID}-${PARENT}-01` } });
    await until(() => collector.requests.length > 0, { timeoutMs: 5000, message: 'the exporter posted a batch to the collector' });
    await g.close();
    await collector.close();
    const posted = collector.requests[0]!;
    const first = { path: posted.url, type: posted.headers['content-type'], body: JSON.parse(posted.body.toString()) } as {
      path: string;
      type: string;
      body: { resourceSpans: Array<{ resource: { attributes: unknown[] }; scopeSpans: Array<{ spans: Array<Record<string, unknown>> }> }> };
    };
    expect(first.path).toBe('/v1/traces');
    expect(first.type).toBe('application/json');
    const rs = first.body.resourceSpans[0]!;
    expect(rs.resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'otlp-test' } });
    const span = rs.scopeSpans[0]!.spans[0]!;
    expect(span.traceId).toBe(TRACE_ID);
    expect(span.parentSpanId).toBe(PARENT);
    expect(span.kind).toBe(2); // SERVER
    expect(span.attributes).toContainEqual({ key: 'http.response.status_code', value: { intValue: '200' } });
  });
});
