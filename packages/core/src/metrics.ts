/**
 * Prometheus metrics: per-method request counts, errors, latency; plugin
 * restarts; memory. Loaded only when `[metrics] address` is set, so a core
 * without it carries neither prom-client nor the per-call counting.
 */
import { createServer, type Server } from 'node:http';
import client from 'prom-client';

export class CoreMetrics {
  readonly registry = new client.Registry();
  private readonly requests = new client.Counter({ name: 'boxd_grpc_requests_total', help: 'Requests served, by service and method', labelNames: ['service', 'method'], registers: [this.registry] });
  private readonly errors = new client.Counter({ name: 'boxd_grpc_errors_total', help: 'Requests that ended with an error, by code', labelNames: ['service', 'method', 'code'], registers: [this.registry] });
  private readonly latency = new client.Histogram({
    name: 'boxd_grpc_request_duration_seconds',
    help: 'Request latency',
    labelNames: ['service', 'method'],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  private readonly pluginRestarts = new client.Counter({ name: 'boxd_plugin_restarts_total', help: 'Plugin process restarts', labelNames: ['plugin'], registers: [this.registry] });
  private server?: Server;

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'boxd_' });
  }

  pluginRestarted(id: string): void {
    this.pluginRestarts.inc({ plugin: id });
  }

  /** Starts timing a call; the returned function records its outcome. */
  observe(service: string, method: string): (errorCode?: number) => void {
    const end = this.latency.startTimer({ service, method });
    this.requests.inc({ service, method });
    return (code) => {
      end();
      if (code !== undefined && code !== 0) this.errors.inc({ service, method, code: String(code) });
    };
  }

  async listen(address: string): Promise<void> {
    const [host, port] = address.includes(':') ? [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))] : ['127.0.0.1', Number(address)];
    this.server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err) => res.writeHead(500).end(String(err)),
      );
    });
    await new Promise<void>((resolve, reject) => this.server!.once('error', reject).listen(port, host, resolve));
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
