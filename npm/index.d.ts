/** Configuration (the same keys as the script tag's `data-*` attributes; see the README). */
export interface Config {
  /** SALESmanago client id (public). Required. */
  clientId: string;
  /** The receiver's URL for protocol v1. Required. */
  endpoint: string;
  /** Shop identifier sent as `location` (≤ 36 characters); default: the Salla store id. */
  location?: string;
  /** Send the shopper's email, name and phone when consent allows. Default false. */
  sendEmail?: boolean;
  /** Map event names outside Salla's catalog to OTHER. Default false. */
  customEvents?: boolean;
  /** Per-event overrides: a SALESmanago type name, `true` (on) or `false` (off). */
  events?: Record<string, string | boolean>;
  /** Log every decision to the console (also on with `?sm_debug=1` in the page URL). */
  debug?: boolean;
  /** Add SALESmanago's monitoring script (once, after the shopper's consent). Default false. */
  monitoring?: boolean;
  /** The SALESmanago account's host for the monitoring script, e.g. `app3.salesmanago.com`. */
  smHost?: string;
  /** Where `salesmanago_bg.wasm` is served, when a bundler moved it away from this module. */
  wasmUrl?: string | URL;
}

/** A running tracker. No method throws; `flush` never rejects. */
export interface Tracker {
  /** False when the tracker could not start (bad configuration, WebAssembly blocked). */
  readonly active: boolean;
  /** Tracks a Salla catalog event (or a custom one) by name. */
  track(name: string, payload?: object): void;
  /** Sends what is pending now; resolves to true when nothing is left waiting. */
  flush(): Promise<boolean>;
  /** Records consent to sending the shopper's email (overrides Salla's cookie bar). */
  setConsent(granted: boolean): void;
  /** Names the shopper by email; false if it is not an email address. */
  identify(email: string): boolean;
  /** Sends what is pending and removes every listener and timer. */
  shutdown(): void;
}

/** Starts the tracker once per page; later calls resolve to the same tracker. Never rejects. */
export function init(config: Config | Config[]): Promise<Tracker>;
