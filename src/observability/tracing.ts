// OpenTelemetry traces, off unless `tracing.enabled`: one span per exchange, a child of the
// client's W3C `traceparent` when it sent one, and its own `traceparent` sent upstream. The
// exporter is OTLP over HTTP, configured by the standard OTEL_* variables
// (OTEL_EXPORTER_OTLP_ENDPOINT / _TRACES_ENDPOINT / _HEADERS, OTEL_SERVICE_NAME,
// OTEL_TRACES_SAMPLER…); OTEL_TRACES_EXPORTER=console prints spans instead. Nothing is
// registered globally, so several gateways in one process keep their own provider.
import {
  context,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';

export interface Tracing {
  readonly tracer: Tracer;
  /** The parent context carried by incoming headers (none: a root span). */
  extract(headers: Record<string, string | string[] | undefined>): Context;
  /** The traceparent/tracestate headers that make `span` the parent upstream. */
  inject(span: Span): Record<string, string>;
  shutdown(): Promise<void>;
}

const getter: TextMapGetter<Record<string, string | string[] | undefined>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key.toLowerCase()],
};
const setter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/** `exporter` replaces the OTLP one (tests use an in-memory exporter, exported at span end). */
export function createTracing(
  serviceName: string,
  exporter?: SpanExporter,
  env: NodeJS.ProcessEnv = process.env,
): Tracing {
  const processor = exporter
    ? new SimpleSpanProcessor(exporter)
    : new BatchSpanProcessor(
        env['OTEL_TRACES_EXPORTER'] === 'console' ? new ConsoleSpanExporter() : new OTLPTraceExporter(),
      );
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env['OTEL_SERVICE_NAME'] || serviceName }),
    spanProcessors: [processor],
  });
  const propagator = new W3CTraceContextPropagator();
  return {
    tracer: provider.getTracer('sluice'),
    extract: (headers) => propagator.extract(context.active(), headers, getter),
    inject: (span) => {
      const out: Record<string, string> = {};
      propagator.inject(trace.setSpan(context.active(), span), out, setter);
      return out;
    },
    shutdown: () => provider.shutdown(),
  };
}
