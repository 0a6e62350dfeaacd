import type { Attributes, AttributeValue } from '@opentelemetry/api';
import { ExportResultCode, hrTimeToNanoseconds, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

const finished: ReadableSpan[] = [];
/** cap on spans the memory exporter holds: it is for tests and debugging, not for a long-running gateway */
const MEMORY_CAP = 10_000;

/**
 * `exporter: "memory"`: spans kept in this process, read with finishedSpans(). Module-level so they survive a
 * plugin instance's shutdown (a hot reload, or a test closing its gateway before inspecting spans).
 */
export class MemoryExporter implements SpanExporter {
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    // Dropping the older half at once keeps this amortised O(1) (shift() per span would copy the whole array).
    if (finished.length + spans.length > MEMORY_CAP) finished.splice(0, Math.max(MEMORY_CAP >> 1, finished.length + spans.length - MEMORY_CAP));
    for (const s of spans) finished.push(s);
    done({ code: ExportResultCode.SUCCESS });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export function finishedSpans(): readonly ReadableSpan[] {
  return finished;
}

export function resetFinishedSpans(): void {
  finished.length = 0;
}

function anyValue(v: AttributeValue): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  return {
    arrayValue: {
      values: (v as Array<string | number | boolean | null | undefined>).filter((x) => x !== null && x !== undefined).map((x) => anyValue(x as AttributeValue)),
    },
  };
}

function attributes(a: Attributes): Array<{ key: string; value: Record<string, unknown> }> {
  const out: Array<{ key: string; value: Record<string, unknown> }> = [];
  for (const key in a) {
    const v = a[key];
    if (v !== undefined) out.push({ key, value: anyValue(v) });
  }
  return out;
}

/** OTLP/HTTP with the JSON encoding (opentelemetry-proto's JSON mapping: hex ids, nanosecond strings). */
export function otlpJson(spans: readonly ReadableSpan[]): unknown {
  const byResource = new Map<unknown, ReadableSpan[]>();
  for (const s of spans) {
    const list = byResource.get(s.resource);
    if (list === undefined) byResource.set(s.resource, [s]);
    else list.push(s);
  }
  return {
    resourceSpans: [...byResource.values()].map((list) => ({
      resource: { attributes: attributes(list[0]!.resource.attributes as Attributes) },
      scopeSpans: [
        {
          scope: { name: list[0]!.instrumentationScope.name, version: list[0]!.instrumentationScope.version ?? '' },
          spans: list.map((s) => {
            const sc = s.spanContext();
            return {
              traceId: sc.traceId,
              spanId: sc.spanId,
              parentSpanId: s.parentSpanContext?.spanId ?? '',
              name: s.name,
              kind: s.kind + 1, // api SpanKind is 0-based from INTERNAL; OTLP reserves 0 for UNSPECIFIED
              startTimeUnixNano: String(hrTimeToNanoseconds(s.startTime)),
              endTimeUnixNano: String(hrTimeToNanoseconds(s.endTime)),
              attributes: attributes(s.attributes),
              events: s.events.map((e) => ({ timeUnixNano: String(hrTimeToNanoseconds(e.time)), name: e.name, attributes: attributes(e.attributes ?? {}) })),
              status: { code: s.status.code, message: s.status.message ?? '' },
            };
          }),
        },
      ],
    })),
  };
}

/**
 * `exporter: "otlp"`: POSTs batches to an OTLP/HTTP collector (…/v1/traces) as JSON. Failures are logged by
 * the caller's callback and dropped: tracing must never back-pressure the gateway.
 */
export class OtlpHttpExporter implements SpanExporter {
  private readonly inflight = new Set<Promise<void>>();
  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
    private readonly onError: (err: Error) => void,
  ) {}

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    const p = fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(otlpJson(spans)),
      signal: AbortSignal.timeout(this.timeoutMs),
    })
      .then(async (res) => {
        await res.arrayBuffer().catch(() => undefined);
        if (!res.ok) throw new Error(`OTLP collector answered ${res.status}`);
        done({ code: ExportResultCode.SUCCESS });
      })
      .catch((err: Error) => {
        this.onError(err);
        done({ code: ExportResultCode.FAILED, error: err });
      });
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.inflight);
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.inflight);
  }
}
