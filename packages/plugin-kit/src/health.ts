import { health, type ServiceImplementation } from '@boxd/api';

const { SERVING, NOT_SERVING, SERVICE_UNKNOWN } = health.HealthCheckResponse_ServingStatus;
type Status = health.HealthCheckResponse_ServingStatus;

/** grpc.health.v1 for a plugin: SERVING once every service is up. */
export class HealthState {
  private status: Status = NOT_SERVING;
  private services = new Set<string>();
  private watchers = new Set<() => void>();
  private closed = false;

  serving(services: string[]): void {
    this.services = new Set(services);
    this.set(SERVING);
  }

  notServing(): void {
    this.set(NOT_SERVING);
  }

  /** NOT_SERVING, and Watch streams end after saying so: the server is going away. */
  close(): void {
    this.closed = true;
    this.set(NOT_SERVING);
  }

  private set(status: Status): void {
    this.status = status;
    for (const w of this.watchers) w();
  }

  private statusOf(service: string): Status {
    if (service && !this.services.has(service)) return SERVICE_UNKNOWN;
    return this.status;
  }

  implementation(): ServiceImplementation<typeof health.HealthService> {
    return {
      Check: (req) => ({ status: this.statusOf(req.service) }),
      Watch: (req, ctx) => this.watch(req.service, ctx.signal),
    };
  }

  private async *watch(service: string, signal: AbortSignal): AsyncIterable<{ status: Status }> {
    let last: Status | undefined;
    while (!signal.aborted) {
      const now = this.statusOf(service);
      if (now !== last) {
        last = now;
        yield { status: now };
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.watchers.delete(wake);
          resolve();
        };
        this.watchers.add(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }
}
