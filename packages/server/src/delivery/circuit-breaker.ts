/** `delivery.circuitBreaker`, in milliseconds. */
export interface CircuitSettings {
  /** Failed attempts in a row that open the circuit; 0: never. */
  failures: number;
  cooldownMs: number;
  maxCooldownMs: number;
}

/** What may start now: anything (closed), one probe (the cooldown is over), or nothing. */
export type Admission = 'all' | 'probe' | 'none';

/** A change of state worth a log line. */
export type Transition = { to: 'open'; failures: number; cooldownMs: number; probeFailed: boolean } | { to: 'closed'; failures: number };

/**
 * One endpoint's circuit breaker. An endpoint that keeps failing (refused connections fail in a millisecond or two)
 * would otherwise cost as much per event as a healthy one, in attempts and store writes, and slow every other
 * endpoint down. Closed, attempts flow; after `failures` failed attempts in a row it opens, and nothing is sent
 * until the cooldown is over; then one attempt, the probe, goes out: its success closes the circuit, its failure
 * opens it again for twice as long, up to the longest cooldown. Any success closes it: an attempt that was already
 * under way when it opened proves the endpoint answers as well as the probe would.
 *
 * Times are passed in (milliseconds), as with TokenBucket: one reading of the clock serves a whole pump, and
 * tests need no clock.
 */
export class CircuitBreaker {
  /** Failed attempts since the last success. */
  private failures = 0;
  /** While open: when the cooldown ends and a probe may start. Undefined while closed. */
  private openUntil: number | undefined;
  private cooldownMs: number;
  /** The first cooldown; a longest cooldown set below it wins. */
  private readonly firstCooldownMs: number;
  /** The probe under way: a number each probe gets, so that a late answer of an older one is not taken for it. */
  private probe: number | undefined;
  private probes = 0;

  constructor(private readonly settings: CircuitSettings) {
    this.firstCooldownMs = Math.min(settings.cooldownMs, settings.maxCooldownMs);
    this.cooldownMs = this.firstCooldownMs;
  }

  get open(): boolean {
    return this.openUntil !== undefined;
  }

  admits(now: number): Admission {
    if (this.openUntil === undefined) return 'all';
    return this.probe === undefined && now >= this.openUntil ? 'probe' : 'none';
  }

  /** When a probe may start, while the circuit is open and none is under way. */
  probeAt(): number | undefined {
    return this.probe === undefined ? this.openUntil : undefined;
  }

  /** The admitted probe starts; pass its number back with its outcome. */
  probeStarted(): number {
    this.probe = ++this.probes;
    return this.probe;
  }

  /** An attempt's outcome; `probe` is the number probeStarted gave it, if it was one. */
  record(ok: boolean, now: number, probe?: number): Transition | undefined {
    const isProbe = probe !== undefined && probe === this.probe;
    if (isProbe) this.probe = undefined;
    if (ok) {
      const failures = this.failures;
      const wasOpen = this.open;
      this.close();
      return wasOpen ? { to: 'closed', failures } : undefined;
    }
    this.failures += 1;
    if (!this.open) {
      if (this.settings.failures === 0 || this.failures < this.settings.failures) return undefined;
      return this.trip(now, false);
    }
    // Open: only the probe's failure counts. Attempts that were under way when the circuit opened end meanwhile,
    // and must not push the next probe further out.
    if (!isProbe) return undefined;
    this.cooldownMs = Math.min(this.cooldownMs * 2, this.settings.maxCooldownMs);
    return this.trip(now, true);
  }

  /** The probe ended without an answer (a fault of Herald's, not the endpoint's): another may start at once. */
  probeLost(probe: number): void {
    if (probe === this.probe) this.probe = undefined;
  }

  /** Closed again, with no history: the endpoint changed, or another node now sends its deliveries. True if it was open. */
  reset(): boolean {
    const wasOpen = this.open;
    this.close();
    return wasOpen;
  }

  private trip(now: number, probeFailed: boolean): Transition {
    this.openUntil = now + this.cooldownMs;
    return { to: 'open', failures: this.failures, cooldownMs: this.cooldownMs, probeFailed };
  }

  private close(): void {
    this.failures = 0;
    this.openUntil = undefined;
    this.probe = undefined;
    this.cooldownMs = this.firstCooldownMs;
  }
}
